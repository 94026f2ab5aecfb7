-- Retention removes a name from `audit_resource_names` once no entry of the workspace's log has it,
-- so that the names of removed entries go with them.
CREATE FUNCTION "audit_resource_names_forget"("workspace" UUID) RETURNS BIGINT
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH forgotten AS (
        DELETE FROM "audit_resource_names" n
        WHERE n."workspace_id" = "workspace"
          AND NOT EXISTS (SELECT 1 FROM "audit_logs" a WHERE a."workspace_id" = n."workspace_id"
                          AND a."resource_id" = n."resource_id" AND a."resource_name" = n."resource_name")
        RETURNING 1
    )
    SELECT count(*) FROM forgotten
$$;

-- Retention forgets a name once no entry of the log has it. The sealer, which remembers names, finds
-- a name already known and leaves it (ON CONFLICT DO NOTHING, no lock): a forget running at the same
-- time, whose snapshot cannot see the entry being sealed, removed that name, and once both had
-- committed, a name search no longer led to the new entry. Forgetting now takes the sealer's lock
-- first and then looks (each statement of a volatile function sees what committed before it), so
-- it sees every entry sealed before it, and a seal after it inserts the name again.
CREATE OR REPLACE FUNCTION "audit_resource_names_forget"("workspace" UUID) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    forgotten BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(7460012);
    WITH removed AS (
        DELETE FROM "audit_resource_names" n
        WHERE n."workspace_id" = "workspace"
          AND NOT EXISTS (SELECT 1 FROM "audit_log_sealed" a WHERE a."workspace_id" = n."workspace_id"
                          AND a."resource_id" = n."resource_id" AND left(a."resource_name", 512) = n."resource_name")
        RETURNING 1
    )
    SELECT count(*) INTO forgotten FROM removed;
    RETURN forgotten;
END;
$$;

-- `audit_resource_names` keeps the first 512 characters of a name (audit_logs_remember_names). A name
-- search whose term matches only past them must still reach those resources: every search takes
-- them as candidates, tested then on the names the log holds whole. Few resources have such names,
-- and this index holds only theirs.
CREATE INDEX "audit_resource_names_cut_idx" ON "audit_resource_names"("workspace_id")
    WHERE char_length("resource_name") >= 512;

CREATE FUNCTION "audit_resource_names_cut"("workspace" UUID) RETURNS SETOF UUID
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT "resource_id" FROM "audit_resource_names"
    WHERE "workspace_id" = "workspace" AND char_length("resource_name") >= 512
$$;

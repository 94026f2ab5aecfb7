-- A user's entries are spread over their month's pages, between everyone else's. A search by user,
-- type and name tested the type and the name on every entry of the user it walked past, one page
-- read each: on a month no longer in memory, about 500 pages for a first page at 67,000,000 entries.
-- Carrying the type and the resource id, the (workspace, actor, time) index alone tells which of
-- the user's entries are of a resource that ever had a matching name (`audit_resource_names`), and
-- only those are read from the table. Both are short (a uuid, and a type name of the registry), so
-- an index entry stays far from PostgreSQL's limit whatever a resource is named.
-- Built beside the old index, which is dropped only once the new one is there: reads of the log go
-- on during the build (the sealer waits for it; writes go on into the inbox).
CREATE INDEX "audit_logs_workspace_id_actor_id_occurred_at_id_covering_idx" ON "audit_log_sealed"("workspace_id", "actor_id", "occurred_at", "id") INCLUDE ("resource_type", "resource_id");
DROP INDEX "audit_logs_workspace_id_actor_id_occurred_at_id_idx";
ALTER INDEX "audit_logs_workspace_id_actor_id_occurred_at_id_covering_idx" RENAME TO "audit_logs_workspace_id_actor_id_occurred_at_id_idx";

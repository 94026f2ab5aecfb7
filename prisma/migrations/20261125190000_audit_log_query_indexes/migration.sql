-- Indexes for the audit-log query API: every one leads with the workspace, then serves one filter
-- in the API's order (occurred_at DESC, id DESC) so that a first page reads only its own rows.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

DROP INDEX "audit_logs_workspace_id_resource_id_occurred_at_idx";
CREATE INDEX "audit_logs_workspace_id_resource_id_occurred_at_id_idx" ON "audit_logs"("workspace_id", "resource_id", "occurred_at" DESC, "id" DESC);
CREATE INDEX "audit_logs_workspace_id_actor_id_occurred_at_id_idx" ON "audit_logs"("workspace_id", "actor_id", "occurred_at" DESC, "id" DESC);
CREATE INDEX "audit_logs_workspace_id_resource_type_occurred_at_id_idx" ON "audit_logs"("workspace_id", "resource_type", "occurred_at" DESC, "id" DESC);
-- Substring search on the name at the time of the action (ILIKE '%…%').
CREATE INDEX "audit_logs_resource_name_trgm_idx" ON "audit_logs" USING GIN ("resource_name" gin_trgm_ops);

-- Name search within one workspace: with the workspace in the same GIN index (btree_gin), a search
-- reads only that workspace's matches instead of every workspace's, then filters.
CREATE EXTENSION IF NOT EXISTS btree_gin;

DROP INDEX "audit_logs_resource_name_trgm_idx";
CREATE INDEX "audit_logs_workspace_id_resource_name_trgm_idx" ON "audit_logs" USING GIN ("workspace_id" uuid_ops, "resource_name" gin_trgm_ops);

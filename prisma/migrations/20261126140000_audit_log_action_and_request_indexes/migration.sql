-- The action and request-id filters of the query API. One action's entries newest first, read in the
-- order of the API like the user and resource-type filters (a rare action, such as `restored`, would
-- otherwise walk the workspace's whole time index); and the few entries of one request.
CREATE INDEX "audit_logs_workspace_id_action_occurred_at_id_idx" ON "audit_log_sealed"("workspace_id", "action", "occurred_at" DESC, "id" DESC);
CREATE INDEX "audit_logs_workspace_id_request_id_idx" ON "audit_log_sealed"("workspace_id", "request_id");

-- The request-id filter compares with `=` only, and a request id is 36 characters or more: a btree on
-- (workspace_id, request_id) held both in full for every entry (79 bytes an entry at 200,000 entries
-- of bench:query). A hash index holds a 4-byte hash code per entry; the workspace is checked on the
-- few rows it finds.
DROP INDEX "audit_logs_workspace_id_request_id_idx";
CREATE INDEX "audit_logs_request_id_idx" ON "audit_log_sealed" USING hash ("request_id");

-- A restore's creator is read with the caller's rights: everything the function reads (the log, the
-- registry of audited tables, users) the application's role may read itself, and that role runs no
-- function with the owner's rights but the sealer.
ALTER FUNCTION "audit_kept_creation"(TEXT, UUID, UUID, UUID, TIMESTAMPTZ) SECURITY INVOKER;

-- Signed digests of each workspace's hash chain. A digest names a chain position (seq) and the hash
-- of the entry there, and is signed with an Ed25519 key that the database never holds: whoever can
-- rewrite the log in the database (an owner, a superuser) cannot sign a digest for the rewritten
-- log, and a digest kept outside the database keeps proving what the log held when it was issued.
-- The canonical text that is signed (and whose sha256 is `digest_hash`) is documented in
-- src/audit/digests/audit-digest.ts and in the README.

-- Public keys only: the private key lives outside the database (AUDIT_SIGNING_KEY or a key file).
-- A rotated key's row stays, so that digests it signed still verify.
CREATE TABLE "audit_signing_keys" (
    "key_id" TEXT NOT NULL,
    "public_key" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    CONSTRAINT "audit_signing_keys_pkey" PRIMARY KEY ("key_id"),
    CONSTRAINT "audit_signing_keys_key_id_check" CHECK ("key_id" ~ '^[0-9a-f]{16}$')
);

CREATE TABLE "audit_digests" (
    "workspace_id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "head_hash" TEXT NOT NULL,
    "issued_at" TIMESTAMPTZ(3) NOT NULL,
    "previous_digest_hash" TEXT,
    "key_id" TEXT NOT NULL,
    "signature" TEXT NOT NULL,
    "digest_hash" TEXT NOT NULL,
    CONSTRAINT "audit_digests_pkey" PRIMARY KEY ("digest_hash"),
    CONSTRAINT "audit_digests_key_id_fkey" FOREIGN KEY ("key_id") REFERENCES "audit_signing_keys"("key_id")
        ON DELETE RESTRICT ON UPDATE RESTRICT,
    CONSTRAINT "audit_digests_seq_check" CHECK ("seq" >= 0)
);
-- Newest first per workspace: the list route and "the workspace's last digest".
CREATE INDEX "audit_digests_workspace_id_issued_at_idx" ON "audit_digests"("workspace_id", "issued_at" DESC);
-- One chain per workspace: no two digests follow the same one (nor two first digests).
CREATE UNIQUE INDEX "audit_digests_workspace_id_previous_digest_hash_key"
    ON "audit_digests"("workspace_id", "previous_digest_hash") NULLS NOT DISTINCT;

-- Append-only, superusers included (unless they switch triggers off): the log's own trigger function.
CREATE TRIGGER "audit_digests_append_only" BEFORE UPDATE OR DELETE ON "audit_digests"
    FOR EACH ROW EXECUTE FUNCTION "audit_logs_refuse_change"();
CREATE TRIGGER "audit_digests_no_truncate" BEFORE TRUNCATE ON "audit_digests"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"();
CREATE TRIGGER "audit_signing_keys_append_only" BEFORE UPDATE OR DELETE ON "audit_signing_keys"
    FOR EACH ROW EXECUTE FUNCTION "audit_logs_refuse_change"();
CREATE TRIGGER "audit_signing_keys_no_truncate" BEFORE TRUNCATE ON "audit_signing_keys"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"();

-- The application issues digests and publishes its public key: it may read and add, never change
-- or remove.
REVOKE ALL ON "audit_digests", "audit_signing_keys" FROM PUBLIC;
REVOKE ALL ON "audit_digests", "audit_signing_keys" FROM "audit_log_app";
GRANT SELECT, INSERT ON "audit_digests" TO "audit_log_app";
GRANT SELECT, INSERT ON "audit_signing_keys" TO "audit_log_app";

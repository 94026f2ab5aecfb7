-- Log streams: each delivers every entry of its workspace's sealed log, in `seq` order, to an HTTPS
-- endpoint. A stream's settings (`audit_streams`) are apart from its delivery state
-- (`audit_stream_deliveries`), which the deliverer updates after every batch: those updates are
-- bookkeeping, never changes an auditor needs to see.

CREATE TABLE "audit_streams" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "url" TEXT NOT NULL,
    -- AES-256-GCM ciphertext of the HMAC secret, under a key kept outside the database
    -- (AUDIT_STREAMS_KEY or its key file): `v1.<key id>.<iv>.<tag>.<ciphertext>`, base64url.
    "secret" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    "created_by_id" UUID,
    "updated_by_id" UUID,
    CONSTRAINT "audit_streams_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "audit_streams_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspaces"("id")
        ON DELETE RESTRICT ON UPDATE RESTRICT,
    CONSTRAINT "audit_streams_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id")
        ON DELETE RESTRICT ON UPDATE RESTRICT,
    CONSTRAINT "audit_streams_updated_by_id_fkey" FOREIGN KEY ("updated_by_id") REFERENCES "users"("id")
        ON DELETE RESTRICT ON UPDATE RESTRICT,
    CONSTRAINT "audit_streams_secret_check" CHECK ("secret" ~ '^v1\.[0-9a-f]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$')
);
CREATE INDEX "audit_streams_workspace_id_created_at_idx" ON "audit_streams"("workspace_id", "created_at");

-- Where each stream stands: the last delivered entry (its `seq` in the workspace's chain, final once
-- sealed), the last error, when to try again, and which service instance holds the stream (a lease
-- that ends by itself when an instance dies).
CREATE TABLE "audit_stream_deliveries" (
    "stream_id" UUID NOT NULL,
    "last_seq" BIGINT NOT NULL DEFAULT 0,
    "last_entry_id" UUID,
    "last_delivered_at" TIMESTAMPTZ(3),
    "last_error" TEXT,
    "last_error_at" TIMESTAMPTZ(3),
    "failures" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),
    "lease_owner" UUID,
    "lease_until" TIMESTAMPTZ(3),
    CONSTRAINT "audit_stream_deliveries_pkey" PRIMARY KEY ("stream_id"),
    -- The state goes with its stream; it is not audited, so nothing audited changes behind the log.
    CONSTRAINT "audit_stream_deliveries_stream_id_fkey" FOREIGN KEY ("stream_id") REFERENCES "audit_streams"("id")
        ON DELETE CASCADE ON UPDATE RESTRICT,
    CONSTRAINT "audit_stream_deliveries_last_seq_check" CHECK ("last_seq" >= 0)
);
-- The deliverers' poll: streams that are due and not held.
CREATE INDEX "audit_stream_deliveries_next_attempt_at_idx" ON "audit_stream_deliveries"("next_attempt_at");

-- The application adds and removes streams (it never rewrites one), and moves their delivery state;
-- the state's stream is fixed, and the cascade from a removed stream runs as the owner.
REVOKE ALL ON "audit_streams", "audit_stream_deliveries" FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON "audit_streams" TO "audit_log_app";
GRANT SELECT, INSERT ON "audit_stream_deliveries" TO "audit_log_app";
GRANT UPDATE ("last_seq", "last_entry_id", "last_delivered_at", "last_error", "last_error_at", "failures",
    "next_attempt_at", "lease_owner", "lease_until") ON "audit_stream_deliveries" TO "audit_log_app";

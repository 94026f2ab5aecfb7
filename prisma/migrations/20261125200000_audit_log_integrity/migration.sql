-- Integrity of the audit log: append-only in the database, a per-workspace hash chain, and a
-- least-privilege role for the application.

-- 1. Hash chain. Each entry's hash covers its content, its position and the previous entry's hash.
ALTER TABLE "audit_logs" ADD COLUMN "seq" BIGINT, ADD COLUMN "prev_hash" TEXT, ADD COLUMN "hash" TEXT;

CREATE TABLE "audit_chain_heads" (
    "workspace_id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,
    CONSTRAINT "audit_chain_heads_pkey" PRIMARY KEY ("workspace_id")
);

-- quote_nullable keeps NULL and '' apart, and quotes separators inside values.
CREATE FUNCTION "audit_log_digest"("prev" TEXT, "e" "audit_logs") RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws('|',
        quote_nullable("prev"), "e"."seq"::text, "e"."id"::text, "e"."workspace_id"::text,
        to_char("e"."occurred_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        quote_nullable("e"."action"), quote_nullable("e"."resource_type"), "e"."resource_id"::text,
        quote_nullable("e"."resource_name"), quote_nullable("e"."actor_id"::text), quote_nullable("e"."actor_name"),
        quote_nullable("e"."actor_email"), quote_nullable("e"."request_id"), quote_nullable("e"."ip"),
        quote_nullable("e"."user_agent"), quote_nullable("e"."changes"::text)), 'UTF8')), 'hex')
$$;

-- Entries already in the table (databases migrated before the chain existed) are chained in order.
DO $$
DECLARE
    entry "audit_logs";
    previous TEXT;
    workspace UUID;
    position BIGINT;
BEGIN
    FOR entry IN SELECT * FROM "audit_logs" ORDER BY "workspace_id", "occurred_at", "id" LOOP
        IF workspace IS DISTINCT FROM entry."workspace_id" THEN
            workspace := entry."workspace_id";
            previous := '';
            position := 0;
        END IF;
        position := position + 1;
        entry."seq" := position;
        UPDATE "audit_logs" SET "seq" = position, "prev_hash" = previous, "hash" = "audit_log_digest"(previous, entry)
        WHERE "id" = entry."id" RETURNING "hash" INTO previous;
    END LOOP;
    INSERT INTO "audit_chain_heads" ("workspace_id", "seq", "hash")
    SELECT DISTINCT ON ("workspace_id") "workspace_id", "seq", "hash" FROM "audit_logs" ORDER BY "workspace_id", "seq" DESC;
END;
$$;

ALTER TABLE "audit_logs" ALTER COLUMN "seq" SET NOT NULL, ALTER COLUMN "prev_hash" SET NOT NULL, ALTER COLUMN "hash" SET NOT NULL;
CREATE UNIQUE INDEX "audit_logs_workspace_id_seq_key" ON "audit_logs"("workspace_id", "seq");

-- The chain head row is locked until the inserting transaction ends, so concurrent writers of one
-- workspace append one after the other and the chain never forks. SECURITY DEFINER: the
-- application's role needs no right on the heads table.
CREATE FUNCTION "audit_logs_chain"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    head "audit_chain_heads";
BEGIN
    INSERT INTO "audit_chain_heads" ("workspace_id", "seq", "hash") VALUES (NEW."workspace_id", 0, '')
    ON CONFLICT ("workspace_id") DO NOTHING;
    SELECT * INTO head FROM "audit_chain_heads" WHERE "workspace_id" = NEW."workspace_id" FOR UPDATE;
    NEW."seq" := head."seq" + 1;
    NEW."prev_hash" := head."hash";
    NEW."hash" := "audit_log_digest"(head."hash", NEW);
    UPDATE "audit_chain_heads" SET "seq" = NEW."seq", "hash" = NEW."hash" WHERE "workspace_id" = NEW."workspace_id";
    RETURN NEW;
END;
$$;
CREATE TRIGGER "audit_logs_chain" BEFORE INSERT ON "audit_logs" FOR EACH ROW EXECUTE FUNCTION "audit_logs_chain"();

-- 2. Append-only: no UPDATE, DELETE or TRUNCATE, whoever asks.
CREATE FUNCTION "audit_logs_refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER "audit_logs_append_only" BEFORE UPDATE OR DELETE ON "audit_logs"
    FOR EACH ROW EXECUTE FUNCTION "audit_logs_refuse_change"();
CREATE TRIGGER "audit_logs_no_truncate" BEFORE TRUNCATE ON "audit_logs"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"();
CREATE TRIGGER "audit_chain_heads_no_truncate" BEFORE TRUNCATE ON "audit_chain_heads"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"();

-- 3. The application's role: everything it needs, and on the audit log only SELECT and INSERT.
-- Roles belong to the whole server, so it is created once and granted in every database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'audit_log_app') THEN
        CREATE ROLE "audit_log_app" NOLOGIN;
    END IF;
END;
$$;
GRANT USAGE ON SCHEMA public TO "audit_log_app";
GRANT SELECT, INSERT, UPDATE, DELETE ON "workspaces", "users", "memberships", "api_tokens",
    "sources", "models", "segments", "destinations" TO "audit_log_app";
GRANT SELECT, INSERT ON "audit_logs" TO "audit_log_app";
GRANT SELECT ON "audit_chain_heads" TO "audit_log_app";
GRANT SELECT ON "_prisma_migrations" TO "audit_log_app";

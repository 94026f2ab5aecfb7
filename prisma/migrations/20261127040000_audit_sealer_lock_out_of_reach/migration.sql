-- One sealer at a time, and retention's forgetting of names after it, were ordered by the
-- transaction-level advisory lock 7460012. Any role may take any advisory lock, so the application's
-- role, holding pg_advisory_lock(7460012) in a session of its own, made every sealer return -1 (and
-- verify and the forgetting wait) for as long as it liked: entries stayed in the inbox, unchained.
-- The lock is now a row lock on the one row of a table in a schema only the owner may use, taken
-- inside the owner-rights functions: nobody else can lock the row or the table, nor name them (a
-- rule on a table queues an ACCESS EXCLUSIVE lock before the owner check, which blocks every later
-- lock; a table in a schema without USAGE is refused before that). `wait` waits for the row;
-- otherwise a sealer that finds it locked returns -1 at once, as before.
CREATE SCHEMA "audit_private";
REVOKE ALL ON SCHEMA "audit_private" FROM PUBLIC;
CREATE TABLE "audit_private"."sealer_lock" ("id" BOOLEAN PRIMARY KEY DEFAULT true CHECK ("id"));
INSERT INTO "audit_private"."sealer_lock" DEFAULT VALUES;
REVOKE ALL ON "audit_private"."sealer_lock" FROM PUBLIC;

-- The sealer: moves committed entries from the inbox into the log, oldest first, giving each
-- workspace's entries their place in its hash chain. One sealer at a time (the row of
-- audit_private.sealer_lock: a second caller waits for it when `wait`, else returns -1 at once);
-- writers never wait for it.
CREATE OR REPLACE FUNCTION "audit_log_seal"("max_entries" INTEGER, "wait" BOOLEAN DEFAULT false) RETURNS INTEGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r RECORD;
    e "audit_log_sealed";
    sealed "audit_log_sealed"[] := ARRAY[]::"audit_log_sealed"[];
    moved TID[] := ARRAY[]::TID[];
    heads JSONB := '{}'::jsonb;
    head JSONB;
    earliest TIMESTAMPTZ;
    latest TIMESTAMPTZ;
BEGIN
    IF "wait" THEN
        PERFORM 1 FROM "audit_private"."sealer_lock" FOR UPDATE;
    ELSE
        PERFORM 1 FROM "audit_private"."sealer_lock" FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN -1;
        END IF;
    END IF;
    SELECT min("occurred_at"), max("occurred_at") INTO earliest, latest
    FROM (SELECT "occurred_at" FROM "audit_log_inbox" ORDER BY "occurred_at", "id" LIMIT "max_entries") b;
    IF earliest IS NULL THEN
        RETURN 0;
    END IF;
    IF to_regclass("audit_log_partition_name"(earliest)) IS NULL OR to_regclass("audit_log_partition_name"(latest)) IS NULL THEN
        PERFORM "audit_log_create_partitions"(earliest, latest);
    END IF;
    FOR r IN SELECT i.ctid AS "row", i.* FROM "audit_log_inbox" i ORDER BY i."occurred_at", i."id" LIMIT "max_entries" LOOP
        head := heads->(r."workspace_id"::text);
        IF head IS NULL THEN
            INSERT INTO "audit_chain_heads" ("workspace_id", "seq", "hash") VALUES (r."workspace_id", 0, '')
            ON CONFLICT ("workspace_id") DO NOTHING;
            SELECT jsonb_build_object('seq', h."seq", 'hash', h."hash") INTO head
            FROM "audit_chain_heads" h WHERE h."workspace_id" = r."workspace_id" FOR UPDATE;
        END IF;
        e := ROW(r."id", r."workspace_id", r."occurred_at", r."action", r."resource_type", r."resource_id", r."resource_name",
                 r."actor_id", r."actor_name", r."actor_email", r."request_id", r."ip", r."user_agent", r."changes",
                 (head->>'seq')::BIGINT + 1, head->>'hash', NULL, r."actor_kind")::"audit_log_sealed";
        e."hash" := "audit_log_digest"(e."prev_hash", e);
        sealed := sealed || e;
        moved := moved || r."row";
        heads := heads || jsonb_build_object(r."workspace_id"::text, jsonb_build_object('seq', e."seq", 'hash', e."hash"));
    END LOOP;
    INSERT INTO "audit_log_sealed" SELECT * FROM unnest(sealed);
    PERFORM set_config('audit_log.sealing', 'on', true);
    DELETE FROM "audit_log_inbox" WHERE ctid = ANY(moved);
    PERFORM set_config('audit_log.sealing', '', true);
    UPDATE "audit_chain_heads" h SET "seq" = (x.value->>'seq')::BIGINT, "hash" = x.value->>'hash'
    FROM jsonb_each(heads) x WHERE h."workspace_id" = x.key::uuid;
    RETURN cardinality(sealed);
END;
$$;

-- Forgetting names waits for the sealer, under the same lock.
CREATE OR REPLACE FUNCTION "audit_resource_names_forget"("workspace" UUID) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    forgotten BIGINT;
BEGIN
    PERFORM 1 FROM "audit_private"."sealer_lock" FOR UPDATE;
    WITH removed AS (
        DELETE FROM "audit_resource_names" n
        WHERE n."workspace_id" = "workspace"
          AND NOT EXISTS (SELECT 1 FROM "audit_log_sealed" a WHERE a."workspace_id" = n."workspace_id"
                          AND a."resource_id" = n."resource_id" AND left(a."resource_name", 512) = n."resource_name")
        RETURNING 1
    )
    SELECT count(*) INTO forgotten FROM removed;
    RETURN forgotten;
END;
$$;

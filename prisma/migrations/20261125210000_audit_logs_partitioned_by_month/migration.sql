-- The audit log, partitioned by month of occurred_at (UTC). A query with a date range reads only
-- the months it covers, every index stays the size of one month, and retention drops whole months.
-- The primary key includes the partition key, as PostgreSQL requires; (workspace_id, seq) is no
-- longer unique in the database (a unique index must include occurred_at): the chain trigger
-- assigns each seq once, under the workspace's head lock, and `verify` checks the sequence.

-- 1. The current table moves aside; its indexes and the row-type function that depends on it go.
ALTER TABLE "audit_logs" RENAME TO "audit_logs_unpartitioned";
ALTER TABLE "audit_logs_unpartitioned" DROP CONSTRAINT "audit_logs_pkey";
DROP INDEX "audit_logs_workspace_id_occurred_at_id_idx";
DROP INDEX "audit_logs_workspace_id_resource_id_occurred_at_id_idx";
DROP INDEX "audit_logs_workspace_id_actor_id_occurred_at_id_idx";
DROP INDEX "audit_logs_workspace_id_resource_type_occurred_at_id_idx";
DROP INDEX "audit_logs_workspace_id_resource_name_trgm_idx";
DROP INDEX "audit_logs_workspace_id_seq_key";
DROP FUNCTION "audit_log_digest"(TEXT, "audit_logs_unpartitioned");

-- 2. The partitioned table, column for column the same.
CREATE TABLE "audit_logs" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "action" TEXT NOT NULL,
    "resource_type" TEXT NOT NULL,
    "resource_id" UUID NOT NULL,
    "resource_name" TEXT NOT NULL,
    "actor_id" UUID,
    "actor_name" TEXT,
    "actor_email" TEXT,
    "request_id" TEXT,
    "ip" TEXT,
    "user_agent" TEXT,
    "changes" JSONB NOT NULL,
    "seq" BIGINT NOT NULL,
    "prev_hash" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    CONSTRAINT "audit_logs_pkey" PRIMARY KEY ("id", "occurred_at"),
    CONSTRAINT "audit_logs_action_check" CHECK ("action" IN ('created', 'updated', 'deleted')),
    CONSTRAINT "audit_logs_resource_type_check" CHECK ("resource_type" IN ('source', 'model', 'segment', 'destination')),
    CONSTRAINT "audit_logs_changes_check" CHECK (jsonb_typeof("changes") = 'array')
) PARTITION BY RANGE ("occurred_at");

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

-- 3. Partitions: one per calendar month in UTC, named audit_logs_pYYYY_MM. Created as a plain table
-- and then attached, which locks the parent only against other schema changes (SHARE UPDATE
-- EXCLUSIVE), not against readers and writers. SECURITY DEFINER: the application's role creates no
-- tables of its own.
CREATE FUNCTION "audit_log_partition_name"("month" TIMESTAMPTZ) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'audit_logs_p' || to_char("month" AT TIME ZONE 'UTC', 'YYYY_MM')
$$;

CREATE FUNCTION "audit_log_create_partitions"("from_time" TIMESTAMPTZ, "to_time" TIMESTAMPTZ) RETURNS INTEGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    month TIMESTAMP := date_trunc('month', "from_time" AT TIME ZONE 'UTC');
    last_month TIMESTAMP := date_trunc('month', "to_time" AT TIME ZONE 'UTC');
    name TEXT;
    created INTEGER := 0;
BEGIN
    IF last_month - month > INTERVAL '100 years' THEN
        RAISE EXCEPTION 'refusing to create audit_logs partitions from % to %', "from_time", "to_time";
    END IF;
    WHILE month <= last_month LOOP
        name := "audit_log_partition_name"(month AT TIME ZONE 'UTC');
        IF to_regclass(name) IS NULL THEN
            -- Two writers may find the same month missing: the second waits here, then sees it
            -- (taking a table lock also refreshes this session's view of the catalog). This mode
            -- conflicts only with itself and schema changes, not with readers or writers.
            LOCK TABLE "audit_logs" IN SHARE UPDATE EXCLUSIVE MODE;
            IF to_regclass(name) IS NULL THEN
                EXECUTE format('CREATE TABLE %I (LIKE "audit_logs" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
                EXECUTE format('ALTER TABLE "audit_logs" ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                    name, month AT TIME ZONE 'UTC', (month + INTERVAL '1 month') AT TIME ZONE 'UTC');
                -- TRUNCATE triggers are not inherited: each month refuses it itself.
                EXECUTE format('CREATE TRIGGER "audit_logs_no_truncate" BEFORE TRUNCATE ON %I '
                    'FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"()', name);
                created := created + 1;
            END IF;
        END IF;
        month := month + INTERVAL '1 month';
    END LOOP;
    RETURN created;
END;
$$;

-- The application's one way to write entries: creates the months they fall in when the service has
-- not created them ahead (so a write never fails for want of a partition), then inserts them all in
-- one statement. Runs with the caller's rights, which are INSERT on audit_logs.
CREATE FUNCTION "audit_log_append"("entries" JSONB) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    earliest TIMESTAMPTZ;
    latest TIMESTAMPTZ;
    inserted INTEGER;
BEGIN
    SELECT min(("e"->>'occurred_at')::timestamptz), max(("e"->>'occurred_at')::timestamptz)
    INTO earliest, latest FROM jsonb_array_elements("entries") AS "e";
    IF earliest IS NULL THEN
        RETURN 0;
    END IF;
    IF to_regclass("audit_log_partition_name"(earliest)) IS NULL
       OR to_regclass("audit_log_partition_name"(latest)) IS NULL THEN
        PERFORM "audit_log_create_partitions"(earliest, latest);
    END IF;
    INSERT INTO "audit_logs" ("id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id",
        "resource_name", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes")
    SELECT "id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id", "resource_name",
        "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes"
    FROM jsonb_to_recordset("entries") AS "e"("id" uuid, "workspace_id" uuid, "occurred_at" timestamptz,
        "action" text, "resource_type" text, "resource_id" uuid, "resource_name" text, "actor_id" uuid,
        "actor_name" text, "actor_email" text, "request_id" text, "ip" text, "user_agent" text, "changes" jsonb);
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END;
$$;

-- 4. The months of the existing entries and the next three, then the entries themselves (before any
-- index or trigger exists: the copy keeps every seq and hash as it is).
SELECT "audit_log_create_partitions"(least(min("occurred_at"), now()), now() + INTERVAL '3 months')
FROM "audit_logs_unpartitioned";
INSERT INTO "audit_logs" SELECT "id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id",
    "resource_name", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes",
    "seq", "prev_hash", "hash"
FROM "audit_logs_unpartitioned";
DROP TABLE "audit_logs_unpartitioned";

-- 5. Indexes (created on every partition, present and future), as before.
CREATE INDEX "audit_logs_workspace_id_occurred_at_id_idx" ON "audit_logs"("workspace_id", "occurred_at" DESC, "id" DESC);
CREATE INDEX "audit_logs_workspace_id_resource_id_occurred_at_id_idx" ON "audit_logs"("workspace_id", "resource_id", "occurred_at" DESC, "id" DESC);
CREATE INDEX "audit_logs_workspace_id_actor_id_occurred_at_id_idx" ON "audit_logs"("workspace_id", "actor_id", "occurred_at" DESC, "id" DESC);
CREATE INDEX "audit_logs_workspace_id_resource_type_occurred_at_id_idx" ON "audit_logs"("workspace_id", "resource_type", "occurred_at" DESC, "id" DESC);
CREATE INDEX "audit_logs_workspace_id_resource_name_trgm_idx" ON "audit_logs" USING GIN ("workspace_id" uuid_ops, "resource_name" gin_trgm_ops);
CREATE INDEX "audit_logs_workspace_id_seq_idx" ON "audit_logs"("workspace_id", "seq");

-- 6. Triggers (cloned to every partition), as before.
CREATE TRIGGER "audit_logs_chain" BEFORE INSERT ON "audit_logs" FOR EACH ROW EXECUTE FUNCTION "audit_logs_chain"();
CREATE CONSTRAINT TRIGGER "audit_logs_chain_flush" AFTER INSERT ON "audit_logs"
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "audit_logs_chain_flush"();
CREATE TRIGGER "audit_logs_append_only" BEFORE UPDATE OR DELETE ON "audit_logs"
    FOR EACH ROW EXECUTE FUNCTION "audit_logs_refuse_change"();
CREATE TRIGGER "audit_logs_no_truncate" BEFORE TRUNCATE ON "audit_logs"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"();

-- 7. The application's rights, as before.
GRANT SELECT, INSERT ON "audit_logs" TO "audit_log_app";

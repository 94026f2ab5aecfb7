-- Retention: each workspace keeps its audit log for a number of months, never fewer than 12
-- (PCI DSS 10.5.1), 13 by default. A job removes older entries: whole monthly partitions when every
-- workspace allows it, bounded batches of one workspace's entries otherwise. Its runs are recorded.

ALTER TABLE "workspaces" ADD COLUMN "audit_retention_months" INTEGER NOT NULL DEFAULT 13,
    ADD CONSTRAINT "workspaces_audit_retention_months_check" CHECK ("audit_retention_months" BETWEEN 12 AND 1200);

CREATE TABLE "audit_retention_runs" (
    "id" UUID NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    "status" TEXT NOT NULL DEFAULT 'running',
    "actor" TEXT NOT NULL DEFAULT 'system',
    "dropped_partitions" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "entries_removed" BIGINT NOT NULL DEFAULT 0,
    "error" TEXT,
    CONSTRAINT "audit_retention_runs_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "audit_retention_runs_status_check" CHECK ("status" IN ('running', 'succeeded', 'failed'))
);
-- One run at a time, whatever the number of service instances.
CREATE UNIQUE INDEX "audit_retention_runs_one_running_key" ON "audit_retention_runs"("status") WHERE "status" = 'running';
CREATE INDEX "audit_retention_runs_started_at_idx" ON "audit_retention_runs"("started_at" DESC);

-- What one run removed from one workspace's log: the entries older than `removed_before`.
CREATE TABLE "audit_retention_removals" (
    "run_id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "retention_months" INTEGER NOT NULL,
    "removed_before" TIMESTAMPTZ(3) NOT NULL,
    "entries" BIGINT NOT NULL,
    "oldest" TIMESTAMPTZ(3),
    "newest" TIMESTAMPTZ(3),
    CONSTRAINT "audit_retention_removals_pkey" PRIMARY KEY ("workspace_id", "run_id"),
    CONSTRAINT "audit_retention_removals_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "audit_retention_runs"("id")
);

-- Where retention cut a workspace's hash chain: the seq and hash of a removed entry whose successor
-- was kept, so that `verify` can check the first kept entry's link instead of calling it broken.
CREATE TABLE "audit_chain_anchors" (
    "workspace_id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,
    "run_id" UUID NOT NULL,
    CONSTRAINT "audit_chain_anchors_pkey" PRIMARY KEY ("workspace_id", "seq")
);
CREATE TRIGGER "audit_chain_anchors_append_only" BEFORE UPDATE OR DELETE ON "audit_chain_anchors"
    FOR EACH ROW EXECUTE FUNCTION "audit_logs_refuse_change"();

-- Append-only, except for retention: an entry may be deleted only by `audit_log_purge` (which
-- flags its transaction) and only when it is more than 12 months old, whoever asks.
CREATE OR REPLACE FUNCTION "audit_logs_refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND TG_TABLE_NAME LIKE 'audit_logs%'
       AND current_setting('audit_log.retention', true) = 'on' THEN
        IF OLD."occurred_at" < now() - INTERVAL '12 months' THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed',
        CASE WHEN TG_TABLE_NAME LIKE 'audit_logs_p%' THEN 'audit_logs' ELSE TG_TABLE_NAME END, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- One bounded batch of one workspace's entries older than `before`, oldest first, with an anchor
-- for each removed entry whose successor was not removed with it.
CREATE FUNCTION "audit_log_purge"("workspace" UUID, "before" TIMESTAMPTZ, "batch" INTEGER, "run" UUID)
RETURNS TABLE ("entries" BIGINT, "oldest" TIMESTAMPTZ, "newest" TIMESTAMPTZ)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF "before" > now() - INTERVAL '12 months' THEN
        RAISE EXCEPTION 'audit entries are kept at least 12 months: cannot remove entries after %', "before";
    END IF;
    PERFORM set_config('audit_log.retention', 'on', true);
    RETURN QUERY
    WITH doomed AS (
        SELECT a."id", a."occurred_at" FROM "audit_logs" a
        WHERE a."workspace_id" = "workspace" AND a."occurred_at" < "before"
        ORDER BY a."occurred_at", a."id" LIMIT "batch"
    ), removed AS (
        DELETE FROM "audit_logs" a USING doomed d
        WHERE a."workspace_id" = "workspace" AND a."id" = d."id" AND a."occurred_at" = d."occurred_at"
          AND a."occurred_at" < "before"
        RETURNING a."seq", a."hash", a."occurred_at"
    ), anchored AS (
        INSERT INTO "audit_chain_anchors" ("workspace_id", "seq", "hash", "run_id")
        SELECT "workspace", r."seq", r."hash", "run" FROM removed r
        WHERE NOT EXISTS (SELECT 1 FROM removed s WHERE s."seq" = r."seq" + 1)
        ON CONFLICT DO NOTHING
    )
    SELECT count(*), min(r."occurred_at"), max(r."occurred_at") FROM removed r;
    PERFORM set_config('audit_log.retention', '', true);
END;
$$;

-- Drops one whole month (every workspace's entries in it) after anchoring each chain it cuts, and
-- returns what it removed per workspace. Refuses a month that ends less than 12 months ago.
CREATE FUNCTION "audit_log_drop_partition"("partition" TEXT, "run" UUID)
RETURNS TABLE ("workspace_id" UUID, "entries" BIGINT, "oldest" TIMESTAMPTZ, "newest" TIMESTAMPTZ)
-- Dropping a partition waits for the queries reading the table: give up after 10 s (the next run
-- tries again) rather than queue every new query behind the wait.
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public SET lock_timeout = '10s' AS $$
DECLARE
    month_end TIMESTAMPTZ;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = 'audit_logs'::regclass AND c.relname = "partition")
       OR "partition" !~ '^audit_logs_p[0-9]{4}_[0-9]{2}$' THEN
        RAISE EXCEPTION '% is not a partition of audit_logs', "partition";
    END IF;
    month_end := (to_timestamp(substr("partition", 13), 'YYYY_MM')::timestamp AT TIME ZONE 'UTC') + INTERVAL '1 month';
    IF month_end > now() - INTERVAL '12 months' THEN
        RAISE EXCEPTION 'audit entries are kept at least 12 months: cannot drop % (ends %)', "partition", month_end;
    END IF;
    EXECUTE format('INSERT INTO "audit_chain_anchors" ("workspace_id", "seq", "hash", "run_id")
        SELECT p."workspace_id", p."seq", p."hash", $1 FROM %I p
        WHERE NOT EXISTS (SELECT 1 FROM %I q WHERE q."workspace_id" = p."workspace_id" AND q."seq" = p."seq" + 1)
        ON CONFLICT DO NOTHING', "partition", "partition") USING "run";
    RETURN QUERY EXECUTE format('SELECT p."workspace_id", count(*), min(p."occurred_at"), max(p."occurred_at")
        FROM %I p GROUP BY p."workspace_id"', "partition");
    EXECUTE format('DROP TABLE %I', "partition");
END;
$$;

GRANT SELECT ON "audit_chain_anchors" TO "audit_log_app";
GRANT SELECT, INSERT, UPDATE ON "audit_retention_runs", "audit_retention_removals" TO "audit_log_app";

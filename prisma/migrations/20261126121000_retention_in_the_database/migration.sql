-- Retention is enforced by the database, not trusted to its caller. Only the owner and the role
-- `audit_log_maintenance` may run the functions that create months or remove entries; each removal
-- is checked against the retention of the entry's own workspace (and the 12-month floor) row by row,
-- recorded with its run in the same statement, and the records cannot be rewritten afterwards.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'audit_log_maintenance') THEN
        CREATE ROLE "audit_log_maintenance" NOLOGIN;
    END IF;
END;
$$;

-- How long an entry of a workspace is kept: its own retention, never below 12 months; 13 (the
-- default) for a workspace that no longer exists.
CREATE FUNCTION "audit_retention_cutoff"("workspace" UUID) RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT now() - make_interval(months => greatest(12, coalesce(
        (SELECT w."audit_retention_months" FROM "workspaces" w WHERE w."id" = "workspace"), 13)))
$$;

-- Entries and their inbox are append-only. An entry may be deleted only inside a retention function
-- (which flags its transaction and runs as the owner) and only once its workspace's retention has
-- passed, whoever asks: a connection that sets the flag itself gains nothing it could not do anyway.
CREATE OR REPLACE FUNCTION "audit_logs_refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND TG_TABLE_NAME LIKE 'audit_logs%'
       AND current_setting('audit_log.retention', true) = 'on' THEN
        IF OLD."occurred_at" < "audit_retention_cutoff"(OLD."workspace_id") THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit entry % of workspace % is within its retention and cannot be removed', OLD."id", OLD."workspace_id"
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND TG_TABLE_NAME = 'audit_log_inbox'
       AND current_setting('audit_log.sealing', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed',
        CASE WHEN TG_TABLE_NAME LIKE 'audit_log%' THEN 'audit_logs' ELSE TG_TABLE_NAME END, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- A run's record: created running, finished once; its identity, start and actor never change, and
-- its counts only grow while it runs. Removals only grow within their run. Nothing is deleted.
CREATE FUNCTION "audit_retention_records_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Separate IFs: each table's fields exist only in its own branch.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_retention_runs' THEN
        IF OLD."status" = 'running' AND NEW."id" = OLD."id" AND NEW."started_at" = OLD."started_at"
           AND NEW."actor" = OLD."actor" AND NEW."entries_removed" >= OLD."entries_removed"
           AND NEW."dropped_partitions"[1:cardinality(OLD."dropped_partitions")] = OLD."dropped_partitions" THEN
            RETURN NEW;
        END IF;
    ELSIF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_retention_removals' THEN
        IF NEW."run_id" = OLD."run_id" AND NEW."workspace_id" = OLD."workspace_id"
           AND NEW."retention_months" = OLD."retention_months" AND NEW."removed_before" = OLD."removed_before"
           AND NEW."entries" >= OLD."entries"
           AND EXISTS (SELECT 1 FROM "audit_retention_runs" r WHERE r."id" = OLD."run_id" AND r."status" = 'running') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER "audit_retention_runs_append_only" BEFORE UPDATE OR DELETE ON "audit_retention_runs"
    FOR EACH ROW EXECUTE FUNCTION "audit_retention_records_append_only"();
CREATE TRIGGER "audit_retention_removals_append_only" BEFORE UPDATE OR DELETE ON "audit_retention_removals"
    FOR EACH ROW EXECUTE FUNCTION "audit_retention_records_append_only"();
CREATE TRIGGER "audit_retention_runs_no_truncate" BEFORE TRUNCATE ON "audit_retention_runs"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"();
CREATE TRIGGER "audit_retention_removals_no_truncate" BEFORE TRUNCATE ON "audit_retention_removals"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"();
CREATE TRIGGER "audit_chain_anchors_no_truncate" BEFORE TRUNCATE ON "audit_chain_anchors"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"();

-- Starts a run (marking one abandoned for 6 hours as failed); NULL while another is running.
CREATE FUNCTION "audit_retention_begin"("actor" TEXT) RETURNS UUID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    run UUID := "audit_uuidv7"(clock_timestamp());
BEGIN
    UPDATE "audit_retention_runs" SET "status" = 'failed', "finished_at" = now(),
           "error" = 'abandoned: still running after 6 hours'
    WHERE "status" = 'running' AND "started_at" < now() - INTERVAL '6 hours';
    INSERT INTO "audit_retention_runs" ("id", "actor") VALUES (run, "actor") ON CONFLICT DO NOTHING;
    RETURN CASE WHEN FOUND THEN run END;
END;
$$;

CREATE FUNCTION "audit_retention_finish"("run" UUID, "failure" TEXT) RETURNS VOID
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    UPDATE "audit_retention_runs" SET "status" = CASE WHEN "failure" IS NULL THEN 'succeeded' ELSE 'failed' END,
           "finished_at" = now(), "error" = "failure"
    WHERE "id" = "run" AND "status" = 'running'
$$;

-- Adds what one removal took from each workspace to the run's record.
CREATE FUNCTION "audit_retention_record"("run" UUID, "removed" JSONB, "partition" TEXT) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    total BIGINT;
BEGIN
    INSERT INTO "audit_retention_removals" ("run_id", "workspace_id", "retention_months", "removed_before", "entries", "oldest", "newest")
    SELECT "run", r."workspace_id", greatest(12, coalesce(w."audit_retention_months", 13)),
           "audit_retention_cutoff"(r."workspace_id"), r."entries", r."oldest", r."newest"
    FROM jsonb_to_recordset("removed") AS r("workspace_id" UUID, "entries" BIGINT, "oldest" TIMESTAMPTZ, "newest" TIMESTAMPTZ)
    LEFT JOIN "workspaces" w ON w."id" = r."workspace_id"
    WHERE r."entries" > 0
    ON CONFLICT ("workspace_id", "run_id") DO UPDATE SET
        "entries" = "audit_retention_removals"."entries" + excluded."entries",
        "oldest" = least("audit_retention_removals"."oldest", excluded."oldest"),
        "newest" = greatest("audit_retention_removals"."newest", excluded."newest");
    SELECT coalesce(sum(r."entries"), 0) INTO total
    FROM jsonb_to_recordset("removed") AS r("workspace_id" UUID, "entries" BIGINT);
    UPDATE "audit_retention_runs" SET "entries_removed" = "entries_removed" + total,
           "dropped_partitions" = CASE WHEN "partition" IS NULL THEN "dropped_partitions" ELSE array_append("dropped_partitions", "partition") END
    WHERE "id" = "run" AND "status" = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retention run % is not running', "run";
    END IF;
    RETURN total;
END;
$$;

-- One bounded batch of one workspace's entries past its retention, oldest first, anchored where it
-- cuts the chain and recorded on the run. Returns how many it removed.
DROP FUNCTION "audit_log_purge"(UUID, TIMESTAMPTZ, INTEGER, UUID);
CREATE FUNCTION "audit_log_purge"("run" UUID, "workspace" UUID, "batch" INTEGER) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    cutoff TIMESTAMPTZ := "audit_retention_cutoff"("workspace");
    removed JSONB;
BEGIN
    PERFORM set_config('audit_log.retention', 'on', true);
    WITH doomed AS (
        SELECT a."id", a."occurred_at" FROM "audit_log_sealed" a
        WHERE a."workspace_id" = "workspace" AND a."occurred_at" < cutoff
        ORDER BY a."occurred_at", a."id" LIMIT "batch"
    ), gone AS (
        DELETE FROM "audit_log_sealed" a USING doomed d
        WHERE a."workspace_id" = "workspace" AND a."id" = d."id" AND a."occurred_at" = d."occurred_at"
        RETURNING a."seq", a."hash", a."occurred_at"
    ), anchored AS (
        INSERT INTO "audit_chain_anchors" ("workspace_id", "seq", "hash", "run_id")
        SELECT "workspace", g."seq", g."hash", "run" FROM gone g
        WHERE NOT EXISTS (SELECT 1 FROM gone s WHERE s."seq" = g."seq" + 1)
        ON CONFLICT DO NOTHING
    )
    SELECT jsonb_build_array(jsonb_build_object('workspace_id', "workspace", 'entries', count(*),
           'oldest', min(g."occurred_at"), 'newest', max(g."occurred_at")))
    INTO removed FROM gone g;
    PERFORM set_config('audit_log.retention', '', true);
    RETURN "audit_retention_record"("run", removed, NULL);
END;
$$;

-- Drops one whole month, only when every workspace with entries in it has passed its retention for
-- the whole month; anchors each chain it cuts and records what it removed per workspace.
DROP FUNCTION "audit_log_drop_partition"(TEXT, UUID);
CREATE FUNCTION "audit_log_drop_partition"("run" UUID, "partition" TEXT) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public SET lock_timeout = '10s' AS $$
DECLARE
    month_end TIMESTAMPTZ;
    kept UUID;
    removed JSONB;
BEGIN
    IF "partition" !~ '^audit_logs_p[0-9]{4}_[0-9]{2}$'
       OR NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                      WHERE i.inhparent = 'audit_log_sealed'::regclass AND c.relname = "partition") THEN
        RAISE EXCEPTION '% is not a partition of audit_logs', "partition";
    END IF;
    month_end := (to_timestamp(substr("partition", 13), 'YYYY_MM')::timestamp AT TIME ZONE 'UTC') + INTERVAL '1 month';
    IF month_end > now() - INTERVAL '12 months' THEN
        RAISE EXCEPTION 'audit entries are kept at least 12 months: cannot drop % (ends %)', "partition", month_end;
    END IF;
    EXECUTE format('SELECT p."workspace_id" FROM (SELECT DISTINCT "workspace_id" FROM %I) p
        WHERE "audit_retention_cutoff"(p."workspace_id") < $1 LIMIT 1', "partition") INTO kept USING month_end;
    IF kept IS NOT NULL THEN
        RAISE EXCEPTION 'workspace % keeps entries of % (its retention has not passed the month''s end)', kept, "partition";
    END IF;
    EXECUTE format('INSERT INTO "audit_chain_anchors" ("workspace_id", "seq", "hash", "run_id")
        SELECT p."workspace_id", p."seq", p."hash", $1 FROM %I p
        WHERE NOT EXISTS (SELECT 1 FROM %I q WHERE q."workspace_id" = p."workspace_id" AND q."seq" = p."seq" + 1)
        ON CONFLICT DO NOTHING', "partition", "partition") USING "run";
    EXECUTE format('SELECT coalesce(jsonb_agg(jsonb_build_object(''workspace_id'', w, ''entries'', n, ''oldest'', o, ''newest'', x)), ''[]'')
        FROM (SELECT p."workspace_id" AS w, count(*) AS n, min(p."occurred_at") AS o, max(p."occurred_at") AS x
              FROM %I p GROUP BY p."workspace_id") s', "partition") INTO removed;
    EXECUTE format('DROP TABLE %I', "partition");
    RETURN "audit_retention_record"("run", removed, "partition");
END;
$$;

-- Rights: the application's role reads; the maintenance role (and the owner) run retention and
-- create months. Nothing that writes or removes entries or their records is open to PUBLIC.
REVOKE ALL ON FUNCTION "audit_log_purge"(UUID, UUID, INTEGER), "audit_log_drop_partition"(UUID, TEXT),
    "audit_retention_begin"(TEXT), "audit_retention_finish"(UUID, TEXT), "audit_retention_record"(UUID, JSONB, TEXT),
    "audit_log_create_partitions"(TIMESTAMPTZ, TIMESTAMPTZ), "audit_resource_names_forget"(UUID),
    "audit_retention_cutoff"(UUID) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "audit_log_purge"(UUID, UUID, INTEGER), "audit_log_drop_partition"(UUID, TEXT),
    "audit_retention_begin"(TEXT), "audit_retention_finish"(UUID, TEXT),
    "audit_log_create_partitions"(TIMESTAMPTZ, TIMESTAMPTZ), "audit_resource_names_forget"(UUID),
    "audit_log_seal"(INTEGER, BOOLEAN) TO "audit_log_maintenance";
REVOKE INSERT, UPDATE, DELETE ON "audit_retention_runs", "audit_retention_removals" FROM "audit_log_app";
GRANT USAGE ON SCHEMA public TO "audit_log_maintenance";
GRANT SELECT ON "audit_retention_runs", "audit_retention_removals", "audit_chain_anchors", "audit_log_sealed",
    "audit_logs", "workspaces" TO "audit_log_maintenance";

-- The database writes the audit log. Triggers on every audited table record each change, whatever
-- made it (Prisma, a nested write, raw SQL, psql), in the transaction of the change. Entries land in
-- a narrow inbox with no index; a sealer moves them, after commit, into the partitioned, indexed,
-- hash-chained log. `audit_logs` becomes a view of both, so every committed entry is readable at once.
--
-- Who acted comes from the application: its Prisma client appends `/*audit='<base64url JSON>'*/` to
-- each statement it sends, and the triggers read it from current_query(). A statement without it
-- (psql, another program) is recorded as the database role that ran it.
--
-- What is audited (table, resource type, secret fields, the secret rule) is configured from the
-- application's registry (src/audit/capture/audited-resources.ts) by `audit_attach`, which the
-- migration runner calls after the migrations.

-- 1. Identity never changes: no ON UPDATE CASCADE into or out of the audited tables.
ALTER TABLE "sources" DROP CONSTRAINT "sources_workspace_id_fkey", DROP CONSTRAINT "sources_created_by_id_fkey",
    DROP CONSTRAINT "sources_updated_by_id_fkey";
ALTER TABLE "sources" ADD CONSTRAINT "sources_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspaces"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "sources_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "sources_updated_by_id_fkey" FOREIGN KEY ("updated_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;
ALTER TABLE "models" DROP CONSTRAINT "models_workspace_id_fkey", DROP CONSTRAINT "models_source_id_fkey",
    DROP CONSTRAINT "models_created_by_id_fkey", DROP CONSTRAINT "models_updated_by_id_fkey";
ALTER TABLE "models" ADD CONSTRAINT "models_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspaces"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "models_source_id_fkey" FOREIGN KEY ("source_id") REFERENCES "sources"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "models_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "models_updated_by_id_fkey" FOREIGN KEY ("updated_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;
ALTER TABLE "segments" DROP CONSTRAINT "segments_workspace_id_fkey", DROP CONSTRAINT "segments_model_id_fkey",
    DROP CONSTRAINT "segments_created_by_id_fkey", DROP CONSTRAINT "segments_updated_by_id_fkey";
ALTER TABLE "segments" ADD CONSTRAINT "segments_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspaces"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "segments_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "models"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "segments_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "segments_updated_by_id_fkey" FOREIGN KEY ("updated_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;
ALTER TABLE "destinations" DROP CONSTRAINT "destinations_workspace_id_fkey",
    DROP CONSTRAINT "destinations_created_by_id_fkey", DROP CONSTRAINT "destinations_updated_by_id_fkey";
ALTER TABLE "destinations" ADD CONSTRAINT "destinations_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspaces"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "destinations_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT "destinations_updated_by_id_fkey" FOREIGN KEY ("updated_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;

-- 2. The sealed log keeps its partitions, indexes and entries; it gains who acted, by kind. Entries
-- written before this migration keep NULL there (a user when actor_id is set, else the system), so
-- their hashes stay what they were: the digest appends the kind only when it is set.
ALTER TABLE "audit_logs" RENAME TO "audit_log_sealed";
ALTER TABLE "audit_log_sealed" ADD COLUMN "actor_kind" TEXT,
    ADD CONSTRAINT "audit_log_sealed_actor_kind_check" CHECK ("actor_kind" IN ('user', 'system', 'database'));
DROP TRIGGER "audit_logs_chain" ON "audit_log_sealed";
DROP TRIGGER "audit_logs_chain_flush" ON "audit_log_sealed";
DROP FUNCTION "audit_logs_chain_flush"();
DROP FUNCTION "audit_logs_chain"();
DROP FUNCTION "audit_log_append"(JSONB);

CREATE OR REPLACE FUNCTION "audit_log_digest"("prev" TEXT, "e" "audit_log_sealed") RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws('|',
        quote_nullable("prev"), "e"."seq"::text, "e"."id"::text, "e"."workspace_id"::text,
        to_char("e"."occurred_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        quote_nullable("e"."action"), quote_nullable("e"."resource_type"), "e"."resource_id"::text,
        quote_nullable("e"."resource_name"), quote_nullable("e"."actor_id"::text), quote_nullable("e"."actor_name"),
        quote_nullable("e"."actor_email"), quote_nullable("e"."request_id"), quote_nullable("e"."ip"),
        quote_nullable("e"."user_agent"), quote_nullable("e"."changes"::text), "e"."actor_kind"), 'UTF8')), 'hex')
$$;

-- Partitions keep their names (audit_logs_pYYYY_MM); the functions that manage them name the new parent.
CREATE OR REPLACE FUNCTION "audit_log_create_partitions"("from_time" TIMESTAMPTZ, "to_time" TIMESTAMPTZ) RETURNS INTEGER
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
            LOCK TABLE "audit_log_sealed" IN SHARE UPDATE EXCLUSIVE MODE;
            IF to_regclass(name) IS NULL THEN
                EXECUTE format('CREATE TABLE %I (LIKE "audit_log_sealed" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
                EXECUTE format('ALTER TABLE "audit_log_sealed" ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                    name, month AT TIME ZONE 'UTC', (month + INTERVAL '1 month') AT TIME ZONE 'UTC');
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

CREATE OR REPLACE FUNCTION "audit_log_purge"("workspace" UUID, "before" TIMESTAMPTZ, "batch" INTEGER, "run" UUID)
RETURNS TABLE ("entries" BIGINT, "oldest" TIMESTAMPTZ, "newest" TIMESTAMPTZ)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF "before" > now() - INTERVAL '12 months' THEN
        RAISE EXCEPTION 'audit entries are kept at least 12 months: cannot remove entries after %', "before";
    END IF;
    PERFORM set_config('audit_log.retention', 'on', true);
    RETURN QUERY
    WITH doomed AS (
        SELECT a."id", a."occurred_at" FROM "audit_log_sealed" a
        WHERE a."workspace_id" = "workspace" AND a."occurred_at" < "before"
        ORDER BY a."occurred_at", a."id" LIMIT "batch"
    ), removed AS (
        DELETE FROM "audit_log_sealed" a USING doomed d
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

CREATE OR REPLACE FUNCTION "audit_log_drop_partition"("partition" TEXT, "run" UUID)
RETURNS TABLE ("workspace_id" UUID, "entries" BIGINT, "oldest" TIMESTAMPTZ, "newest" TIMESTAMPTZ)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public SET lock_timeout = '10s' AS $$
DECLARE
    month_end TIMESTAMPTZ;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = 'audit_log_sealed'::regclass AND c.relname = "partition")
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

CREATE OR REPLACE FUNCTION "audit_resource_names_forget"("workspace" UUID) RETURNS BIGINT
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH forgotten AS (
        DELETE FROM "audit_resource_names" n
        WHERE n."workspace_id" = "workspace"
          AND NOT EXISTS (SELECT 1 FROM "audit_log_sealed" a WHERE a."workspace_id" = n."workspace_id"
                          AND a."resource_id" = n."resource_id" AND a."resource_name" = n."resource_name")
        RETURNING 1
    )
    SELECT count(*) FROM forgotten
$$;

-- 3. The inbox: what the write path appends to. No index and no trigger, so that an audited write
-- costs one narrow heap insert per entry; the sealer empties it.
CREATE TABLE "audit_log_inbox" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "action" TEXT NOT NULL,
    "resource_type" TEXT NOT NULL,
    "resource_id" UUID NOT NULL,
    "resource_name" TEXT NOT NULL,
    "actor_kind" TEXT NOT NULL,
    "actor_id" UUID,
    "actor_name" TEXT,
    "actor_email" TEXT,
    "request_id" TEXT,
    "ip" TEXT,
    "user_agent" TEXT,
    "changes" JSONB NOT NULL
);
-- Append-only like the log, except that the sealer (which flags its transaction) moves entries out.
CREATE OR REPLACE FUNCTION "audit_logs_refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND TG_TABLE_NAME LIKE 'audit_logs%'
       AND current_setting('audit_log.retention', true) = 'on' THEN
        IF OLD."occurred_at" < now() - INTERVAL '12 months' THEN
            RETURN OLD;
        END IF;
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
CREATE TRIGGER "audit_log_inbox_append_only" BEFORE UPDATE OR DELETE ON "audit_log_inbox"
    FOR EACH ROW EXECUTE FUNCTION "audit_logs_refuse_change"();
CREATE TRIGGER "audit_log_inbox_no_truncate" BEFORE TRUNCATE ON "audit_log_inbox"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_logs_refuse_change"();
-- Deleted entries leave dead rows that every read of the inbox walks past: vacuum it often.
ALTER TABLE "audit_log_inbox" SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000, autovacuum_vacuum_cost_delay = 0);

-- Every entry, sealed or not: what the query API reads.
CREATE VIEW "audit_logs" AS
    SELECT "id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id", "resource_name",
           "actor_kind", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes",
           "seq", "prev_hash", "hash"
    FROM "audit_log_sealed"
    UNION ALL
    SELECT "id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id", "resource_name",
           "actor_kind", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes",
           NULL::BIGINT, NULL::TEXT, NULL::TEXT
    FROM "audit_log_inbox";

-- 4. Who is acting: the application's tag at the end of the running statement, else the database role.
CREATE FUNCTION "audit_context"() RETURNS JSONB LANGUAGE plpgsql STABLE AS $$
DECLARE
    tag TEXT := substring(current_query() FROM '/\*[^*]*audit=''([A-Za-z0-9_-]+)''[^*]*\*/\s*;?\s*$');
BEGIN
    IF tag IS NULL THEN
        RETURN jsonb_build_object('kind', 'database', 'name', session_user::text);
    END IF;
    RETURN convert_from(decode(translate(tag, '-_', '+/') || repeat('=', (4 - length(tag) % 4) % 4), 'base64'), 'UTF8')::jsonb;
END;
$$;

-- A UUIDv7 for the given instant (PostgreSQL 15 has no uuidv7()): 48 bits of Unix milliseconds, the
-- microseconds within that millisecond in the 12 bits after the version (RFC 9562, method 3), so that
-- two entries of the same row in one millisecond keep their order, then random bits.
CREATE FUNCTION "audit_uuidv7"("at" TIMESTAMPTZ) RETURNS UUID LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    micros BIGINT := floor(extract(epoch FROM "at") * 1000000)::BIGINT;
    sub INTEGER := (micros % 1000)::INTEGER;
    bytes BYTEA := overlay(uuid_send(gen_random_uuid()) PLACING substring(int8send(micros / 1000) FROM 3) FROM 1 FOR 6);
BEGIN
    bytes := set_byte(set_byte(bytes, 6, 112 + (sub >> 8)), 7, sub & 255);
    RETURN encode(bytes, 'hex')::uuid;
END;
$$;

-- 5. The diff, in SQL. A document is flattened to leaves with unambiguous paths: `.key` for a key that
-- is a plain identifier, `["…"]` (JSON string escaping) for any other key, `[n]` for array elements;
-- an empty object or array is a leaf of its own. Under a secret field, a leaf is secret when a key
-- on its path matches the secret rule, or it is the `value` beside a `name`/`key` that matches it;
-- a URL's password is secret wherever it appears.
CREATE TYPE "audit_leaf" AS ("path" TEXT, "value" JSONB, "secret" BOOLEAN);

CREATE FUNCTION "audit_path_key"("key" TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN "key" ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN '.' || "key" ELSE '[' || to_jsonb("key")::text || ']' END
$$;

CREATE FUNCTION "audit_flatten"("doc" JSONB, "path" TEXT, "secret" BOOLEAN, "scope" BOOLEAN, "pattern" TEXT)
RETURNS SETOF "audit_leaf" LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k TEXT;
    v JSONB;
    i INTEGER;
    labelled BOOLEAN := false;
BEGIN
    CASE jsonb_typeof("doc")
    WHEN 'object' THEN
        IF "doc" = '{}'::jsonb THEN
            RETURN NEXT ROW("path", "doc", "secret")::"audit_leaf";
            RETURN;
        END IF;
        IF "scope" AND "doc" ? 'value' THEN
            labelled := coalesce(("doc"->>'name') ~* "pattern", false) OR coalesce(("doc"->>'key') ~* "pattern", false);
        END IF;
        FOR k, v IN SELECT * FROM jsonb_each("doc") LOOP
            RETURN QUERY SELECT * FROM "audit_flatten"(v, "path" || "audit_path_key"(k),
                "secret" OR ("scope" AND (k ~* "pattern" OR (labelled AND k = 'value'))), "scope", "pattern");
        END LOOP;
    WHEN 'array' THEN
        IF jsonb_array_length("doc") = 0 THEN
            RETURN NEXT ROW("path", "doc", "secret")::"audit_leaf";
            RETURN;
        END IF;
        FOR i IN 0 .. jsonb_array_length("doc") - 1 LOOP
            RETURN QUERY SELECT * FROM "audit_flatten"("doc"->i, "path" || '[' || i || ']', "secret", "scope", "pattern");
        END LOOP;
    ELSE
        RETURN NEXT ROW("path", "doc", "secret")::"audit_leaf";
    END CASE;
END;
$$;

-- What an entry shows of a leaf: the value, "[REDACTED]" for a secret, a URL with its password
-- replaced by "[REDACTED]".
CREATE FUNCTION "audit_shown"("leaf" "audit_leaf") RETURNS JSONB LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN ("leaf")."secret" THEN '"[REDACTED]"'::jsonb
        WHEN jsonb_typeof(("leaf")."value") = 'string' AND (("leaf")."value" #>> '{}') ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:[^/?#@]*@'
            THEN to_jsonb(regexp_replace(("leaf")."value" #>> '{}', '^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:)[^/?#@]*@', '\1[REDACTED]@'))
        ELSE ("leaf")."value" END
$$;

-- The field-level changes between two states of a row (NULL for a creation or a deletion): one
-- element per leaf that differs, compared on the real values (a changed secret shows as changed).
-- Top-level fields are compared first, and only those that differ are walked.
CREATE FUNCTION "audit_changes"("before" JSONB, "after" JSONB, "secret_fields" TEXT[], "pattern" TEXT)
RETURNS JSONB LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    field TEXT;
    result JSONB := '[]'::jsonb;
    part JSONB;
BEGIN
    FOR field IN
        SELECT k FROM (SELECT jsonb_object_keys(coalesce("before", '{}'::jsonb)) AS k
                       UNION SELECT jsonb_object_keys(coalesce("after", '{}'::jsonb))) keys ORDER BY k
    LOOP
        IF "before" IS NOT NULL AND "after" IS NOT NULL AND ("before"->field)::text IS NOT DISTINCT FROM ("after"->field)::text THEN
            CONTINUE;
        END IF;
        SELECT coalesce(jsonb_agg(
            CASE WHEN o."path" IS NULL THEN jsonb_build_object('field', n."path", 'after', "audit_shown"(n))
                 WHEN n."path" IS NULL THEN jsonb_build_object('field', o."path", 'before', "audit_shown"(o))
                 ELSE jsonb_build_object('field', o."path", 'before', "audit_shown"(o), 'after', "audit_shown"(n)) END
            ORDER BY coalesce(o."path", n."path")), '[]'::jsonb)
        INTO part
        FROM (SELECT * FROM "audit_flatten"("before"->field, field, false, field = ANY("secret_fields"), "pattern")
              WHERE "before" ? field) o
        FULL JOIN (SELECT * FROM "audit_flatten"("after"->field, field, false, field = ANY("secret_fields"), "pattern")
                   WHERE "after" ? field) n ON o."path" = n."path"
        WHERE o."path" IS NULL OR n."path" IS NULL OR o."value"::text <> n."value"::text;
        result := result || part;
    END LOOP;
    RETURN result;
END;
$$;

-- A row as the diff sees it: API field names, without the bookkeeping columns.
CREATE FUNCTION "audit_row_fields"("row" JSONB, "field_names" JSONB) RETURNS JSONB LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(coalesce("field_names"->>k, k), v), '{}'::jsonb)
    FROM jsonb_each("row" - ARRAY['id', 'workspace_id', 'created_at', 'updated_at', 'created_by_id', 'updated_by_id']) AS f(k, v)
$$;

-- 6. Before each row is written: its identity, creator and creation time cannot change; an update that
-- changes no audited column keeps its last editor and time; otherwise the database sets who and when
-- from the same context the entry records.
CREATE FUNCTION "audit_stamp"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    context JSONB;
    actor UUID;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW."id" IS DISTINCT FROM OLD."id" OR NEW."workspace_id" IS DISTINCT FROM OLD."workspace_id"
           OR NEW."created_at" IS DISTINCT FROM OLD."created_at" OR NEW."created_by_id" IS DISTINCT FROM OLD."created_by_id" THEN
            RAISE EXCEPTION '%: id, workspace_id, created_at and created_by_id cannot be changed', TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation',
                      HINT = 'A resource keeps its identity and creator; create a new one instead.';
        END IF;
        IF (to_jsonb(NEW) - ARRAY['updated_at', 'updated_by_id'])::text = (to_jsonb(OLD) - ARRAY['updated_at', 'updated_by_id'])::text THEN
            NEW."updated_at" := OLD."updated_at";
            NEW."updated_by_id" := OLD."updated_by_id";
            RETURN NEW;
        END IF;
    END IF;
    context := "audit_context"();
    actor := CASE WHEN context->>'kind' = 'user' THEN (context->>'id')::uuid END;
    NEW."updated_by_id" := actor;
    NEW."updated_at" := now();
    IF TG_OP = 'INSERT' THEN
        NEW."created_by_id" := actor;
        NEW."created_at" := NEW."updated_at";
    END IF;
    RETURN NEW;
END;
$$;

-- After each statement: one entry per row it changed, in one insert. Arguments: resource type, the
-- JSON fields that may hold secrets, the secret rule, and column name → API field name.
CREATE FUNCTION "audit_capture"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    context JSONB := "audit_context"();
    exact TIMESTAMPTZ := clock_timestamp();
    occurred TIMESTAMPTZ := date_trunc('milliseconds', exact);
    resource_type TEXT := TG_ARGV[0];
    secret_fields TEXT[] := TG_ARGV[1]::TEXT[];
    pattern TEXT := TG_ARGV[2];
    field_names JSONB := TG_ARGV[3]::JSONB;
    actor_kind TEXT := context->>'kind';
    entries TEXT := format(
        'INSERT INTO "audit_log_inbox" ("id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id",
            "resource_name", "actor_kind", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes")
         SELECT "audit_uuidv7"($13), r."workspace_id", $1, %L, $2, r."id", r."name", $3, $4, $5, $6, $7, $8, $9, r."changes"
         FROM (%s) r WHERE r."changes" <> ''[]''::jsonb',
        CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END,
        CASE TG_OP
            WHEN 'INSERT' THEN 'SELECT n."workspace_id", n."id", n."name", "audit_changes"(NULL, "audit_row_fields"(to_jsonb(n), $10), $11, $12) AS "changes" FROM "new_rows" n'
            WHEN 'UPDATE' THEN 'SELECT n."workspace_id", n."id", n."name", "audit_changes"("audit_row_fields"(to_jsonb(o), $10), "audit_row_fields"(to_jsonb(n), $10), $11, $12) AS "changes" FROM "new_rows" n JOIN "old_rows" o ON o."id" = n."id"'
            ELSE 'SELECT o."workspace_id", o."id", o."name", "audit_changes"("audit_row_fields"(to_jsonb(o), $10), NULL, $11, $12) AS "changes" FROM "old_rows" o'
        END);
BEGIN
    -- EXECUTE plans the insert for this statement's row count, not a plan cached from a one-row statement.
    EXECUTE entries USING occurred, resource_type, actor_kind,
        CASE WHEN actor_kind = 'user' THEN (context->>'id')::uuid END,
        left(context->>'name', 500), left(context->>'email', 500), left(context->>'requestId', 128),
        left(context->>'ip', 64), left(context->>'userAgent', 512), field_names, secret_fields, pattern, exact;
    RETURN NULL;
END;
$$;

-- TRUNCATE removes rows without row or transition-table triggers, so nothing would record it.
CREATE FUNCTION "audit_refuse_truncate"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of % would remove audited rows without audit entries: DELETE them instead', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- 7. What is audited, as the application's registry says; `audit_attach` (re)creates a table's
-- triggers from it and is what adding an audited type calls.
CREATE TABLE "audit_resource_types" (
    "table_name" TEXT NOT NULL,
    "resource_type" TEXT NOT NULL,
    "secret_fields" TEXT[] NOT NULL,
    "secret_pattern" TEXT NOT NULL,
    "field_names" JSONB NOT NULL,
    CONSTRAINT "audit_resource_types_pkey" PRIMARY KEY ("table_name"),
    CONSTRAINT "audit_resource_types_resource_type_key" UNIQUE ("resource_type")
);

CREATE FUNCTION "audit_attach"("table_name" TEXT, "resource_type" TEXT, "secret_fields" TEXT[], "secret_pattern" TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    arguments TEXT;
    -- Column name → API field name (snake_case → camelCase, as the Prisma schema maps them).
    names JSONB := (
        SELECT coalesce(jsonb_object_agg(a.attname, (
            SELECT string_agg(CASE WHEN p.n = 1 THEN p.part ELSE upper(left(p.part, 1)) || substr(p.part, 2) END, '' ORDER BY p.n)
            FROM unnest(string_to_array(a.attname, '_')) WITH ORDINALITY AS p(part, n))), '{}'::jsonb)
        FROM pg_attribute a WHERE a.attrelid = "table_name"::regclass AND a.attnum > 0 AND NOT a.attisdropped);
BEGIN
    IF EXISTS (SELECT 1 FROM "audit_resource_types" t WHERE t."table_name" = "audit_attach"."table_name"
               AND t."resource_type" = "audit_attach"."resource_type" AND t."secret_fields" = "audit_attach"."secret_fields"
               AND t."secret_pattern" = "audit_attach"."secret_pattern" AND t."field_names" = names)
       AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = "table_name"::regclass AND tgname = 'audit_capture_insert') THEN
        RETURN false;
    END IF;
    PERFORM 'x' ~* "secret_pattern";
    arguments := format('%L, %L, %L, %L', "resource_type", "secret_fields"::text, "secret_pattern", names::text);
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_stamp" BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION "audit_stamp"()', "table_name");
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_capture_insert" AFTER INSERT ON %I REFERENCING NEW TABLE AS "new_rows" '
        'FOR EACH STATEMENT EXECUTE FUNCTION "audit_capture"(%s)', "table_name", arguments);
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_capture_update" AFTER UPDATE ON %I REFERENCING OLD TABLE AS "old_rows" NEW TABLE AS "new_rows" '
        'FOR EACH STATEMENT EXECUTE FUNCTION "audit_capture"(%s)', "table_name", arguments);
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_capture_delete" AFTER DELETE ON %I REFERENCING OLD TABLE AS "old_rows" '
        'FOR EACH STATEMENT EXECUTE FUNCTION "audit_capture"(%s)', "table_name", arguments);
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_no_truncate" BEFORE TRUNCATE ON %I '
        'FOR EACH STATEMENT EXECUTE FUNCTION "audit_refuse_truncate"()', "table_name");
    INSERT INTO "audit_resource_types" VALUES ("table_name", "resource_type", "secret_fields", "secret_pattern", names)
    ON CONFLICT ON CONSTRAINT "audit_resource_types_pkey" DO UPDATE SET "resource_type" = EXCLUDED."resource_type", "secret_fields" = EXCLUDED."secret_fields",
        "secret_pattern" = EXCLUDED."secret_pattern", "field_names" = EXCLUDED."field_names";
    RETURN true;
END;
$$;

-- 8. The sealer: moves committed entries from the inbox into the log, oldest first, giving each
-- workspace's entries their place in its hash chain. One sealer at a time (a transaction-level
-- advisory lock: a second caller returns -1 at once); writers never wait for it.
CREATE FUNCTION "audit_log_seal"("max_entries" INTEGER) RETURNS INTEGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
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
    IF NOT pg_try_advisory_xact_lock(7460012) THEN
        RETURN -1;
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

-- An owner-only way to add entries with their own times (imports, tests): they go through the
-- inbox and the sealer like every other entry.
CREATE FUNCTION "audit_log_append"("entries" JSONB) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    inserted INTEGER;
BEGIN
    INSERT INTO "audit_log_inbox" ("id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id",
        "resource_name", "actor_kind", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes")
    SELECT "id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id", "resource_name",
        coalesce("actor_kind", CASE WHEN "actor_id" IS NULL THEN 'system' ELSE 'user' END),
        "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes"
    FROM jsonb_to_recordset("entries") AS "e"("id" uuid, "workspace_id" uuid, "occurred_at" timestamptz,
        "action" text, "resource_type" text, "resource_id" uuid, "resource_name" text, "actor_kind" text, "actor_id" uuid,
        "actor_name" text, "actor_email" text, "request_id" text, "ip" text, "user_agent" text, "changes" jsonb);
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END;
$$;

-- 9. Rights. The application's role reads the log through the view, seals, and writes nothing else of
-- the log: its entries are written by the triggers (SECURITY DEFINER), never by the role itself.
REVOKE ALL ON FUNCTION "audit_log_append"(JSONB) FROM PUBLIC;
REVOKE ALL ON FUNCTION "audit_attach"(TEXT, TEXT, TEXT[], TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION "audit_log_seal"(INTEGER) FROM PUBLIC;
REVOKE INSERT ON "audit_log_sealed" FROM "audit_log_app";
GRANT SELECT ON "audit_log_sealed", "audit_log_inbox", "audit_logs", "audit_resource_types" TO "audit_log_app";
GRANT EXECUTE ON FUNCTION "audit_log_seal"(INTEGER) TO "audit_log_app";

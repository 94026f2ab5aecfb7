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
-- A restore is recorded as such (the application says so in the statement's context). Resource
-- types come from the registry (`audit_resource_types`), not from a list in a constraint, so that an
-- audited type added there needs no change here.
ALTER TABLE "audit_log_sealed" DROP CONSTRAINT "audit_logs_action_check",
    ADD CONSTRAINT "audit_logs_action_check" CHECK ("action" IN ('created', 'updated', 'deleted', 'restored')),
    DROP CONSTRAINT "audit_logs_resource_type_check";
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

-- audit_log_purge and audit_log_drop_partition are replaced, for the renamed table, by the next
-- migration (retention in the database), which applies with this one.

CREATE OR REPLACE FUNCTION "audit_resource_names_forget"("workspace" UUID) RETURNS BIGINT
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH forgotten AS (
        DELETE FROM "audit_resource_names" n
        WHERE n."workspace_id" = "workspace"
          AND NOT EXISTS (SELECT 1 FROM "audit_log_sealed" a WHERE a."workspace_id" = n."workspace_id"
                          AND a."resource_id" = n."resource_id" AND left(a."resource_name", 512) = n."resource_name")
        RETURNING 1
    )
    SELECT count(*) FROM forgotten
$$;

-- A name longer than an index row can hold would stop the sealer for every workspace: the names
-- index keeps the first 512 characters (what a search can reasonably type).
CREATE OR REPLACE FUNCTION "audit_logs_remember_names"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO "audit_resource_names" ("workspace_id", "resource_id", "resource_name", "resource_type")
    SELECT DISTINCT "workspace_id", "resource_id", left("resource_name", 512), "resource_type" FROM "new_entries"
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

-- 3. The inbox: what the write path appends to. No index and no trigger, so that an audited write
-- costs one narrow heap insert per entry; the sealer empties it.
CREATE TABLE "audit_log_inbox" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    -- The checks of the sealed log, so that an entry it would refuse fails its write, never the sealer.
    "action" TEXT NOT NULL CHECK ("action" IN ('created', 'updated', 'deleted', 'restored')),
    "resource_type" TEXT NOT NULL,
    "resource_id" UUID NOT NULL,
    "resource_name" TEXT NOT NULL,
    "actor_kind" TEXT NOT NULL CHECK ("actor_kind" IN ('user', 'system', 'database')),
    "actor_id" UUID,
    "actor_name" TEXT,
    "actor_email" TEXT,
    "request_id" TEXT,
    "ip" TEXT,
    "user_agent" TEXT,
    "changes" JSONB NOT NULL CHECK (jsonb_typeof("changes") = 'array')
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
-- Only the application's own roles (members of audit_log_app, or the owner of the log) may name an
-- actor; another role's tag is ignored and the change is recorded as that role. A tag naming any
-- kind but a user or a system job is ignored too.
CREATE FUNCTION "audit_context"() RETURNS JSONB LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- The tag is at the very end, and the client caps what it holds.
    tag TEXT := substring(right(current_query(), 16384) FROM '/\*[^*]*audit=''([A-Za-z0-9_-]+)''[^*]*\*/\s*;?\s*$');
    context JSONB;
BEGIN
    IF tag IS NOT NULL AND (pg_has_role(session_user, 'audit_log_app', 'MEMBER')
                            OR session_user::regrole = (SELECT relowner FROM pg_class WHERE oid = 'audit_log_inbox'::regclass)) THEN
        context := convert_from(decode(translate(tag, '-_', '+/') || repeat('=', (4 - length(tag) % 4) % 4), 'base64'), 'UTF8')::jsonb;
        IF context->>'kind' IN ('user', 'system') AND jsonb_typeof(context->'name') = 'string' THEN
            RETURN context;
        END IF;
    END IF;
    RETURN jsonb_build_object('kind', 'database', 'name', session_user::text);
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
-- on its path matches the secret rule, or it is the `value` beside a `name`/`key` that matches it,
-- and a URL's password is replaced. Written as loops over arrays, not recursive or SQL-language
-- functions: it runs once per changed row, and each function call would cost more than the walk.

-- Leaves of one field's value, as three parallel arrays. A loop over a queue held in arrays:
-- appending to a PL/pgSQL array variable is done in place, so the walk is linear in the document's
-- size (a recursive query costs more per row for the small documents that are the rule).
CREATE FUNCTION "audit_leaves"("doc" JSONB, "root" TEXT, "scope" BOOLEAN, "pattern" TEXT,
    OUT "paths" TEXT[], OUT "leaf_values" JSONB[], OUT "secrets" BOOLEAN[])
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    queue_paths TEXT[] := ARRAY["root"];
    queue_docs JSONB[] := ARRAY["doc"];
    queue_secrets BOOLEAN[] := ARRAY[false];
    i INTEGER := 1;
    j INTEGER;
    d JSONB;
    p TEXT;
    s BOOLEAN;
    k TEXT;
    v JSONB;
    labelled BOOLEAN;
BEGIN
    "paths" := ARRAY[]::TEXT[];
    "leaf_values" := ARRAY[]::JSONB[];
    "secrets" := ARRAY[]::BOOLEAN[];
    WHILE i <= cardinality(queue_paths) LOOP
        d := queue_docs[i];
        p := queue_paths[i];
        s := queue_secrets[i];
        i := i + 1;
        IF jsonb_typeof(d) = 'object' AND d <> '{}'::jsonb THEN
            labelled := "scope" AND d ? 'value'
                AND (coalesce((d->>'name') ~* "pattern", false) OR coalesce((d->>'key') ~* "pattern", false));
            FOR k, v IN SELECT e.key, e.value FROM jsonb_each(d) e LOOP
                queue_paths := array_append(queue_paths, p || CASE WHEN k ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN '.' || k
                                                                  ELSE '[' || to_jsonb(k)::text || ']' END);
                queue_docs := array_append(queue_docs, v);
                queue_secrets := array_append(queue_secrets, s OR ("scope" AND (k ~* "pattern" OR (labelled AND k = 'value'))));
            END LOOP;
        ELSIF jsonb_typeof(d) = 'array' AND jsonb_array_length(d) > 0 THEN
            FOR j IN 0 .. jsonb_array_length(d) - 1 LOOP
                queue_paths := array_append(queue_paths, p || '[' || j || ']');
                queue_docs := array_append(queue_docs, d->j);
                queue_secrets := array_append(queue_secrets, s);
            END LOOP;
        ELSE
            "paths" := array_append("paths", p);
            "leaf_values" := array_append("leaf_values", d);
            "secrets" := array_append("secrets", s);
        END IF;
    END LOOP;
END;
$$;

-- What an entry shows of a leaf: "[REDACTED]" for a secret, a URL with its password replaced, or the value.
CREATE FUNCTION "audit_shown"("value" JSONB, "secret" BOOLEAN, "scope" BOOLEAN, "url" TEXT) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF "secret" THEN
        RETURN '"[REDACTED]"'::jsonb;
    ELSIF "scope" AND jsonb_typeof("value") = 'string' AND strpos("value" #>> '{}', '@') > 0 AND ("value" #>> '{}') ~ "url" THEN
        RETURN to_jsonb(regexp_replace("value" #>> '{}', "url", '\1[REDACTED]@'));
    END IF;
    RETURN "value";
END;
$$;

-- The changes of one JSON or array field between two states (NULL for a creation or a deletion): one
-- element per leaf that differs, compared as JSON values (5432.0 and 5432 are the same number) on the
-- real values (a changed secret shows as changed), shown as the entry shows them. Scalar columns are
-- compared inline by the capture statement that `audit_attach` generates; only a JSON field that
-- changed is walked. Small documents are matched leaf by leaf; large ones through a map, so that the
-- cost stays linear.
CREATE FUNCTION "audit_field_changes"("b" JSONB, "a" JSONB, "field" TEXT, "scope" BOOLEAN, "pattern" TEXT, "url" TEXT)
RETURNS JSONB LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    -- Leaves in local array variables: indexing an array held in a record copies it on every access.
    op TEXT[];
    ov JSONB[];
    os BOOLEAN[];
    np TEXT[];
    nv JSONB[];
    ns BOOLEAN[];
    walked RECORD;
    changes JSONB[] := ARRAY[]::JSONB[];
    i INTEGER;
    j INTEGER;
    old_map JSONB;
    new_map JSONB;
    p TEXT;
BEGIN
    IF "b" IS NOT NULL THEN
        walked := "audit_leaves"("b", "field", "scope", "pattern");
        op := walked."paths";
        ov := walked."leaf_values";
        os := walked."secrets";
    END IF;
    IF "a" IS NOT NULL THEN
        walked := "audit_leaves"("a", "field", "scope", "pattern");
        np := walked."paths";
        nv := walked."leaf_values";
        ns := walked."secrets";
    END IF;
    IF "b" IS NULL THEN
        FOR i IN 1 .. cardinality(np) LOOP
            changes := array_append(changes, jsonb_build_object('field', np[i],
                'after', "audit_shown"(nv[i], ns[i], "scope", "url")));
        END LOOP;
    ELSIF "a" IS NULL THEN
        FOR i IN 1 .. cardinality(op) LOOP
            changes := array_append(changes, jsonb_build_object('field', op[i],
                'before', "audit_shown"(ov[i], os[i], "scope", "url")));
        END LOOP;
    ELSIF cardinality(op) <= 64 AND cardinality(np) <= 64 THEN
        FOR i IN 1 .. cardinality(op) LOOP
            j := array_position(np, op[i]);
            IF j IS NULL THEN
                changes := array_append(changes, jsonb_build_object('field', op[i],
                    'before', "audit_shown"(ov[i], os[i], "scope", "url")));
            ELSIF ov[i] <> nv[j] THEN
                changes := array_append(changes, jsonb_build_object('field', op[i],
                    'before', "audit_shown"(ov[i], os[i], "scope", "url"),
                    'after', "audit_shown"(nv[j], ns[j], "scope", "url")));
            END IF;
        END LOOP;
        FOR j IN 1 .. cardinality(np) LOOP
            IF array_position(op, np[j]) IS NULL THEN
                changes := array_append(changes, jsonb_build_object('field', np[j],
                    'after', "audit_shown"(nv[j], ns[j], "scope", "url")));
            END IF;
        END LOOP;
    ELSE
        old_map := (SELECT jsonb_object_agg(l.p, jsonb_build_array(l.v, l.s)) FROM unnest(op, ov, os) AS l(p, v, s));
        new_map := (SELECT jsonb_object_agg(l.p, jsonb_build_array(l.v, l.s)) FROM unnest(np, nv, ns) AS l(p, v, s));
        FOR p IN SELECT k FROM (SELECT jsonb_object_keys(old_map) AS k UNION SELECT jsonb_object_keys(new_map)) u ORDER BY k LOOP
            CONTINUE WHEN old_map->p->0 = new_map->p->0;
            changes := array_append(changes, jsonb_strip_nulls(jsonb_build_object('field', p,
                'before', "audit_shown"(old_map->p->0, (old_map->p->>1)::boolean, "scope", "url"),
                'after', "audit_shown"(new_map->p->0, (new_map->p->>1)::boolean, "scope", "url")))
                || CASE WHEN old_map->p->0 = 'null'::jsonb THEN '{"before": null}'::jsonb ELSE '{}'::jsonb END
                || CASE WHEN new_map->p->0 = 'null'::jsonb THEN '{"after": null}'::jsonb ELSE '{}'::jsonb END);
        END LOOP;
    END IF;
    RETURN to_jsonb(changes);
END;
$$;

-- What is audited, as the application's registry says (written by `audit_attach`, section 7): the
-- table, its resource type, the secret rule, and the SQL that computes a row's changes.
CREATE TABLE "audit_resource_types" (
    "table_name" TEXT NOT NULL,
    "resource_type" TEXT NOT NULL,
    "secret_fields" TEXT[] NOT NULL,
    "secret_pattern" TEXT NOT NULL,
    "url_pattern" TEXT NOT NULL,
    "field_names" JSONB NOT NULL,
    "created_sql" TEXT NOT NULL,
    "updated_sql" TEXT NOT NULL,
    "deleted_sql" TEXT NOT NULL,
    CONSTRAINT "audit_resource_types_pkey" PRIMARY KEY ("table_name"),
    CONSTRAINT "audit_resource_types_resource_type_key" UNIQUE ("resource_type")
);

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
        -- Equal as JSON (5432.0 and 5432, keys in another order): the row keeps what it holds.
        IF (to_jsonb(NEW) - ARRAY['updated_at', 'updated_by_id']) = (to_jsonb(OLD) - ARRAY['updated_at', 'updated_by_id']) THEN
            RETURN OLD;
        END IF;
    END IF;
    -- The actor is read from the statement once and kept for its other rows: reading current_query()
    -- per row would cost a copy of the whole statement text per row (megabytes for a large createMany).
    IF current_setting('audit.statement', true) = statement_timestamp()::text THEN
        actor := nullif(current_setting('audit.statement_actor', true), '')::uuid;
    ELSE
        context := "audit_context"();
        actor := CASE WHEN context->>'kind' = 'user' THEN (context->>'id')::uuid END;
        PERFORM set_config('audit.statement', statement_timestamp()::text, true),
                set_config('audit.statement_actor', coalesce(actor::text, ''), true);
    END IF;
    NEW."updated_by_id" := actor;
    NEW."updated_at" := now();
    IF TG_OP = 'INSERT' THEN
        NEW."created_by_id" := actor;
        NEW."created_at" := NEW."updated_at";
    END IF;
    RETURN NEW;
END;
$$;

CREATE FUNCTION "audit_refuse_editor"("resource" UUID, "actor" UUID) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the creator or last editor of % does not match the statement''s actor %: nothing was changed', "resource", "actor"
        USING ERRCODE = 'insufficient_privilege';
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

CREATE FUNCTION "audit_attach"("table_name" TEXT, "resource_type" TEXT, "secret_fields" TEXT[], "secret_pattern" TEXT, "url_pattern" TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    names JSONB := '{}'::jsonb;
    col RECORD;
    field TEXT;
    secret BOOLEAN;
    created TEXT[] := ARRAY[]::TEXT[];
    updated TEXT[] := ARRAY[]::TEXT[];
    deleted TEXT[] := ARRAY[]::TEXT[];
BEGIN
    PERFORM 'x' ~* "secret_pattern", 'x' ~ "url_pattern";
    -- One change expression per audited column: a scalar is compared inline, a JSON or array value is
    -- walked by audit_field_changes only when it differs. The field is the API's name (camelCase).
    FOR col IN
        SELECT a.attname AS name, t.typname IN ('json', 'jsonb') OR t.typcategory = 'A' AS walked
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = format('public.%I', "table_name")::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attname NOT IN ('id', 'workspace_id', 'created_at', 'updated_at', 'created_by_id', 'updated_by_id')
        ORDER BY a.attnum
    LOOP
        field := (SELECT string_agg(CASE WHEN p.n = 1 THEN p.part ELSE upper(left(p.part, 1)) || substr(p.part, 2) END, '' ORDER BY p.n)
                  FROM unnest(string_to_array(col.name, '_')) WITH ORDINALITY AS p(part, n));
        names := names || jsonb_build_object(col.name, field);
        secret := field = ANY("secret_fields");
        IF col.walked OR secret THEN
            created := created || format('"audit_field_changes"(NULL, to_jsonb(r.%1$I), %2$L, %3$L, %4$L, %5$L)', col.name, field, secret, "secret_pattern", "url_pattern");
            deleted := deleted || format('"audit_field_changes"(to_jsonb(r.%1$I), NULL, %2$L, %3$L, %4$L, %5$L)', col.name, field, secret, "secret_pattern", "url_pattern");
            updated := updated || format('CASE WHEN to_jsonb(o.%1$I) IS DISTINCT FROM to_jsonb(r.%1$I) THEN "audit_field_changes"(to_jsonb(o.%1$I), to_jsonb(r.%1$I), %2$L, %3$L, %4$L, %5$L) ELSE ''[]''::jsonb END', col.name, field, secret, "secret_pattern", "url_pattern");
        ELSE
            created := created || format('jsonb_build_array(jsonb_build_object(''field'', %2$L, ''after'', to_jsonb(r.%1$I)))', col.name, field);
            deleted := deleted || format('jsonb_build_array(jsonb_build_object(''field'', %2$L, ''before'', to_jsonb(r.%1$I)))', col.name, field);
            updated := updated || format('CASE WHEN o.%1$I IS DISTINCT FROM r.%1$I THEN jsonb_build_array(jsonb_build_object(''field'', %2$L, ''before'', to_jsonb(o.%1$I), ''after'', to_jsonb(r.%1$I))) ELSE ''[]''::jsonb END', col.name, field);
        END IF;
    END LOOP;
    -- Nothing to do when the table's triggers were made from this same configuration and SQL.
    IF EXISTS (SELECT 1 FROM "audit_resource_types" t WHERE t."table_name" = "audit_attach"."table_name"
               AND t."resource_type" = "audit_attach"."resource_type" AND t."field_names" = names
               AND t."created_sql" = array_to_string(created, ' || ')
               AND t."updated_sql" = array_to_string(updated, ' || ')
               AND t."deleted_sql" = array_to_string(deleted, ' || '))
       AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = format('public.%I', "table_name")::regclass AND tgname = 'audit_capture_insert')
       AND to_regprocedure(format('public.%I()', 'audit_capture_' || "table_name")) IS NOT NULL THEN
        RETURN false;
    END IF;
    INSERT INTO "audit_resource_types" VALUES ("table_name", "resource_type", "secret_fields", "secret_pattern", "url_pattern", names,
        array_to_string(created, ' || '), array_to_string(updated, ' || '), array_to_string(deleted, ' || '))
    ON CONFLICT ON CONSTRAINT "audit_resource_types_pkey" DO UPDATE SET "resource_type" = EXCLUDED."resource_type",
        "secret_fields" = EXCLUDED."secret_fields", "secret_pattern" = EXCLUDED."secret_pattern", "url_pattern" = EXCLUDED."url_pattern",
        "field_names" = EXCLUDED."field_names", "created_sql" = EXCLUDED."created_sql", "updated_sql" = EXCLUDED."updated_sql",
        "deleted_sql" = EXCLUDED."deleted_sql";
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_stamp" BEFORE INSERT OR UPDATE ON public.%I FOR EACH ROW EXECUTE FUNCTION "audit_stamp"()', "table_name");
    -- After each statement: one entry per row it changed, in one insert, by a function of this table's
    -- own with static SQL, so that PostgreSQL keeps its plans across statements (a plan built for
    -- each statement costs more than the rest of a one-row write). Hash joins always: a plan kept from
    -- one-row statements must not loop over a large statement's rows. Each row's creator and editor
    -- must be the actor the entry records (the BEFORE trigger set them from the same statement), or
    -- the statement fails. It runs with the owner's rights, so nobody else may execute it.
    EXECUTE format($body$
        CREATE OR REPLACE FUNCTION public.%1$I() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public SET enable_nestloop = off AS $fn$
        DECLARE
            context JSONB := "audit_context"();
            exact TIMESTAMPTZ := clock_timestamp();
            actor_kind TEXT := context->>'kind';
            actor UUID := CASE WHEN context->>'kind' = 'user' THEN (context->>'id')::uuid END;
            restored BOOLEAN := coalesce(context->>'action' = 'restored', false);
        BEGIN
            IF TG_TABLE_SCHEMA <> 'public' OR TG_TABLE_NAME <> %2$L THEN
                RAISE EXCEPTION '%% captures %2$s only, not %%.%%', TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF TG_OP = 'INSERT' THEN
                INSERT INTO "audit_log_inbox" ("id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id",
                    "resource_name", "actor_kind", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes")
                SELECT "audit_uuidv7"(exact), r."workspace_id", date_trunc('milliseconds', exact),
                       CASE WHEN restored THEN 'restored' ELSE 'created' END, %3$L, r."id", r."name",
                       actor_kind, actor, left(context->>'name', 500), left(context->>'email', 500),
                       left(context->>'requestId', 128), left(context->>'ip', 64), left(context->>'userAgent', 512), r."changes"
                FROM (SELECT r."workspace_id", r."id", r."name", r."created_by_id", r."updated_by_id", %4$s AS "changes"
                      FROM "new_rows" r) r
                WHERE CASE WHEN r."created_by_id" IS DISTINCT FROM actor OR r."updated_by_id" IS DISTINCT FROM actor
                           THEN "audit_refuse_editor"(r."id", actor) ELSE r."changes" <> '[]'::jsonb END;
            ELSIF TG_OP = 'UPDATE' THEN
                INSERT INTO "audit_log_inbox" ("id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id",
                    "resource_name", "actor_kind", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes")
                SELECT "audit_uuidv7"(exact), r."workspace_id", date_trunc('milliseconds', exact),
                       CASE WHEN restored THEN 'restored' ELSE 'updated' END, %3$L, r."id", r."name",
                       actor_kind, actor, left(context->>'name', 500), left(context->>'email', 500),
                       left(context->>'requestId', 128), left(context->>'ip', 64), left(context->>'userAgent', 512), r."changes"
                FROM (SELECT r."workspace_id", r."id", r."name", r."updated_by_id", o."updated_by_id" AS "old_editor",
                             %5$s AS "changes"
                      FROM "new_rows" r JOIN "old_rows" o ON o."id" = r."id") r
                WHERE CASE WHEN CASE WHEN r."changes" <> '[]'::jsonb THEN r."updated_by_id" IS DISTINCT FROM actor
                                     ELSE r."updated_by_id" IS DISTINCT FROM r."old_editor" END
                           THEN "audit_refuse_editor"(r."id", actor) ELSE r."changes" <> '[]'::jsonb END;
            ELSE
                INSERT INTO "audit_log_inbox" ("id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id",
                    "resource_name", "actor_kind", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes")
                SELECT "audit_uuidv7"(exact), r."workspace_id", date_trunc('milliseconds', exact), 'deleted', %3$L, r."id", r."name",
                       actor_kind, actor, left(context->>'name', 500), left(context->>'email', 500),
                       left(context->>'requestId', 128), left(context->>'ip', 64), left(context->>'userAgent', 512), r."changes"
                FROM (SELECT r."workspace_id", r."id", r."name", %6$s AS "changes" FROM "old_rows" r) r
                WHERE r."changes" <> '[]'::jsonb;
            END IF;
            RETURN NULL;
        END;
        $fn$ $body$, 'audit_capture_' || "table_name", "table_name", "resource_type",
        array_to_string(created, ' || '), array_to_string(updated, ' || '), array_to_string(deleted, ' || '));
    EXECUTE format('REVOKE ALL ON FUNCTION public.%I() FROM PUBLIC', 'audit_capture_' || "table_name");
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_capture_insert" AFTER INSERT ON public.%I REFERENCING NEW TABLE AS "new_rows" '
        'FOR EACH STATEMENT EXECUTE FUNCTION public.%I()', "table_name", 'audit_capture_' || "table_name");
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_capture_update" AFTER UPDATE ON public.%I REFERENCING OLD TABLE AS "old_rows" NEW TABLE AS "new_rows" '
        'FOR EACH STATEMENT EXECUTE FUNCTION public.%I()', "table_name", 'audit_capture_' || "table_name");
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_capture_delete" AFTER DELETE ON public.%I REFERENCING OLD TABLE AS "old_rows" '
        'FOR EACH STATEMENT EXECUTE FUNCTION public.%I()', "table_name", 'audit_capture_' || "table_name");
    EXECUTE format('CREATE OR REPLACE TRIGGER "audit_no_truncate" BEFORE TRUNCATE ON public.%I '
        'FOR EACH STATEMENT EXECUTE FUNCTION "audit_refuse_truncate"()', "table_name");
    RETURN true;
END;
$$;

-- 8. The sealer: moves committed entries from the inbox into the log, oldest first, giving each
-- workspace's entries their place in its hash chain. One sealer at a time (a transaction-level
-- advisory lock: a second caller waits for it when `wait`, else returns -1 at once); writers never
-- wait for it.
CREATE FUNCTION "audit_log_seal"("max_entries" INTEGER, "wait" BOOLEAN DEFAULT false) RETURNS INTEGER
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
    IF "wait" THEN
        PERFORM pg_advisory_xact_lock(7460012);
    ELSIF NOT pg_try_advisory_xact_lock(7460012) THEN
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
REVOKE ALL ON FUNCTION "audit_attach"(TEXT, TEXT, TEXT[], TEXT, TEXT) FROM PUBLIC;
-- Trigger functions that run with the owner's rights: nobody else may attach them to a table.
REVOKE ALL ON FUNCTION "audit_logs_remember_names"() FROM PUBLIC;
REVOKE ALL ON FUNCTION "audit_log_seal"(INTEGER, BOOLEAN) FROM PUBLIC;
REVOKE INSERT ON "audit_log_sealed" FROM "audit_log_app";
GRANT SELECT ON "audit_log_sealed", "audit_log_inbox", "audit_logs", "audit_resource_types" TO "audit_log_app";
GRANT EXECUTE ON FUNCTION "audit_log_seal"(INTEGER, BOOLEAN) TO "audit_log_app";

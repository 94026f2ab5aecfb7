-- A restore that re-creates a deleted resource inserts its row again, and the database stamped every
-- insert with the statement's actor and time: the re-created resource named the admin who restored
-- it as its creator, created at the time of the restore, while its `created` entry names who created
-- it. A re-created row now keeps the creator and creation time of the resource's newest `created`
-- entry: that entry's user (none for a system job or a database role) and its `occurredAt` (the log
-- does not hold the row's own creation time, which was the start of that transaction). The restorer
-- is its last editor. When the log no longer holds a `created` entry (retention removed it), or its
-- user no longer exists, the row is stamped as any insert is: by the restorer, now.

-- The creator and creation time an inserted row of `table_name` gets when a restore re-creates it:
-- those of the resource's newest `created` entry, else `actor` and `at`. It reads the log with the
-- owner's rights, so that the stamp need not read it with the caller's.
CREATE FUNCTION "audit_kept_creation"("table_name" TEXT, "workspace_id" UUID, "resource_id" UUID, "actor" UUID, "at" TIMESTAMPTZ,
    OUT "created_by_id" UUID, OUT "created_at" TIMESTAMPTZ)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    SELECT l."actor_id", l."occurred_at" INTO "created_by_id", "created_at"
    FROM "audit_logs" l JOIN "audit_resource_types" t ON t."resource_type" = l."resource_type"
    WHERE t."table_name" = "audit_kept_creation"."table_name" AND l."workspace_id" = "audit_kept_creation"."workspace_id"
      AND l."resource_id" = "audit_kept_creation"."resource_id" AND l."action" = 'created'
    ORDER BY l."occurred_at" DESC, l."id" DESC
    LIMIT 1;
    IF NOT FOUND OR ("audit_kept_creation"."created_by_id" IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM "users" u WHERE u."id" = "audit_kept_creation"."created_by_id")) THEN
        "created_by_id" := "actor";
        "created_at" := "at";
    END IF;
END;
$$;
REVOKE ALL ON FUNCTION "audit_kept_creation"(TEXT, UUID, UUID, UUID, TIMESTAMPTZ) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "audit_kept_creation"(TEXT, UUID, UUID, UUID, TIMESTAMPTZ) TO "audit_log_app";

-- The stamp reads whether the statement restores with its actor, once per statement. What it keeps
-- for the statement's other rows is a setting the caller could write too: the capture checks each
-- row against the statement's own context.
CREATE OR REPLACE FUNCTION "audit_stamp"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    context JSONB;
    actor UUID;
    restored BOOLEAN;
    kept RECORD;
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
        restored := current_setting('audit.statement_restored', true) = 'on';
    ELSE
        context := "audit_context"();
        actor := CASE WHEN context->>'kind' = 'user' THEN (context->>'id')::uuid END;
        restored := coalesce(context->>'action' = 'restored', false);
        PERFORM set_config('audit.statement', statement_timestamp()::text, true),
                set_config('audit.statement_actor', coalesce(actor::text, ''), true),
                set_config('audit.statement_restored', CASE WHEN restored THEN 'on' ELSE 'off' END, true);
    END IF;
    NEW."updated_by_id" := actor;
    NEW."updated_at" := now();
    IF TG_OP = 'INSERT' THEN
        NEW."created_by_id" := actor;
        NEW."created_at" := NEW."updated_at";
        IF restored THEN
            SELECT * INTO kept FROM public."audit_kept_creation"(TG_TABLE_NAME, NEW."workspace_id", NEW."id", actor, NEW."updated_at");
            NEW."created_by_id" := kept."created_by_id";
            NEW."created_at" := kept."created_at";
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

-- The capture checks a restore's rows against the same: `audit_attach` writes that check, and every
-- table it attached with a stamp is attached again.
CREATE OR REPLACE FUNCTION "audit_attach"("table_name" TEXT, "resource_type" TEXT, "secret_fields" TEXT[], "secret_pattern" TEXT,
    "url_pattern" TEXT, "options" JSONB DEFAULT '{}')
RETURNS BOOLEAN LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    names JSONB := '{}'::jsonb;
    col RECORD;
    field TEXT;
    field_sql TEXT;
    secret BOOLEAN;
    created TEXT[] := ARRAY[]::TEXT[];
    updated TEXT[] := ARRAY[]::TEXT[];
    deleted TEXT[] := ARRAY[]::TEXT[];
    stamped BOOLEAN := coalesce(("options"->>'stamped')::boolean, true);
    prefix TEXT := "options"->>'field_prefix';
    ignored TEXT[] := ARRAY(SELECT jsonb_array_elements_text(coalesce("options"->'ignored_columns', '[]')));
    omit_null BOOLEAN := coalesce(("options"->>'omit_null_created')::boolean, false);
    extra RECORD;
    -- What the entry says of a row; the defaults are the text the capture always had.
    ws_item TEXT := CASE WHEN "options" ? 'workspaces' THEN 'w."workspace_id"'
                         WHEN "options" ? 'workspace' THEN ("options"->>'workspace') || ' AS "workspace_id"'
                         ELSE 'r."workspace_id"' END;
    lateral_join TEXT := CASE WHEN "options" ? 'workspaces'
                              THEN ' CROSS JOIN LATERAL (' || ("options"->>'workspaces') || ') w' ELSE '' END;
    id_item TEXT := CASE WHEN "options" ? 'resource_id' THEN ("options"->>'resource_id') || ' AS "id"' ELSE 'r."id"' END;
    name_item TEXT := CASE WHEN "options" ? 'resource_name' THEN ("options"->>'resource_name') || ' AS "name"' ELSE 'r."name"' END;
    -- An action knob is evaluated beside the changes (it may read the old row); the default is a literal.
    insert_outer TEXT := CASE WHEN "options" ? 'insert_action' THEN 'r."action"' ELSE '''created''' END;
    insert_inner TEXT := CASE WHEN "options" ? 'insert_action' THEN ', ' || ("options"->>'insert_action') || ' AS "action"' ELSE '' END;
    update_outer TEXT := CASE WHEN "options" ? 'update_action' THEN 'r."action"' ELSE '''updated''' END;
    update_inner TEXT := CASE WHEN "options" ? 'update_action' THEN ', ' || ("options"->>'update_action') || ' AS "action"' ELSE '' END;
    fixed TEXT[] := ARRAY(SELECT jsonb_array_elements_text(coalesce("options"->'fixed_columns', '["id"]')));
    -- What every entry statement starts with, its action (but a deletion's), and the actor's columns.
    entry_head CONSTANT TEXT := $sql$
                INSERT INTO "audit_log_inbox" ("id", "workspace_id", "occurred_at", "action", "resource_type", "resource_id",
                    "resource_name", "actor_kind", "actor_id", "actor_name", "actor_email", "request_id", "ip", "user_agent", "changes")
                SELECT "audit_uuidv7"(exact), r."workspace_id", date_trunc('milliseconds', exact),$sql$;
    entry_action CONSTANT TEXT := $sql$
                       CASE WHEN restored THEN 'restored' ELSE %1$s END, %2$L, r."id", r."name",$sql$;
    entry_actor CONSTANT TEXT := $sql$
                       actor_kind, actor, left(context->>'name', 500), left(context->>'email', 500),
                       left(context->>'requestId', 128), left(context->>'ip', 64), left(context->>'userAgent', 512), r."changes"$sql$;
    insert_sql TEXT;
    update_sql TEXT;
    delete_sql TEXT;
BEGIN
    PERFORM 'x' ~* "secret_pattern", 'x' ~ "url_pattern";
    -- One change expression per audited column: a scalar is compared inline, a JSON or array value is
    -- walked by audit_field_changes only when it differs. The field is the API's name (camelCase).
    FOR col IN
        SELECT a.attname AS name, t.typname IN ('json', 'jsonb') OR t.typcategory = 'A' AS walked
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = format('public.%I', "table_name")::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attname NOT IN ('id', 'workspace_id', 'created_at', 'updated_at', 'created_by_id', 'updated_by_id')
          AND a.attname <> ALL (ignored)
        ORDER BY a.attnum
    LOOP
        field := (SELECT string_agg(CASE WHEN p.n = 1 THEN p.part ELSE upper(left(p.part, 1)) || substr(p.part, 2) END, '' ORDER BY p.n)
                  FROM unnest(string_to_array(col.name, '_')) WITH ORDINALITY AS p(part, n));
        names := names || jsonb_build_object(col.name, field);
        field_sql := CASE WHEN prefix IS NULL THEN quote_literal(field) ELSE format('(%s || %L)', prefix, '.' || field) END;
        secret := field = ANY("secret_fields");
        IF col.walked OR secret THEN
            created := created || format('"audit_field_changes"(NULL, to_jsonb(r.%1$I), %2$s, %3$L, %4$L, %5$L)', col.name, field_sql, secret, "secret_pattern", "url_pattern");
            deleted := deleted || format('"audit_field_changes"(to_jsonb(r.%1$I), NULL, %2$s, %3$L, %4$L, %5$L)', col.name, field_sql, secret, "secret_pattern", "url_pattern");
            updated := updated || format('CASE WHEN to_jsonb(o.%1$I) IS DISTINCT FROM to_jsonb(r.%1$I) THEN "audit_field_changes"(to_jsonb(o.%1$I), to_jsonb(r.%1$I), %2$s, %3$L, %4$L, %5$L) ELSE ''[]''::jsonb END', col.name, field_sql, secret, "secret_pattern", "url_pattern");
        ELSE
            created := created || format('jsonb_build_array(jsonb_build_object(''field'', %2$s, ''after'', to_jsonb(r.%1$I)))', col.name, field_sql);
            deleted := deleted || format('jsonb_build_array(jsonb_build_object(''field'', %2$s, ''before'', to_jsonb(r.%1$I)))', col.name, field_sql);
            updated := updated || format('CASE WHEN o.%1$I IS DISTINCT FROM r.%1$I THEN jsonb_build_array(jsonb_build_object(''field'', %2$s, ''before'', to_jsonb(o.%1$I), ''after'', to_jsonb(r.%1$I))) ELSE ''[]''::jsonb END', col.name, field_sql);
        END IF;
        IF omit_null THEN
            created[cardinality(created)] := format('CASE WHEN r.%1$I IS NULL THEN ''[]''::jsonb ELSE %2$s END', col.name, created[cardinality(created)]);
        END IF;
    END LOOP;
    FOR extra IN SELECT key, value FROM jsonb_each_text(coalesce("options"->'context_fields', '{}')) ORDER BY key LOOP
        field_sql := CASE WHEN prefix IS NULL THEN quote_literal(extra.key) ELSE format('(%s || %L)', prefix, '.' || extra.key) END;
        created := created || format('jsonb_build_array(jsonb_build_object(''field'', %2$s, ''after'', to_jsonb(%1$s)))', extra.value, field_sql);
        deleted := deleted || format('jsonb_build_array(jsonb_build_object(''field'', %2$s, ''before'', to_jsonb(%1$s)))', extra.value, field_sql);
    END LOOP;
    -- Nothing to do when the table's triggers were made from this same configuration and SQL.
    IF EXISTS (SELECT 1 FROM "audit_resource_types" t WHERE t."table_name" = "audit_attach"."table_name"
               AND t."resource_type" = "audit_attach"."resource_type" AND t."field_names" = names
               AND t."options" = "audit_attach"."options"
               AND t."created_sql" = array_to_string(created, ' || ')
               AND t."updated_sql" = array_to_string(updated, ' || ')
               AND t."deleted_sql" = array_to_string(deleted, ' || '))
       AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = format('public.%I', "table_name")::regclass AND tgname = 'audit_capture_insert')
       AND to_regprocedure(format('public.%I()', 'audit_capture_' || "table_name")) IS NOT NULL THEN
        RETURN false;
    END IF;
    INSERT INTO "audit_resource_types" ("table_name", "resource_type", "secret_fields", "secret_pattern", "url_pattern",
        "field_names", "created_sql", "updated_sql", "deleted_sql", "options")
    VALUES ("table_name", "resource_type", "secret_fields", "secret_pattern", "url_pattern", names,
        array_to_string(created, ' || '), array_to_string(updated, ' || '), array_to_string(deleted, ' || '), "options")
    ON CONFLICT ON CONSTRAINT "audit_resource_types_pkey" DO UPDATE SET "resource_type" = EXCLUDED."resource_type",
        "secret_fields" = EXCLUDED."secret_fields", "secret_pattern" = EXCLUDED."secret_pattern", "url_pattern" = EXCLUDED."url_pattern",
        "field_names" = EXCLUDED."field_names", "created_sql" = EXCLUDED."created_sql", "updated_sql" = EXCLUDED."updated_sql",
        "deleted_sql" = EXCLUDED."deleted_sql", "options" = EXCLUDED."options";
    IF stamped THEN
        EXECUTE format('DROP TRIGGER IF EXISTS "audit_keep_identity" ON public.%I', "table_name");
        EXECUTE format('CREATE OR REPLACE TRIGGER "audit_stamp" BEFORE INSERT OR UPDATE ON public.%I FOR EACH ROW EXECUTE FUNCTION "audit_stamp"()', "table_name");
        -- Each row's creator and editor must be the actor the entry records, and its creation time
        -- its statement's (the BEFORE trigger set them from the same statement); a restore's row
        -- must have the creator and time of the resource's `created` entry instead, when the log
        -- holds one.
        insert_sql := format(entry_head || entry_action || entry_actor || $sql$
                FROM (SELECT %3$s, %4$s, %5$s%8$s, r."updated_by_id", %6$s AS "changes",
                             CASE WHEN restored
                                  THEN EXISTS (SELECT 1 FROM "audit_kept_creation"(%9$L, r."workspace_id", r."id", actor, r."updated_at") k
                                               WHERE k."created_by_id" IS NOT DISTINCT FROM r."created_by_id" AND k."created_at" = r."created_at")
                                  ELSE r."created_by_id" IS NOT DISTINCT FROM actor AND r."created_at" = r."updated_at" END AS "stamped"
                      FROM "new_rows" r%7$s) r
                WHERE CASE WHEN NOT r."stamped" OR r."updated_by_id" IS DISTINCT FROM actor
                           THEN "audit_refuse_editor"(r."id", actor) ELSE r."changes" <> '[]'::jsonb END;$sql$,
            insert_outer, "resource_type", ws_item, id_item, name_item, array_to_string(created, ' || '), lateral_join, insert_inner,
            "table_name");
        update_sql := format(entry_head || entry_action || entry_actor || $sql$
                FROM (SELECT %3$s, %4$s, %5$s, r."updated_by_id", o."updated_by_id" AS "old_editor",%8$s
                             %6$s AS "changes"
                      FROM "new_rows" r JOIN "old_rows" o ON o."id" = r."id"%7$s) r
                WHERE CASE WHEN CASE WHEN r."changes" <> '[]'::jsonb THEN r."updated_by_id" IS DISTINCT FROM actor
                                     ELSE r."updated_by_id" IS DISTINCT FROM r."old_editor" END
                           THEN "audit_refuse_editor"(r."id", actor) ELSE r."changes" <> '[]'::jsonb END;$sql$,
            update_outer, "resource_type", ws_item, id_item, name_item, array_to_string(updated, ' || '), lateral_join,
            CASE WHEN update_inner = '' THEN '' ELSE ' ' || substr(update_inner, 3) || ',' END);
    ELSE
        EXECUTE format('DROP TRIGGER IF EXISTS "audit_stamp" ON public.%I', "table_name");
        EXECUTE format('CREATE OR REPLACE TRIGGER "audit_keep_identity" BEFORE UPDATE ON public.%I FOR EACH ROW EXECUTE FUNCTION "audit_keep_identity"(%s)',
            "table_name", (SELECT string_agg(quote_literal(c), ', ') FROM unnest(fixed) c));
        insert_sql := format(entry_head || entry_action || entry_actor || $sql$
                FROM (SELECT %3$s, %4$s, %5$s%8$s, %6$s AS "changes"
                      FROM "new_rows" r%7$s) r
                WHERE r."changes" <> '[]'::jsonb;$sql$,
            insert_outer, "resource_type", ws_item, id_item, name_item, array_to_string(created, ' || '), lateral_join, insert_inner);
        update_sql := format(entry_head || entry_action || entry_actor || $sql$
                FROM (SELECT %3$s, %4$s, %5$s%8$s, %6$s AS "changes"
                      FROM "new_rows" r JOIN "old_rows" o ON o."id" = r."id"%7$s) r
                WHERE r."changes" <> '[]'::jsonb;$sql$,
            update_outer, "resource_type", ws_item, id_item, name_item, array_to_string(updated, ' || '), lateral_join, update_inner);
    END IF;
    delete_sql := format(entry_head || $sql$ 'deleted', %1$L, r."id", r."name",$sql$ || entry_actor || $sql$
                FROM (SELECT %2$s, %3$s, %4$s, %5$s AS "changes" FROM "old_rows" r%6$s) r
                WHERE r."changes" <> '[]'::jsonb;$sql$,
        "resource_type", ws_item, id_item, name_item, array_to_string(deleted, ' || '), lateral_join);
    -- After each statement: one entry per row it changed (per workspace of the row), in one insert,
    -- by a function of this table's own with static SQL, so that PostgreSQL keeps its plans across
    -- statements (a plan built for each statement costs more than the rest of a one-row write). Hash
    -- joins always: a plan kept from one-row statements must not loop over a large statement's rows.
    -- It runs with the owner's rights, so nobody else may execute it.
    EXECUTE format($body$
        CREATE OR REPLACE FUNCTION public.%1$I() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public, pg_temp SET enable_nestloop = off AS $fn$
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
            IF TG_OP = 'INSERT' THEN%3$s
            ELSIF TG_OP = 'UPDATE' THEN%4$s
            ELSE%5$s
            END IF;
            RETURN NULL;
        END;
        $fn$ $body$, 'audit_capture_' || "table_name", "table_name", insert_sql, update_sql, delete_sql);
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

DO $$
DECLARE
    t RECORD;
BEGIN
    FOR t IN
        SELECT r.* FROM "audit_resource_types" r
        WHERE coalesce((r."options"->>'stamped')::boolean, true)
          AND to_regprocedure(format('public.%I()', 'audit_capture_' || r."table_name")) IS NOT NULL
        ORDER BY r."table_name"
    LOOP
        EXECUTE format('DROP FUNCTION public.%I() CASCADE', 'audit_capture_' || t."table_name");
        PERFORM "audit_attach"(t."table_name", t."resource_type", t."secret_fields", t."secret_pattern", t."url_pattern", t."options");
    END LOOP;
END;
$$;

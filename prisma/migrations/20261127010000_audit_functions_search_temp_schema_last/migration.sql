-- A search_path that does not name pg_temp searches the session's temporary schema first, for tables
-- and types. Every function that runs with its owner's rights was set to `search_path = public` and
-- names its tables without a schema, so a caller with TEMP on the database (PUBLIC has it by default,
-- so the application's role too) redirected them to tables of its own: a TEMP `audit_log_inbox`
-- received the entries of its UPDATEs of audited rows, which committed with no entry in the log, and
-- the sealer, run by that role, sealed rows it had written into a TEMP `audit_log_inbox` as entries
-- of the chain, under any actor. The trigger functions that run with the caller's rights (checks of
-- segment references, of the retention records, the actor's role check) read a TEMP table alike.
-- Each of them now searches pg_temp last, after pg_catalog and public, and `audit_attach` creates the
-- capture functions so.
DO $$
DECLARE
    f REGPROCEDURE;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
        UNION ALL
        SELECT n::regprocedure FROM unnest(ARRAY['audit_context()', 'audit_log_append(jsonb)',
            'destinations_check_segment_ids()', 'segments_restrict_destination_use()',
            'audit_retention_records_append_only()']) n
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = public, pg_temp', f);
    END LOOP;
END;
$$;

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
        -- Each row's creator and editor must be the actor the entry records (the BEFORE trigger set
        -- them from the same statement), or the statement fails.
        insert_sql := format(entry_head || entry_action || entry_actor || $sql$
                FROM (SELECT %3$s, %4$s, %5$s%8$s, r."created_by_id", r."updated_by_id", %6$s AS "changes"
                      FROM "new_rows" r%7$s) r
                WHERE CASE WHEN r."created_by_id" IS DISTINCT FROM actor OR r."updated_by_id" IS DISTINCT FROM actor
                           THEN "audit_refuse_editor"(r."id", actor) ELSE r."changes" <> '[]'::jsonb END;$sql$,
            insert_outer, "resource_type", ws_item, id_item, name_item, array_to_string(created, ' || '), lateral_join, insert_inner);
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

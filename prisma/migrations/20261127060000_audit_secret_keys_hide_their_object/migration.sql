-- A key can hold a secret by the text rule (a URL with its password, `…?token=…`), and an entry's
-- field paths named every key (`config.endpoints["https://u:<password>@h/x"].weight`), as responses
-- did. An object of a secret field with such a key is now a secret as a whole: one leaf, shown as
-- "[REDACTED]" and compared on its whole value, as the API masks it. audit_leaves takes the URL
-- pattern for that; audit_field_changes passes it on.
CREATE FUNCTION "audit_leaves"("doc" JSONB, "root" TEXT, "scope" BOOLEAN, "pattern" TEXT, "url" TEXT,
    OUT "paths" TEXT[], OUT "leaf_values" JSONB[], OUT "secrets" BOOLEAN[])
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    queue_paths TEXT[] := ARRAY["root"];
    queue_docs JSONB[] := ARRAY["doc"];
    queue_secrets BOOLEAN[] := ARRAY[false];
    queue_listed BOOLEAN[] := ARRAY[false];
    i INTEGER := 1;
    j INTEGER;
    d JSONB;
    p TEXT;
    s BOOLEAN;
    k TEXT;
    v JSONB;
    l BOOLEAN;
    labelled BOOLEAN;
BEGIN
    "paths" := ARRAY[]::TEXT[];
    "leaf_values" := ARRAY[]::JSONB[];
    "secrets" := ARRAY[]::BOOLEAN[];
    WHILE i <= cardinality(queue_paths) LOOP
        d := queue_docs[i];
        p := queue_paths[i];
        s := queue_secrets[i];
        l := queue_listed[i];
        i := i + 1;
        IF NOT s AND "scope" AND jsonb_typeof(d) = 'object'
           AND EXISTS (SELECT 1 FROM jsonb_object_keys(d) x WHERE "audit_redact_text"(x, "pattern", "url") <> x) THEN
            s := true;
        END IF;
        IF NOT s AND jsonb_typeof(d) = 'object' AND d <> '{}'::jsonb THEN
            labelled := "scope" AND EXISTS (SELECT 1 FROM jsonb_object_keys(d) x WHERE x ~* '^value$')
                AND EXISTS (SELECT 1 FROM jsonb_each_text(d) e WHERE e.key !~* '^value$' AND e.value ~* "pattern");
            FOR k, v IN SELECT e.key, e.value FROM jsonb_each(d) e LOOP
                queue_paths := array_append(queue_paths, p || CASE WHEN k ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN '.' || k
                                                                  ELSE '[' || to_jsonb(k)::text || ']' END);
                queue_docs := array_append(queue_docs, v);
                queue_secrets := array_append(queue_secrets, "scope" AND (k ~* "pattern" OR (labelled AND k ~* '^value$')));
                queue_listed := array_append(queue_listed, false);
            END LOOP;
        ELSIF NOT s AND jsonb_typeof(d) = 'array' AND jsonb_array_length(d) > 0 THEN
            labelled := "scope" AND l AND jsonb_array_length(d) = 2 AND coalesce((d->>0) ~* "pattern", false);
            FOR j IN 0 .. jsonb_array_length(d) - 1 LOOP
                queue_paths := array_append(queue_paths, p || '[' || j || ']');
                queue_docs := array_append(queue_docs, d->j);
                queue_secrets := array_append(queue_secrets, labelled AND j = 1);
                queue_listed := array_append(queue_listed, true);
            END LOOP;
        ELSE
            "paths" := array_append("paths", p);
            "leaf_values" := array_append("leaf_values", d);
            "secrets" := array_append("secrets", s);
        END IF;
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION "audit_field_changes"("b" JSONB, "a" JSONB, "field" TEXT, "scope" BOOLEAN, "pattern" TEXT, "url" TEXT)
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
        walked := "audit_leaves"("b", "field", "scope", "pattern", "url");
        op := walked."paths";
        ov := walked."leaf_values";
        os := walked."secrets";
    END IF;
    IF "a" IS NOT NULL THEN
        walked := "audit_leaves"("a", "field", "scope", "pattern", "url");
        np := walked."paths";
        nv := walked."leaf_values";
        ns := walked."secrets";
    END IF;
    IF "b" IS NULL THEN
        FOR i IN 1 .. cardinality(np) LOOP
            changes := array_append(changes, jsonb_build_object('field', np[i],
                'after', "audit_shown"(nv[i], ns[i], "scope", "pattern", "url")));
        END LOOP;
    ELSIF "a" IS NULL THEN
        FOR i IN 1 .. cardinality(op) LOOP
            changes := array_append(changes, jsonb_build_object('field', op[i],
                'before', "audit_shown"(ov[i], os[i], "scope", "pattern", "url")));
        END LOOP;
    ELSIF cardinality(op) <= 64 AND cardinality(np) <= 64 THEN
        FOR i IN 1 .. cardinality(op) LOOP
            j := array_position(np, op[i]);
            IF j IS NULL THEN
                changes := array_append(changes, jsonb_build_object('field', op[i],
                    'before', "audit_shown"(ov[i], os[i], "scope", "pattern", "url")));
            ELSIF ov[i] <> nv[j] THEN
                changes := array_append(changes, jsonb_build_object('field', op[i],
                    'before', "audit_shown"(ov[i], os[i], "scope", "pattern", "url"),
                    'after', "audit_shown"(nv[j], ns[j], "scope", "pattern", "url")));
            END IF;
        END LOOP;
        FOR j IN 1 .. cardinality(np) LOOP
            IF array_position(op, np[j]) IS NULL THEN
                changes := array_append(changes, jsonb_build_object('field', np[j],
                    'after', "audit_shown"(nv[j], ns[j], "scope", "pattern", "url")));
            END IF;
        END LOOP;
    ELSE
        old_map := (SELECT jsonb_object_agg(l.p, jsonb_build_array(l.v, l.s)) FROM unnest(op, ov, os) AS l(p, v, s));
        new_map := (SELECT jsonb_object_agg(l.p, jsonb_build_array(l.v, l.s)) FROM unnest(np, nv, ns) AS l(p, v, s));
        FOR p IN SELECT k FROM (SELECT jsonb_object_keys(old_map) AS k UNION SELECT jsonb_object_keys(new_map)) u ORDER BY k LOOP
            CONTINUE WHEN old_map->p->0 = new_map->p->0;
            changes := array_append(changes, jsonb_strip_nulls(jsonb_build_object('field', p,
                'before', "audit_shown"(old_map->p->0, (old_map->p->>1)::boolean, "scope", "pattern", "url"),
                'after', "audit_shown"(new_map->p->0, (new_map->p->>1)::boolean, "scope", "pattern", "url")))
                || CASE WHEN old_map->p->0 = 'null'::jsonb THEN '{"before": null}'::jsonb ELSE '{}'::jsonb END
                || CASE WHEN new_map->p->0 = 'null'::jsonb THEN '{"after": null}'::jsonb ELSE '{}'::jsonb END);
        END LOOP;
    END IF;
    RETURN to_jsonb(changes);
END;
$$;

DROP FUNCTION "audit_leaves"(JSONB, TEXT, BOOLEAN, TEXT);

-- Secrets the entries showed in clear. A URL's password was found only at the start of a text and
-- after a scheme of letters, digits, `+`, `.`, `:` or `-` (` postgres://u:pw@h`, `psql postgres://…`,
-- `//u:pw@h`, `my_db://u:pw@h` and a second URL in the same text were kept); the value of a parameter
-- named like a secret was kept in any text (`https://h/x?api_key=…`, `postgres://h/db?password=…`,
-- `jdbc:sqlserver://h;password=…`, `Server=h;Password=…`, `host=h password=…`, `#access_token=…`,
-- `Authorization: Bearer …`); so was the second item of a pair in a list whose first looks secret
-- (`headers: [["Authorization", "Bearer …"]]`), and the keys of an object under a secret, which an
-- entry's field paths named (`config.apiKeys.<the key>`). Now, inside a secret field:
--   - a secret object or array is one leaf, shown as "[REDACTED]" and compared on its whole value;
--   - the second item of a two-item array that is an item of an array (a pair in a list), whose
--     first item looks secret, is a secret;
--   - in a string, every URL's password and the value of every parameter named like a secret are
--     replaced by "[REDACTED]" (audit_redact_text), the rest of the text kept.
-- The API masks by the same rule (src/resources/secrets.ts), with the same regexes.
CREATE OR REPLACE FUNCTION "audit_leaves"("doc" JSONB, "root" TEXT, "scope" BOOLEAN, "pattern" TEXT,
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

-- A text as an entry shows it: every URL's password (`url`, group 1 up to the password), then in the
-- result the value of every parameter whose name matches `pattern`, replaced by "[REDACTED]". A
-- parameter starts the text or follows `?`, `&`, `;`, `#` or white space: a name, then `=`, or `:`
-- before a space or a tab or after a quoted name. Its value runs from after the separator and the
-- spaces or tabs that follow to the next parameter or the end of the text. Written alike in
-- src/resources/secrets.ts (replaceTextSecrets, TEXT_PARAMETER).
CREATE FUNCTION "audit_redact_text"("t" TEXT, "pattern" TEXT, "url" TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    re CONSTANT TEXT := '(^|[?&;#\t\n\r ])([^=:?&;#\t\n\r ]+)([=:])';
    s TEXT := CASE WHEN strpos("t", '@') > 0 THEN regexp_replace("t", "url", '\1[REDACTED]@', 'g') ELSE "t" END;
    pieces TEXT[];
    delims TEXT[];
    names TEXT[];
    seps TEXT[];
    out TEXT := '';
    hidden BOOLEAN := false;
    named BOOLEAN;
    next_char TEXT;
    i INTEGER;
BEGIN
    IF strpos(s, '=') = 0 AND strpos(s, ':') = 0 THEN
        RETURN s;
    END IF;
    pieces := regexp_split_to_array(s, re);
    SELECT array_agg(m[1] ORDER BY n), array_agg(m[2] ORDER BY n), array_agg(m[3] ORDER BY n)
    INTO delims, names, seps
    FROM regexp_matches(s, re, 'g') WITH ORDINALITY AS x(m, n);
    FOR i IN 1 .. coalesce(cardinality(names), 0) LOOP
        IF NOT hidden THEN
            out := out || pieces[i];
        END IF;
        next_char := CASE WHEN pieces[i + 1] <> '' THEN left(pieces[i + 1], 1) ELSE left(coalesce(delims[i + 1], ''), 1) END;
        named := seps[i] = '=' OR next_char IN (' ', E'\t') OR right(names[i], 1) = '"';
        IF hidden AND named THEN
            out := out || '[REDACTED]';
            hidden := false;
        END IF;
        CONTINUE WHEN hidden;
        out := out || delims[i] || names[i] || seps[i];
        IF named AND names[i] ~* "pattern" THEN
            out := out || substring(pieces[i + 1] FROM '^[ \t]*');
            hidden := true;
        END IF;
    END LOOP;
    RETURN out || CASE WHEN hidden THEN '[REDACTED]' ELSE pieces[cardinality(pieces)] END;
END;
$$;

-- What an entry shows of a leaf: "[REDACTED]" for a secret, a text of a secret field with the secrets
-- it holds redacted, or the value.
CREATE FUNCTION "audit_shown"("value" JSONB, "secret" BOOLEAN, "scope" BOOLEAN, "pattern" TEXT, "url" TEXT) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF "secret" THEN
        RETURN '"[REDACTED]"'::jsonb;
    ELSIF "scope" AND jsonb_typeof("value") = 'string' THEN
        RETURN to_jsonb("audit_redact_text"("value" #>> '{}', "pattern", "url"));
    END IF;
    RETURN "value";
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

DROP FUNCTION "audit_shown"(JSONB, BOOLEAN, BOOLEAN, TEXT);

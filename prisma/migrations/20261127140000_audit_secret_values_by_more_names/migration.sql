-- Only a member named `value` (any casing) beside a secret-looking label was a secret, so header
-- objects with other field names (`{"key": "Authorization", "val": …}`, `{"name": "Authorization",
-- "content": …}`, `{"k": "X-Api-Key", "v": …}`) showed the header's value in entries and responses.
-- A member named `value`, `val`, `v` or `content` (any casing: VALUE_KEY) is now a secret beside
-- another member that looks secret, whatever the other's key, value-like or not
-- (`{"content": "Cookie", "value": …}` too). The API masks alike (src/resources/secrets.ts).
CREATE OR REPLACE FUNCTION "audit_leaves"("doc" JSONB, "root" TEXT, "scope" BOOLEAN, "pattern" TEXT, "url" TEXT,
    OUT "paths" TEXT[], OUT "leaf_values" JSONB[], OUT "secrets" BOOLEAN[])
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    value_key CONSTANT TEXT := '^(value|val|v|content)$';
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
    labels INTEGER;
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
            -- The members that look secret, counted when a value-like one may be labelled by them.
            labels := CASE WHEN "scope" AND EXISTS (SELECT 1 FROM jsonb_object_keys(d) x WHERE x ~* value_key)
                           THEN (SELECT count(*) FROM jsonb_each_text(d) e WHERE e.value ~* "pattern")
                           ELSE 0 END;
            FOR k, v IN SELECT e.key, e.value FROM jsonb_each(d) e LOOP
                queue_paths := array_append(queue_paths, p || CASE WHEN k ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN '.' || k
                                                                  ELSE '[' || to_jsonb(k)::text || ']' END);
                queue_docs := array_append(queue_docs, v);
                queue_secrets := array_append(queue_secrets, "scope" AND (k ~* "pattern"
                    OR (k ~* value_key AND labels > CASE WHEN (d->>k) ~* "pattern" THEN 1 ELSE 0 END)));
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

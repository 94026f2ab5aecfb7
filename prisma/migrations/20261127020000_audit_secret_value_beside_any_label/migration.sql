-- The value of a header-list item is a secret when its label looks like one. The label was read from
-- `name` or `key` and the value from `value`, in lower case only, so `{"Name": "Authorization",
-- "Value": …}` and `{"Key": "X-Api-Key", "Value": …}` (the capitalised pairs of AWS and others) and
-- `{"header": "Cookie", "value": …}` were logged in clear. A `value` in any casing is now a secret
-- when any other member of its object reads as one (a string, or the JSON text of another value),
-- whatever that member's key; the API masks by the same rule (src/resources/secrets.ts).
CREATE OR REPLACE FUNCTION "audit_leaves"("doc" JSONB, "root" TEXT, "scope" BOOLEAN, "pattern" TEXT,
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
            labelled := "scope" AND EXISTS (SELECT 1 FROM jsonb_object_keys(d) x WHERE x ~* '^value$')
                AND EXISTS (SELECT 1 FROM jsonb_each_text(d) e WHERE e.key !~* '^value$' AND e.value ~* "pattern");
            FOR k, v IN SELECT e.key, e.value FROM jsonb_each(d) e LOOP
                queue_paths := array_append(queue_paths, p || CASE WHEN k ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN '.' || k
                                                                  ELSE '[' || to_jsonb(k)::text || ']' END);
                queue_docs := array_append(queue_docs, v);
                queue_secrets := array_append(queue_secrets, s OR ("scope" AND (k ~* "pattern" OR (labelled AND k ~* '^value$'))));
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

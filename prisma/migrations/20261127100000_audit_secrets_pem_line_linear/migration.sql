-- A PEM line's words were matched by `[A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*`, which JavaScript's
-- backtracking regex (the API's masking, PEM_PRIVATE_KEY) tried for every `PRIVATE KEY` in the run
-- against the rest of it: a source whose config held "-----BEGIN " and 9,000 `PRIVATE KEY`s (99 kB)
-- took half a second to mask on each GET of it and of every list showing it. The words are now one
-- run of `[A-Z0-9 ]` that a lookahead checks for `PRIVATE KEY`, matching the same texts in linear
-- time; the database uses the same regex so that both sides keep one rule.
CREATE OR REPLACE FUNCTION "audit_redact_text"("t" TEXT, "pattern" TEXT, "url" TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    re CONSTANT TEXT := '(^|[?&;#\t\n\r ])([^=:?&;#\t\n\r ]+)([=:])';
    s TEXT := CASE WHEN strpos("t", 'PRIVATE KEY') > 0
                   THEN regexp_replace("t", '(-----BEGIN (?=[A-Z0-9 ]*PRIVATE KEY)[A-Z0-9 ]*-----)((?:[^-]|-(?!----END))*)(-----END|$)',
                                       '\1[REDACTED]\3', 'g')
                   ELSE "t" END;
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
    IF strpos(s, '@') > 0 THEN
        s := regexp_replace(s, "url", '\1[REDACTED]@', 'g');
    END IF;
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

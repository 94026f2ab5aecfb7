-- The value of a parameter named like a secret ran to the next parameter, so a header line whose
-- value holds one (`Cookie: sid=…; theme=dark`, `Authorization: Bearer t=…`) was redacted only up to
-- it: `Cookie:[REDACTED] sid=…` showed the session in entries and responses. A header line (a name
-- matching the rule, then `:`) is now secret to the end of its line (`\n`, `\r` or the end of the
-- text), since a header's value may hold `;`, `=` and spaces; the spaces or tabs after the `:` are
-- kept. Other parameters (`password=… dbname=app`, `;Password=…;`) still end at the next one, and
-- `host:5432` is no parameter. The API reads texts alike (src/resources/secrets.ts).
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
    out TEXT[] := ARRAY[]::TEXT[];
    hidden BOOLEAN := false;
    header BOOLEAN := false;
    named BOOLEAN;
    next_char TEXT;
    line_end INTEGER;
    total INTEGER;
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
    total := coalesce(cardinality(names), 0);
    -- pieces[i] is the text before parameter i, pieces[total + 1] the text after the last.
    FOR i IN 1 .. total + 1 LOOP
        IF header THEN
            line_end := least(nullif(strpos(pieces[i], E'\n'), 0), nullif(strpos(pieces[i], E'\r'), 0));
            IF line_end IS NOT NULL THEN
                out := array_append(out, '[REDACTED]');
                out := array_append(out, substr(pieces[i], line_end));
                hidden := false;
                header := false;
            ELSIF i <= total AND delims[i] IN (E'\n', E'\r') THEN
                out := array_append(out, '[REDACTED]');
                hidden := false;
                header := false;
            END IF;
        ELSIF NOT hidden THEN
            out := array_append(out, pieces[i]);
        END IF;
        EXIT WHEN i > total;
        -- A parameter on a header line is part of its value.
        CONTINUE WHEN header;
        next_char := CASE WHEN pieces[i + 1] <> '' THEN left(pieces[i + 1], 1) ELSE left(coalesce(delims[i + 1], ''), 1) END;
        named := seps[i] = '=' OR next_char IN (' ', E'\t') OR right(names[i], 1) = '"' OR names[i] ~* "pattern";
        IF hidden AND named THEN
            out := array_append(out, '[REDACTED]');
            hidden := false;
        END IF;
        CONTINUE WHEN hidden;
        out := array_append(out, delims[i] || names[i] || seps[i]);
        IF named AND names[i] ~* "pattern" THEN
            hidden := true;
            header := seps[i] = ':';
            -- A header's spaces may run into the next parameter's own: `Cookie: sid=…`.
            out := array_append(out, CASE WHEN header AND pieces[i + 1] !~ '[^ \t]' AND delims[i + 1] IN (' ', E'\t')
                                          THEN pieces[i + 1] || delims[i + 1]
                                          ELSE substring(pieces[i + 1] FROM '^[ \t]*') END);
        END IF;
    END LOOP;
    RETURN array_to_string(out, '') || CASE WHEN hidden THEN '[REDACTED]' ELSE '' END;
END;
$$;

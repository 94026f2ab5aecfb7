-- A revoked API token stays revoked: its revocation time cannot be cleared or moved, by the
-- application or anyone else, so a token is never brought back to life behind its "API token
-- revoked" entry. A token that is needed again is a new one.
CREATE FUNCTION "api_tokens_keep_revocation"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD."revoked_at" IS NOT NULL AND NEW."revoked_at" IS DISTINCT FROM OLD."revoked_at" THEN
        RAISE EXCEPTION 'api_tokens: token % is revoked, and a revocation cannot be undone or changed', OLD."id"
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'Create a new token instead.';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER "api_tokens_keep_revocation" BEFORE UPDATE OF "revoked_at" ON "api_tokens"
    FOR EACH ROW EXECUTE FUNCTION "api_tokens_keep_revocation"();

-- Nor is a revoked token deleted and inserted again with revoked_at NULL: the application revokes
-- tokens and never deletes them, so its role may not; a revoked token's hash stays taken (unique).
REVOKE DELETE ON "api_tokens" FROM "audit_log_app";

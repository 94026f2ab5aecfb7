-- The chain trigger updated the workspace's head row once per entry. Within one transaction every
-- update leaves a dead version that later lookups walk past, so a bulk write of n entries cost
-- O(n²). The running head now lives in a transaction-local setting; the head row is locked by the
-- first entry (as before, until the transaction ends) and written once, at commit, by a deferred
-- trigger on the last entry.
CREATE OR REPLACE FUNCTION "audit_logs_chain"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    setting TEXT := 'audit_chain.w' || replace(NEW."workspace_id"::text, '-', '');
    running TEXT := current_setting(setting, true);
    head "audit_chain_heads";
BEGIN
    IF running IS NULL OR running = '' THEN
        SELECT * INTO head FROM "audit_chain_heads" WHERE "workspace_id" = NEW."workspace_id" FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO "audit_chain_heads" ("workspace_id", "seq", "hash") VALUES (NEW."workspace_id", 0, '')
            ON CONFLICT ("workspace_id") DO NOTHING;
            SELECT * INTO head FROM "audit_chain_heads" WHERE "workspace_id" = NEW."workspace_id" FOR UPDATE;
        END IF;
    ELSE
        head."seq" := split_part(running, ':', 1)::BIGINT;
        head."hash" := split_part(running, ':', 2);
    END IF;
    NEW."seq" := head."seq" + 1;
    NEW."prev_hash" := head."hash";
    NEW."hash" := "audit_log_digest"(head."hash", NEW);
    PERFORM set_config(setting, NEW."seq" || ':' || NEW."hash", true);
    RETURN NEW;
END;
$$;

CREATE FUNCTION "audit_logs_chain_flush"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    setting TEXT := 'audit_chain.w' || replace(NEW."workspace_id"::text, '-', '');
BEGIN
    IF current_setting(setting, true) = NEW."seq" || ':' || NEW."hash" THEN
        UPDATE "audit_chain_heads" SET "seq" = NEW."seq", "hash" = NEW."hash" WHERE "workspace_id" = NEW."workspace_id";
        PERFORM set_config(setting, '', true);
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER "audit_logs_chain_flush" AFTER INSERT ON "audit_logs"
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "audit_logs_chain_flush"();

-- The four audited resource types. Foreign keys restrict deletes: nothing cascades silently.

CREATE TABLE "sources" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "config" JSONB NOT NULL DEFAULT '{}',
    "created_by_id" UUID,
    "updated_by_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "sources_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "sources_workspace_id_name_key" ON "sources"("workspace_id", "name");
CREATE INDEX "sources_workspace_id_created_at_idx" ON "sources"("workspace_id", "created_at");
ALTER TABLE "sources" ADD CONSTRAINT "sources_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspaces"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "sources" ADD CONSTRAINT "sources_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "sources" ADD CONSTRAINT "sources_updated_by_id_fkey" FOREIGN KEY ("updated_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "models" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "source_id" UUID NOT NULL,
    "sql" TEXT NOT NULL,
    "created_by_id" UUID,
    "updated_by_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "models_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "models_workspace_id_name_key" ON "models"("workspace_id", "name");
CREATE INDEX "models_workspace_id_created_at_idx" ON "models"("workspace_id", "created_at");
CREATE INDEX "models_source_id_idx" ON "models"("source_id");
ALTER TABLE "models" ADD CONSTRAINT "models_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspaces"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "models" ADD CONSTRAINT "models_source_id_fkey" FOREIGN KEY ("source_id") REFERENCES "sources"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "models" ADD CONSTRAINT "models_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "models" ADD CONSTRAINT "models_updated_by_id_fkey" FOREIGN KEY ("updated_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "segments" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "model_id" UUID NOT NULL,
    "definition" JSONB NOT NULL DEFAULT '{}',
    "created_by_id" UUID,
    "updated_by_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "segments_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "segments_workspace_id_name_key" ON "segments"("workspace_id", "name");
CREATE INDEX "segments_workspace_id_created_at_idx" ON "segments"("workspace_id", "created_at");
CREATE INDEX "segments_model_id_idx" ON "segments"("model_id");
ALTER TABLE "segments" ADD CONSTRAINT "segments_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspaces"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "segments" ADD CONSTRAINT "segments_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "models"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "segments" ADD CONSTRAINT "segments_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "segments" ADD CONSTRAINT "segments_updated_by_id_fkey" FOREIGN KEY ("updated_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "destinations" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "config" JSONB NOT NULL DEFAULT '{}',
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "segment_ids" UUID[] NOT NULL DEFAULT ARRAY[]::UUID[],
    "created_by_id" UUID,
    "updated_by_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "destinations_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "destinations_workspace_id_name_key" ON "destinations"("workspace_id", "name");
CREATE INDEX "destinations_workspace_id_created_at_idx" ON "destinations"("workspace_id", "created_at");
ALTER TABLE "destinations" ADD CONSTRAINT "destinations_workspace_id_fkey" FOREIGN KEY ("workspace_id") REFERENCES "workspaces"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "destinations" ADD CONSTRAINT "destinations_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "destinations" ADD CONSTRAINT "destinations_updated_by_id_fkey" FOREIGN KEY ("updated_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
-- A destination's segment ids must name segments of its own workspace, and a segment that a
-- destination uses cannot be deleted: the referential integrity a join table's foreign keys would give.
CREATE INDEX "destinations_segment_ids_idx" ON "destinations" USING GIN ("segment_ids");

CREATE FUNCTION "destinations_check_segment_ids"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing UUID;
BEGIN
    SELECT s.id INTO missing
    FROM unnest(NEW.segment_ids) AS s(id)
    WHERE NOT EXISTS (
        SELECT 1 FROM "segments" g WHERE g.id = s.id AND g.workspace_id = NEW.workspace_id FOR KEY SHARE
    )
    LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'segment % does not exist in workspace %', missing, NEW.workspace_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'destinations_segment_ids_fkey';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER "destinations_check_segment_ids"
    BEFORE INSERT OR UPDATE OF "segment_ids", "workspace_id" ON "destinations"
    FOR EACH ROW EXECUTE FUNCTION "destinations_check_segment_ids"();

CREATE FUNCTION "segments_restrict_destination_use"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM "destinations" d WHERE d.segment_ids @> ARRAY[OLD.id]) THEN
        RAISE EXCEPTION 'segment % is used by a destination', OLD.id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'destinations_segment_ids_fkey';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER "segments_restrict_destination_use"
    BEFORE DELETE ON "segments"
    FOR EACH ROW EXECUTE FUNCTION "segments_restrict_destination_use"();

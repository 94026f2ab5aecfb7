-- The audit log. Everything a query filters on is a column; `changes` holds the field-level diff.
CREATE TABLE "audit_logs" (
    "id" UUID NOT NULL,
    "workspace_id" UUID NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "action" TEXT NOT NULL,
    "resource_type" TEXT NOT NULL,
    "resource_id" UUID NOT NULL,
    "resource_name" TEXT NOT NULL,
    "actor_id" UUID,
    "actor_name" TEXT,
    "actor_email" TEXT,
    "request_id" TEXT,
    "ip" TEXT,
    "user_agent" TEXT,
    "changes" JSONB NOT NULL,
    CONSTRAINT "audit_logs_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "audit_logs_action_check" CHECK ("action" IN ('created', 'updated', 'deleted')),
    CONSTRAINT "audit_logs_resource_type_check" CHECK ("resource_type" IN ('source', 'model', 'segment', 'destination')),
    CONSTRAINT "audit_logs_changes_check" CHECK (jsonb_typeof("changes") = 'array')
);
CREATE INDEX "audit_logs_workspace_id_occurred_at_id_idx" ON "audit_logs"("workspace_id", "occurred_at" DESC, "id" DESC);
CREATE INDEX "audit_logs_workspace_id_resource_id_occurred_at_idx" ON "audit_logs"("workspace_id", "resource_id", "occurred_at" DESC);

import { actionNameSql } from '../src/audit/capture/audited-resources';

/**
 * The export lines as the service rendered them before they were built by concatenation
 * (json_build_object, and each CSV cell always through the guard and the quoting), with the CSV's
 * user cells empty when no user acted: the reference the lines must still equal byte for byte.
 */
const ACTION_NAME = actionNameSql();
const ISO_TIME = `to_char("occurred_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const ACTOR_KIND = `coalesce("actor_kind", CASE WHEN "actor_id" IS NULL THEN 'system' ELSE 'user' END)`;
const ACTOR_NAME = `coalesce("actor_name", ${ACTOR_KIND})`;
const ENTRY = `'id', "id", 'occurredAt', ${ISO_TIME}, 'action', "action", 'actionName', ${ACTION_NAME},
  'resourceType', "resource_type", 'resourceId', "resource_id", 'resourceName', "resource_name",
  'user', CASE WHEN "actor_id" IS NULL THEN NULL
          ELSE json_build_object('id', "actor_id", 'name', "actor_name", 'email', "actor_email") END,
  'actor', json_build_object('kind', ${ACTOR_KIND}, 'name', ${ACTOR_NAME}),
  'requestId', "request_id", 'changes', "changes"`;
const oldCsvCell = (expression: string) => {
  const guarded = `(CASE WHEN ${expression} ~ '^[=+@\\t\\r-]' THEN '''' || ${expression} ELSE ${expression} END)`;
  return `(CASE WHEN ${guarded} ~ '[",\\r\\n]' THEN '"' || replace(${guarded}, '"', '""') || '"' ELSE ${guarded} END)`;
};
export const EXPORT_LINES_BEFORE = {
  ndjson: `json_build_object(${ENTRY})::text`,
  chain: `json_build_object(${ENTRY},
  'chain', json_build_object('seq', "seq", 'prevHash', "prev_hash", 'hash', "hash", 'workspaceId', "workspace_id",
    'actorKind', "actor_kind", 'actorId', "actor_id", 'actorName', "actor_name", 'actorEmail', "actor_email",
    'ip', "ip", 'userAgent', "user_agent"))::text`,
  csv: `concat_ws(',', ${[
    ISO_TIME,
    ACTION_NAME,
    '"resource_type"',
    '"resource_name"',
    `(CASE WHEN "actor_id" IS NULL THEN '' ELSE coalesce("actor_name", '') END)`,
    `(CASE WHEN "actor_id" IS NULL THEN '' ELSE coalesce("actor_email", '') END)`,
    '"resource_id"::text',
    `coalesce("request_id", '')`,
    '"id"::text',
    '"action"',
    ACTOR_KIND,
    ACTOR_NAME,
    '"changes"::text',
  ]
    .map(oldCsvCell)
    .join(', ')})`,
};

/**
 * The one place that says what is audited: which tables, as which resource type, which of their
 * JSON fields may hold secrets, and what a secret looks like. The database's capture triggers are
 * configured from this registry (`attachAuditTriggers`, run after every migration), and the API
 * masks secrets in responses with the same rule, so the two cannot disagree.
 *
 * Adding an audited type: its Prisma model, a migration that creates its table (with `id`,
 * `workspace_id`, `name`, `created_at`, `updated_at`, `created_by_id`, `updated_by_id`), and a row here.
 */
export const RESOURCE_TYPES = ['source', 'model', 'segment', 'destination'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

export const AUDIT_ACTIONS = ['created', 'updated', 'deleted', 'restored'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const ACTOR_KINDS = ['user', 'system', 'database'] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];

export interface AuditedResource {
  /** Prisma model name. */
  model: string;
  /** The table the capture triggers are attached to. */
  table: string;
  type: ResourceType;
  /** Human label used in action names: "Segment updated". */
  label: string;
  /** JSON fields (API names) in which SECRET_KEY applies, at any depth. */
  secretFields: readonly string[];
}

export const AUDITED_RESOURCES: readonly AuditedResource[] = [
  { model: 'Source', table: 'sources', type: 'source', label: 'Source', secretFields: ['config'] },
  { model: 'SqlModel', table: 'models', type: 'model', label: 'Model', secretFields: [] },
  { model: 'Segment', table: 'segments', type: 'segment', label: 'Segment', secretFields: [] },
  { model: 'Destination', table: 'destinations', type: 'destination', label: 'Destination', secretFields: ['config'] },
];

export const AUDITED_BY_MODEL: ReadonlyMap<string, AuditedResource> = new Map(
  AUDITED_RESOURCES.map((resource) => [resource.model, resource]),
);

/**
 * A key whose value is a secret (inside a secret field), and the `name`/`key` that marks a sibling
 * `value` as one. Plain alternation only: PostgreSQL evaluates the same text as a POSIX regex.
 */
export const SECRET_KEY = /pass|pwd|secret|token|key|credential|private|auth|dsn|cookie|session|signature/i;

/**
 * A URL with credentials (`postgres://user:pw@host`, `jdbc:postgresql://…`, a user that is an e-mail
 * address, a password holding `@`): group 1 is everything up to the password, group 2 the password,
 * which runs to the last `@` before the host. Also evaluated by PostgreSQL as a POSIX regex.
 */
export const URL_PASSWORD = /^([A-Za-z][A-Za-z0-9+.:-]*:\/\/[^/?#:]*:)([^/?#]*)@/;

export function actionName(type: ResourceType, action: AuditAction): string {
  const resource = AUDITED_RESOURCES.find((r) => r.type === type);
  return `${resource?.label ?? type} ${action}`;
}

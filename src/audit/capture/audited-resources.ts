/**
 * The one place that says what is audited: which Prisma models, as which resource type, and which
 * of their JSON fields may hold secrets. Fields not listed in `ignoredFields` appear in diffs.
 */
export const RESOURCE_TYPES = ['source', 'model', 'segment', 'destination'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

export const AUDIT_ACTIONS = ['created', 'updated', 'deleted'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditedResource {
  /** Prisma model name. */
  model: string;
  /** The client property for the model (`prisma.sqlModel`). */
  delegate: string;
  type: ResourceType;
  /** Human label used in action names: "Segment updated". */
  label: string;
  /** JSON fields whose keys matching SECRET_KEY are redacted, at any depth. */
  secretFields: readonly string[];
}

export const AUDITED_RESOURCES: readonly AuditedResource[] = [
  { model: 'Source', delegate: 'source', type: 'source', label: 'Source', secretFields: ['config'] },
  { model: 'SqlModel', delegate: 'sqlModel', type: 'model', label: 'Model', secretFields: [] },
  { model: 'Segment', delegate: 'segment', type: 'segment', label: 'Segment', secretFields: [] },
  {
    model: 'Destination',
    delegate: 'destination',
    type: 'destination',
    label: 'Destination',
    secretFields: ['config'],
  },
];

export const AUDITED_BY_MODEL: ReadonlyMap<string, AuditedResource> = new Map(
  AUDITED_RESOURCES.map((resource) => [resource.model, resource]),
);

/** Bookkeeping fields: set by the database or by the capture itself, never shown as changes. */
export const IGNORED_FIELDS: ReadonlySet<string> = new Set([
  'id',
  'workspaceId',
  'createdAt',
  'updatedAt',
  'createdById',
  'updatedById',
]);

/** Fields the capture owns; a caller that sets them could forge the creator or last editor. */
export const ACTOR_FIELDS: ReadonlySet<string> = new Set(['createdById', 'updatedById']);

export const SECRET_KEY = /pass|secret|token|key|credential|private/i;

export function actionName(type: ResourceType, action: AuditAction): string {
  const resource = AUDITED_RESOURCES.find((r) => r.type === type);
  return `${resource?.label ?? type} ${action}`;
}

import { type ActorKind, actionName, type AuditAction, type AuditedType } from '../capture/audited-resources';

/** A JSON value as a change shows it: a leaf, an empty object or array, or "[REDACTED]". */
export type JsonLeaf = string | number | boolean | null | Record<string, never> | [];

/** One changed leaf, computed by the database's capture trigger (see the capture migration). */
export interface FieldChange {
  field: string;
  before?: JsonLeaf;
  after?: JsonLeaf;
}

/** A row of the `audit_logs` view as the query service selects it. */
export interface AuditLogRow {
  id: string;
  occurred_at: Date;
  action: AuditAction;
  resource_type: AuditedType;
  resource_id: string;
  resource_name: string;
  actor_kind: ActorKind | null;
  actor_id: string | null;
  actor_name: string | null;
  actor_email: string | null;
  request_id: string | null;
  changes: FieldChange[];
}

/** The columns of `AuditLogRow`, for a SELECT from the `audit_logs` view or the sealed log. */
export const AUDIT_LOG_ROW_COLUMNS = `"id", "occurred_at", "action", "resource_type", "resource_id", "resource_name", "actor_kind", "actor_id", "actor_name", "actor_email", "request_id", "changes"`;

/** An entry as the API shows it (see the contract's `AuditEntry`). */
export interface AuditEntry {
  id: string;
  occurredAt: string;
  action: AuditAction;
  actionName: string;
  resourceType: AuditedType;
  resourceId: string;
  resourceName: string;
  user: { id: string; name: string | null; email: string | null } | null;
  actor: { kind: ActorKind; name: string };
  requestId: string | null;
  changes: FieldChange[];
}

/**
 * Who acted. Entries written before the actor's kind was recorded have none: a user when they
 * name one, else the system (whose job name was not kept then).
 */
export function actorOf(row: Pick<AuditLogRow, 'actor_kind' | 'actor_id' | 'actor_name'>): AuditEntry['actor'] {
  const kind = row.actor_kind ?? (row.actor_id ? 'user' : 'system');
  return { kind, name: row.actor_name ?? kind };
}

export function toAuditEntry(row: AuditLogRow): AuditEntry {
  return {
    id: row.id,
    occurredAt: new Date(row.occurred_at).toISOString(),
    action: row.action,
    actionName: actionName(row.resource_type, row.action, row.changes),
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    resourceName: row.resource_name,
    user: row.actor_id ? { id: row.actor_id, name: row.actor_name, email: row.actor_email } : null,
    actor: actorOf(row),
    requestId: row.request_id,
    changes: row.changes,
  };
}

export const CSV_COLUMNS = [
  'occurredAt',
  'actionName',
  'resourceType',
  'resourceName',
  'userName',
  'userEmail',
  'resourceId',
  'requestId',
  'id',
  'action',
  'actorKind',
  'actorName',
  'changes',
] as const;

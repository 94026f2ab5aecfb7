import { actionName, type AuditAction, type ResourceType } from '../capture/audited-resources';
import type { FieldChange } from '../capture/diff';

/** A row of `audit_logs` as the query service selects it. */
export interface AuditLogRow {
  id: string;
  occurred_at: Date;
  action: AuditAction;
  resource_type: ResourceType;
  resource_id: string;
  resource_name: string;
  actor_id: string | null;
  actor_name: string | null;
  actor_email: string | null;
  request_id: string | null;
  changes: FieldChange[];
}

/** An entry as the API shows it (see the contract's `AuditEntry`). */
export interface AuditEntry {
  id: string;
  occurredAt: string;
  action: AuditAction;
  actionName: string;
  resourceType: ResourceType;
  resourceId: string;
  resourceName: string;
  user: { id: string; name: string | null; email: string | null } | null;
  requestId: string | null;
  changes: FieldChange[];
}

export function toAuditEntry(row: AuditLogRow): AuditEntry {
  return {
    id: row.id,
    occurredAt: new Date(row.occurred_at).toISOString(),
    action: row.action,
    actionName: actionName(row.resource_type, row.action),
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    resourceName: row.resource_name,
    user: row.actor_id ? { id: row.actor_id, name: row.actor_name, email: row.actor_email } : null,
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
] as const;

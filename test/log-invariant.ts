import type { Client } from 'pg';

/**
 * The contract's path syntax and secret rule, written here from API.md rather than taken from the
 * application, so that a wrong encoding in the capture (two documents with the same paths) shows up
 * as a disagreement.
 */
const SECRET = /pass|pwd|secret|token|key|credential|private|auth|dsn|cookie|session|signature/i;
const REDACTED = '[REDACTED]';

function keyPath(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function leaves(value: unknown, path: string, secret: boolean, scope: boolean, out: Map<string, unknown>): void {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(path, secret ? REDACTED : []);
    value.forEach((item, i) => leaves(item, `${path}[${i}]`, secret, scope, out));
  } else if (typeof value === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object);
    if (keys.length === 0) out.set(path, secret ? REDACTED : {});
    const label = (k: string) => typeof object[k] === 'string' && SECRET.test(object[k]);
    const labelled = scope && 'value' in object && (label('name') || label('key'));
    for (const key of keys) {
      leaves(
        object[key],
        path + keyPath(key),
        secret || (scope && (SECRET.test(key) || (labelled && key === 'value'))),
        scope,
        out,
      );
    }
  } else if (secret) {
    out.set(path, REDACTED);
  } else if (typeof value === 'string') {
    out.set(path, value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#@:]*:)[^/?#@]*@/, `$1${REDACTED}@`));
  } else {
    out.set(path, value);
  }
}

function flatten(
  row: Record<string, unknown>,
  fields: readonly string[],
  secret: readonly string[],
): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const field of fields) leaves(row[field], field, false, secret.includes(field), out);
  return out;
}

const TABLES = [
  {
    table: 'sources',
    type: 'source',
    fields: ['name', 'type', 'config'],
    secret: ['config'],
    columns: `name, type, config`,
  },
  {
    table: 'models',
    type: 'model',
    fields: ['name', 'sourceId', 'sql'],
    secret: [],
    columns: `name, source_id AS "sourceId", sql`,
  },
  {
    table: 'segments',
    type: 'segment',
    fields: ['name', 'modelId', 'definition'],
    secret: [],
    columns: `name, model_id AS "modelId", definition`,
  },
  {
    table: 'destinations',
    type: 'destination',
    fields: ['name', 'type', 'config', 'enabled', 'segmentIds'],
    secret: ['config'],
    columns: `name, type, config, enabled, segment_ids AS "segmentIds"`,
  },
] as const;

interface Change {
  field: string;
  before?: unknown;
  after?: unknown;
}

/**
 * Replays every resource's audit entries and compares the result with the resource as stored:
 * a change without its entry, an entry without its change, or an entry with wrong values all show
 * up as a difference. Returns the differences (empty when the log and the data agree).
 */
export async function logDisagreements(db: Client, workspaceId?: string): Promise<string[]> {
  const scope = workspaceId ? `WHERE workspace_id = '${workspaceId}'` : '';
  const { rows: entries } = await db.query<{
    resource_id: string;
    resource_type: string;
    action: string;
    changes: Change[];
  }>(
    `SELECT resource_id, resource_type, action, changes FROM audit_logs ${scope} ORDER BY workspace_id, occurred_at, id`,
  );
  const replayed = new Map<string, { type: string; state: Map<string, unknown>; deleted: boolean; created: boolean }>();
  const problems: string[] = [];
  for (const entry of entries) {
    let resource = replayed.get(entry.resource_id);
    if (!resource) {
      resource = { type: entry.resource_type, state: new Map(), deleted: false, created: false };
      replayed.set(entry.resource_id, resource);
    }
    if (entry.action === 'created') {
      if (resource.created && !resource.deleted) problems.push(`${entry.resource_id}: created twice`);
      resource.created = true;
      resource.deleted = false;
      resource.state = new Map(entry.changes.map((c) => [c.field, c.after]));
    } else if (entry.action === 'updated') {
      if (!resource.created || resource.deleted) problems.push(`${entry.resource_id}: updated while it did not exist`);
      for (const change of entry.changes) {
        if (
          resource.state.has(change.field) &&
          JSON.stringify(resource.state.get(change.field)) !== JSON.stringify(change.before)
        ) {
          problems.push(
            `${entry.resource_id}: ${change.field} was ${JSON.stringify(resource.state.get(change.field))}, entry says before ${JSON.stringify(change.before)}`,
          );
        }
        if ('after' in change) resource.state.set(change.field, change.after);
        else resource.state.delete(change.field);
      }
    } else {
      resource.deleted = true;
    }
  }
  for (const spec of TABLES) {
    const { rows } = await db.query<Record<string, unknown> & { id: string }>(
      `SELECT id, ${spec.columns} FROM ${spec.table} ${scope}`,
    );
    const ids = new Set(rows.map((r) => r.id));
    for (const row of rows) {
      const resource = replayed.get(row.id);
      if (!resource || !resource.created || resource.deleted) {
        problems.push(`${spec.type} ${row.id} exists but its log ${resource ? 'says it is deleted' : 'is empty'}`);
        continue;
      }
      const actual = flatten(row, spec.fields, spec.secret);
      const expected = resource.state;
      for (const path of new Set([...actual.keys(), ...expected.keys()])) {
        if (JSON.stringify(actual.get(path)) !== JSON.stringify(expected.get(path))) {
          problems.push(
            `${spec.type} ${row.id}: ${path} is ${JSON.stringify(actual.get(path))}, the log says ${JSON.stringify(expected.get(path))}`,
          );
        }
      }
    }
    for (const [id, resource] of replayed) {
      if (resource.type === spec.type && !ids.has(id) && !resource.deleted)
        problems.push(`${spec.type} ${id} is gone but its log never says deleted`);
    }
  }
  return problems;
}

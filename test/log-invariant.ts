import type { Client } from 'pg';
import { flatten, REDACTED } from '../src/audit/capture/diff';

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
  }>(`SELECT resource_id, resource_type, action, changes FROM audit_logs ${scope} ORDER BY workspace_id, seq`);
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
      const actual = new Map(
        [...flatten(row, spec.fields, spec.secret)].map(([path, leaf]) => [path, leaf.secret ? REDACTED : leaf.value]),
      );
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

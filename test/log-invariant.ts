import type { Client } from 'pg';
import type TestAgent from 'supertest/lib/agent';

/*
 * Everything here follows the HTTP contract (../shared/API.md), not the application's code: the
 * path syntax, the flattening into leaves and the redaction rules are written again from the
 * contract, so that a bug in the application's own encoder (two documents giving the same paths, a
 * secret it forgets) shows up as a disagreement instead of being reproduced here.
 */

/** What the contract says an entry shows instead of a secret. */
export const REDACTED = '[REDACTED]';
/** The contract's secret key pattern (API.md, "Secrets"). */
const SECRET =
  /pass|pwd|secret|token|key|credential|private|auth|dsn|cookie|session|signature|jwt|(^|[^A-Za-z])sig([^A-Za-z]|$)/i;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The body of every PEM private key in a text, to its `-----END` or to the end of a key cut short. */
function redactPrivateKeys(text: string): string {
  let out = '';
  let from = 0;
  for (;;) {
    const begin = text.indexOf('-----BEGIN ', from);
    if (begin < 0) break;
    const close = text.indexOf('-----', begin + 11);
    const label = close < 0 ? '' : text.slice(begin + 11, close);
    if (close < 0 || !/^[A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*$/.test(label)) {
      out += text.slice(from, begin + 1);
      from = begin + 1;
      continue;
    }
    const end = text.indexOf('-----END', close + 5);
    out += `${text.slice(from, close + 5)}${REDACTED}`;
    from = end < 0 ? text.length : end;
  }
  return out + text.slice(from);
}

/** `//user:password@`, anywhere in a text: the password runs to the last `@` before a `/`, `?` or `#`. */
function redactUrlPasswords(text: string): string {
  let out = '';
  let from = 0;
  for (let slashes = text.indexOf('//'); slashes >= 0; slashes = text.indexOf('//', slashes + 1)) {
    if (slashes < from) continue;
    let colon = slashes + 2;
    while (colon < text.length && !'/?#:'.includes(text[colon])) colon++;
    if (text[colon] !== ':') continue;
    let end = colon + 1;
    while (end < text.length && !'/?#'.includes(text[end])) end++;
    const at = text.lastIndexOf('@', end - 1);
    if (at <= colon) continue;
    out += `${text.slice(from, colon + 1)}${REDACTED}@`;
    from = at + 1;
    slashes = at;
  }
  return out + text.slice(from);
}

/**
 * Parameters in a text (`name=value`, `Name: value`), each starting the text or after one of
 * `?&;#`, a space, a tab or a line break; a secret one's value is redacted after the spaces or tabs
 * that follow its separator: a header line's (a secret name, then `:`) up to the end of its line, any
 * other's up to the next parameter.
 */
function redactParameters(text: string): string {
  const breaks = '?&;#\t\n\r ';
  const found: { start: number; end: number; name: string; named: boolean; header: boolean }[] = [];
  let i = 0;
  while (i < text.length) {
    const lead = breaks.includes(text[i]) ? 1 : i === 0 ? 0 : -1;
    let j = i + Math.max(lead, 0);
    while (lead >= 0 && j < text.length && !breaks.includes(text[j]) && text[j] !== '=' && text[j] !== ':') j++;
    const name = text.slice(i + Math.max(lead, 0), j);
    if (lead >= 0 && name !== '' && (text[j] === '=' || text[j] === ':')) {
      const after = text[j + 1] ?? '';
      found.push({
        start: i,
        end: j + 1,
        name,
        header: text[j] === ':' && SECRET.test(name),
        named: text[j] === '=' || after === ' ' || after === '\t' || name.endsWith('"') || SECRET.test(name),
      });
      i = j + 1;
    } else {
      i += 1;
    }
  }
  const named = found.filter((p) => p.named);
  let out = '';
  let from = 0;
  for (const [k, p] of named.entries()) {
    if (p.start < from || !SECRET.test(p.name)) continue;
    let value = p.end;
    const firstAny = p.header ? text.length : (found.find((q) => q.start >= p.end)?.start ?? text.length);
    while (value < firstAny && (text[value] === ' ' || text[value] === '\t')) value++;
    let stop = named[k + 1]?.start ?? text.length;
    if (p.header) {
      stop = value;
      while (stop < text.length && text[stop] !== '\n' && text[stop] !== '\r') stop++;
    }
    out += `${text.slice(from, value)}${REDACTED}`;
    from = stop;
  }
  return out + text.slice(from);
}

export type PathSegment = string | number;

/** `field` then `.key` for a plain identifier, `["…"]` (JSON string) for any other key, `[n]` for an index. */
export function encodePath(field: string, segments: readonly PathSegment[]): string {
  return (
    field +
    segments
      .map((s) => (typeof s === 'number' ? `[${s}]` : IDENTIFIER.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`))
      .join('')
  );
}

/**
 * Parses a `changes[].field` path by the contract's grammar; undefined when it is not a canonical
 * path (a bracketed key that is a plain identifier must be written `.key`, an index has no leading
 * zero), since a non-canonical spelling would let two paths name the same leaf.
 */
export function parsePath(path: string): { field: string; segments: PathSegment[] } | undefined {
  const head = /^[A-Za-z_][A-Za-z0-9_]*/.exec(path);
  if (!head) return undefined;
  const segments: PathSegment[] = [];
  let i = head[0].length;
  while (i < path.length) {
    if (path[i] === '.') {
      const key = /^[A-Za-z_][A-Za-z0-9_]*/.exec(path.slice(i + 1));
      if (!key) return undefined;
      segments.push(key[0]);
      i += 1 + key[0].length;
    } else if (path.startsWith('["', i)) {
      let j = i + 2;
      while (j < path.length && path[j] !== '"') j += path[j] === '\\' ? 2 : 1;
      if (j >= path.length || path[j + 1] !== ']') return undefined;
      let key: unknown;
      try {
        key = JSON.parse(path.slice(i + 1, j + 1));
      } catch {
        return undefined;
      }
      if (typeof key !== 'string' || IDENTIFIER.test(key)) return undefined;
      if (JSON.stringify(key) !== path.slice(i + 1, j + 1)) return undefined;
      segments.push(key);
      i = j + 2;
    } else if (path[i] === '[') {
      const index = /^\[(0|[1-9][0-9]*)\]/.exec(path.slice(i));
      if (!index) return undefined;
      segments.push(Number(index[1]));
      i += index[0].length;
    } else {
      return undefined;
    }
  }
  return { field: head[0], segments };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A text as an entry shows it: private keys, then URL passwords, then named parameters. */
function redactText(text: string): string {
  return redactParameters(redactUrlPasswords(redactPrivateKeys(text)));
}

/** The contract's leaves of one top-level field, as an entry shows them (secrets redacted when `secretField`). */
export function contractLeaves(field: string, value: unknown, secretField: boolean): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (v: unknown, segments: PathSegment[], redacted: boolean, listed: boolean): void => {
    const path = encodePath(field, segments);
    if (redacted) {
      out.set(path, REDACTED);
    } else if (Array.isArray(v)) {
      if (v.length === 0) out.set(path, []);
      const pair = secretField && listed && v.length === 2 && typeof v[0] === 'string' && SECRET.test(v[0]);
      v.forEach((item, index) => walk(item, [...segments, index], pair && index === 1, true));
    } else if (isObject(v) && secretField && Object.keys(v).some((k) => redactText(k) !== k)) {
      out.set(path, REDACTED);
    } else if (isObject(v)) {
      const keys = Object.keys(v);
      if (keys.length === 0) out.set(path, {});
      const isValue = (k: string) => ['value', 'val', 'v', 'content'].includes(k.toLowerCase());
      const named = (k: string) => typeof v[k] === 'string' && SECRET.test(v[k]);
      const valueIsSecret = (k: string) => secretField && isValue(k) && keys.some((l) => l !== k && named(l));
      for (const key of keys) {
        const secretKey = secretField && (SECRET.test(key) || valueIsSecret(key));
        walk(v[key], [...segments, key], secretKey, false);
      }
    } else if (secretField && typeof v === 'string') {
      out.set(path, redactText(v));
    } else {
      out.set(path, v instanceof Date ? v.toISOString() : v);
    }
  };
  walk(value, [], false, false);
  return out;
}

const TABLES = [
  {
    table: 'sources',
    type: 'source',
    secret: ['config'],
    columns: `name, type, config`,
  },
  {
    table: 'models',
    type: 'model',
    secret: [],
    columns: `name, source_id AS "sourceId", sql`,
  },
  {
    table: 'segments',
    type: 'segment',
    secret: [],
    columns: `name, model_id AS "modelId", definition`,
  },
  {
    table: 'destinations',
    type: 'destination',
    secret: ['config'],
    columns: `name, type, config, enabled, segment_ids AS "segmentIds"`,
  },
] as const;

interface Change {
  field: string;
  before?: unknown;
  after?: unknown;
}

/** One audit entry, oldest first, as either the table or the API gives it. */
export interface LoggedEntry {
  resourceId: string;
  resourceType: string;
  action: string;
  changes: Change[];
  /** The acting user's id (null when no user acted); undefined when not checked. */
  userId?: string | null;
}

/** One live resource row: its diffable fields by their API names, and its creator and last editor. */
export interface StoredResource {
  type: string;
  id: string;
  fields: Record<string, unknown>;
  createdById?: string | null;
  updatedById?: string | null;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Replays `entries` (oldest first) and compares each resource's replayed state with its row:
 * a change without its entry, an entry without its change, an entry with wrong values, a path that
 * is not in the contract's syntax or that names a leaf and a branch at once all show up. With
 * `checkEditors`, a row's createdBy/updatedBy must also be the user of its `created` and newest entry.
 */
export function replayDisagreements(
  entries: readonly LoggedEntry[],
  resources: readonly StoredResource[],
  { checkEditors = false }: { checkEditors?: boolean } = {},
): string[] {
  interface Replayed {
    type: string;
    state: Map<string, unknown>;
    deleted: boolean;
    created: boolean;
    creator?: string | null;
    lastEditor?: string | null;
  }
  const replayed = new Map<string, Replayed>();
  const problems: string[] = [];
  for (const entry of entries) {
    const id = entry.resourceId;
    let resource = replayed.get(id);
    if (!resource) {
      resource = { type: entry.resourceType, state: new Map(), deleted: false, created: false };
      replayed.set(id, resource);
    }
    for (const change of entry.changes) {
      if (!parsePath(change.field)) problems.push(`${id}: ${JSON.stringify(change.field)} is not a contract path`);
    }
    resource.lastEditor = entry.userId;
    // A restore of a deletion re-creates the resource: it keeps the creator of its `created` entry
    // (the restorer when the log no longer holds one); any other restore changes fields like an update.
    const recreation = entry.action === 'restored' && (resource.deleted || !resource.created);
    if (entry.action === 'created' || recreation) {
      if (resource.created && !resource.deleted) problems.push(`${id}: created twice`);
      if (entry.action === 'created' || !resource.created) resource.creator = entry.userId;
      resource.created = true;
      resource.deleted = false;
      for (const change of entry.changes) {
        if ('before' in change || !('after' in change))
          problems.push(`${id}: ${entry.action} ${change.field} is not after-only`);
      }
      resource.state = new Map(entry.changes.map((c) => [c.field, c.after]));
    } else if (entry.action === 'updated' || entry.action === 'restored') {
      if (!resource.created || resource.deleted) problems.push(`${id}: updated while it did not exist`);
      if (entry.changes.length === 0) problems.push(`${id}: ${entry.action} with no changes`);
      for (const change of entry.changes) {
        const known = resource.state.has(change.field);
        if ((known || 'before' in change) && !same(resource.state.get(change.field), change.before)) {
          problems.push(
            `${id}: ${change.field} was ${JSON.stringify(resource.state.get(change.field))}, entry says before ${JSON.stringify(change.before)}`,
          );
        }
        if ('after' in change) resource.state.set(change.field, change.after);
        else resource.state.delete(change.field);
      }
    } else {
      if (!resource.created || resource.deleted) problems.push(`${id}: deleted while it did not exist`);
      for (const change of entry.changes) {
        if ('after' in change || !same(resource.state.get(change.field), change.before)) {
          problems.push(`${id}: deleted ${change.field} does not match the replayed ${change.field}`);
        }
      }
      resource.deleted = true;
    }
    const paths = [...resource.state.keys()].sort();
    for (let i = 1; i < paths.length; i++) {
      const [shorter, longer] = [paths[i - 1], paths[i]];
      if (longer.startsWith(shorter) && ['.', '['].includes(longer[shorter.length])) {
        problems.push(`${id}: the log makes ${shorter} both a value and the parent of ${longer}`);
      }
    }
  }
  const live = new Set(resources.map((r) => r.id));
  for (const row of resources) {
    const resource = replayed.get(row.id);
    if (!resource || !resource.created || resource.deleted) {
      problems.push(`${row.type} ${row.id} exists but its log ${resource ? 'says it is deleted' : 'is empty'}`);
      continue;
    }
    const secret = TABLES.find((t) => t.type === row.type)?.secret ?? [];
    const actual = new Map<string, unknown>();
    for (const [field, value] of Object.entries(row.fields)) {
      for (const [path, leaf] of contractLeaves(field, value, (secret as readonly string[]).includes(field))) {
        actual.set(path, leaf);
      }
    }
    for (const path of new Set([...actual.keys(), ...resource.state.keys()])) {
      if (!same(actual.get(path), resource.state.get(path))) {
        problems.push(
          `${row.type} ${row.id}: ${path} is ${JSON.stringify(actual.get(path))}, the log says ${JSON.stringify(resource.state.get(path))}`,
        );
      }
    }
    if (checkEditors && row.createdById !== resource.creator) {
      problems.push(
        `${row.type} ${row.id}: createdBy is ${row.createdById}, its created entry's user ${resource.creator}`,
      );
    }
    if (checkEditors && row.updatedById !== resource.lastEditor) {
      problems.push(
        `${row.type} ${row.id}: updatedBy is ${row.updatedById}, its newest entry's user ${resource.lastEditor}`,
      );
    }
  }
  for (const [id, resource] of replayed) {
    if (!live.has(id) && !resource.deleted)
      problems.push(`${resource.type} ${id} is gone but its log never says deleted`);
  }
  return problems;
}

/** Every live resource row (of one workspace), read with psql. */
export async function storedResources(db: Client, workspaceId?: string): Promise<StoredResource[]> {
  const scope = workspaceId ? `WHERE workspace_id = $1` : '';
  const resources: StoredResource[] = [];
  for (const spec of TABLES) {
    const { rows } = await db.query<Record<string, unknown> & { id: string; created_by: string; updated_by: string }>(
      `SELECT id, created_by_id AS created_by, updated_by_id AS updated_by, ${spec.columns} FROM ${spec.table} ${scope}`,
      workspaceId ? [workspaceId] : [],
    );
    for (const { id, created_by, updated_by, ...fields } of rows) {
      resources.push({ type: spec.type, id, fields, createdById: created_by, updatedById: updated_by });
    }
  }
  return resources;
}

/**
 * Replays every resource's audit entries, read from the `audit_logs` table, and compares the result
 * with the resources as stored (see replayDisagreements). Returns the differences (empty when the
 * log and the data agree).
 */
export async function logDisagreements(db: Client, workspaceId?: string): Promise<string[]> {
  const scope = workspaceId ? `WHERE workspace_id = $1` : '';
  const { rows } = await db.query<{ resource_id: string; resource_type: string; action: string; changes: Change[] }>(
    `SELECT resource_id, resource_type, action, changes FROM audit_logs ${scope} ORDER BY workspace_id, occurred_at, id`,
    workspaceId ? [workspaceId] : [],
  );
  const entries = rows
    .filter((r) => TABLES.some((t) => t.type === r.resource_type))
    .map((r) => ({ resourceId: r.resource_id, resourceType: r.resource_type, action: r.action, changes: r.changes }));
  return replayDisagreements(entries, await storedResources(db, workspaceId));
}

/** An audit entry as the API returns it. */
export interface ApiAuditEntry {
  id: string;
  occurredAt: string;
  action: string;
  actionName: string;
  resourceType: string;
  resourceId: string;
  resourceName: string;
  user: { id: string; name: string | null; email: string | null } | null;
  actor?: { kind: string; name: string | null };
  requestId: string | null;
  changes: Change[];
}

/** Every entry the API lists for these filters, newest first, following `nextCursor` to the end. */
export async function listAuditEntries(
  http: TestAgent,
  workspaceId: string,
  auth: { Authorization: string },
  filters: Record<string, string> = {},
): Promise<ApiAuditEntry[]> {
  const entries: ApiAuditEntry[] = [];
  let cursor: string | null = null;
  do {
    const query: Record<string, string> = { ...filters, limit: '200', ...(cursor ? { cursor } : {}) };
    const res = await http.get(`/api/workspaces/${workspaceId}/audit-logs`).set(auth).query(query);
    if (res.status !== 200) throw new Error(`GET audit-logs → ${res.status} ${JSON.stringify(res.body)}`);
    const page = res.body as { items: ApiAuditEntry[]; nextCursor: string | null };
    entries.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return entries;
}

/**
 * The same replay with the entries read through the API (as an admin of the workspace), so that it
 * does not depend on how the log is stored; also checks that each row's createdBy/updatedBy are the
 * users of its created and newest entries.
 */
export async function logDisagreementsViaApi(
  http: TestAgent,
  workspaceId: string,
  auth: { Authorization: string },
  db: Client,
): Promise<string[]> {
  const entries = await listAuditEntries(http, workspaceId, auth, {
    resourceType: TABLES.map((t) => t.type).join(','),
  });
  const oldestFirst = entries.reverse().map((e) => ({
    resourceId: e.resourceId,
    resourceType: e.resourceType,
    action: e.action,
    changes: e.changes,
    userId: e.user?.id ?? null,
  }));
  return replayDisagreements(oldestFirst, await storedResources(db, workspaceId), { checkEditors: true });
}

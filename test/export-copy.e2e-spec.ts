import { Client } from 'pg';
import {
  actionName,
  actionNameSql,
  AUDIT_ACTIONS,
  AUDITED_TYPE_INFO,
  AUDITED_TYPES,
} from '../src/audit/capture/audited-resources';
import { AuditLogsService, EXPORT_LINES } from '../src/audit/query/audit-logs.service';
import type { AuditLogFilterDto } from '../src/audit/query/audit-log-query.dto';
import { EXPORT_LINES_BEFORE } from './export-lines-before';
import { addEntries } from './fixtures';
import { createTestApp, createWorkspace, recordedExport, type TestApp, type TestWorkspace } from './test-app';

const COLUMNS =
  'id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name, actor_kind, actor_id, actor_name, actor_email, request_id, changes';

/** Text that COPY's text and CSV formats would escape, and CSV cells that need quoting or a formula guard. */
const AWKWARD = [
  'back\\slash',
  'tab\there',
  'new\nline',
  'carriage\rreturn',
  'quote " and , comma',
  '=SUM(A1)',
  '-1+1',
  '@cmd',
  '+plus',
  '\ttab first',
  'Zoë 🚀 naïve',
  "it's",
  '\\N',
];

/**
 * On PostgreSQL the export is one COPY per request, merged with the unsealed entries: the bytes must
 * be exactly those of the keyset batches the embedded database uses (which the API's own tests
 * check against the list), whatever the text, the order ties or the filter.
 */
describe('GET /audit-logs/export through COPY', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let db: Client;

  beforeAll(async () => {
    // Sealing only when asked, so that the test decides which entries are still in the inbox.
    t = await createTestApp({ auditSealIntervalMs: 0 });
    ws = await createWorkspace(t.app);
    db = new Client({ connectionString: t.database.url });
    await db.connect();
    const at = Date.parse('2026-11-20T10:00:00.000Z');
    // Sealed: every awkward text in every text column, several entries per millisecond.
    const row = (i: number, text: string, time: number) =>
      db.query(
        `INSERT INTO audit_log_inbox (${COLUMNS}) VALUES (gen_random_uuid(), $1, $2, $3, 'segment', gen_random_uuid(), $4,
                 'user', $5, $6, $7, $8, jsonb_build_array(jsonb_build_object('field', 'definition', 'before', $4::text, 'after', $9::text)))`,
        [
          ws.workspaceId,
          new Date(time),
          ['created', 'updated', 'deleted', 'restored'][i % 4],
          text,
          ws.admin.id,
          `${text} name`,
          `${text}@acme.test`,
          text,
          `${text} after`,
        ],
      );
    for (const [i, text] of AWKWARD.entries()) await row(i, text, at - Math.floor(i / 3) * 1000);
    await db.query('SELECT audit_log_seal(2147483647, true)');
    await addEntries(
      db,
      'id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name, actor_kind, changes',
      `SELECT gen_random_uuid(), $1, now() - (g || ' minutes')::interval, 'updated', 'model', gen_random_uuid(),
              'Model ' || g, 'system', '[]'::jsonb FROM generate_series(1, 12000) g`,
      [ws.workspaceId],
    );
    // Unsealed: newer than everything, between sealed ones, and in the same millisecond as sealed ones.
    for (const [i, text] of AWKWARD.slice(0, 6).entries()) await row(100 + i, `unsealed ${text}`, at + 5000 - i * 1000);
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  const service = () => t.app.get(AuditLogsService);

  const batches = async (filter: AuditLogFilterDto, format: 'csv' | 'ndjson', chain = false) => {
    const parts: Buffer[] = [];
    for await (const chunk of service().exportChunks(ws.workspaceId, filter, format, chain, { rows: 0 }, 'batches')) {
      parts.push(Buffer.from(chunk));
    }
    return Buffer.concat(parts);
  };

  // Each download waits for the entry that records it, so that the next case's log does not change under it.
  const download = (query: Record<string, string>) => recordedExport(t, ws.workspaceId, () => fetchExport(query));
  const fetchExport = async (query: Record<string, string>) => {
    const res = await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs/export`)
      .query(query)
      .set(ws.admin.auth)
      .buffer(true)
      .parse((response, done) => {
        const parts: Buffer[] = [];
        response.on('data', (chunk: Buffer) => parts.push(chunk));
        response.on('end', () => done(null, Buffer.concat(parts)));
      })
      .expect(200);
    return res.body as Buffer;
  };

  it.each(['csv', 'ndjson', 'chain'] as const)(
    '%s: every line is byte for byte what the json_build_object / always-quoting SQL rendered',
    async (format) => {
      await db.query(
        `INSERT INTO audit_log_inbox (${COLUMNS}) SELECT gen_random_uuid(), $1, now(), 'updated', 'model', gen_random_uuid(),
           'bare', 'database', NULL, NULL, NULL, NULL, '[1]'::jsonb`,
        [ws.workspaceId],
      );
      const { rows } = await db.query<{ differ: string; total: string }>(
        `SELECT count(*) FILTER (WHERE (${EXPORT_LINES_BEFORE[format]}) IS DISTINCT FROM (${EXPORT_LINES[format].text})) AS differ,
                count(*) AS total
         FROM audit_logs WHERE workspace_id = $1`,
        [ws.workspaceId],
      );
      expect(Number(rows[0].total)).toBeGreaterThan(AWKWARD.length * 2);
      expect(Number(rows[0].differ)).toBe(0);
    },
  );

  it.each([
    ['csv', {}],
    ['ndjson', {}],
    ['csv', { resourceType: 'segment' }],
    ['ndjson', { resourceName: 'e' }],
    ['ndjson', { resourceName: "it's" }],
    ['csv', { resourceName: 'back\\slash' }],
    ['csv', { action: 'created,deleted' }],
    ['ndjson', { from: '2026-11-20T09:59:58.000Z', to: '2026-11-20T10:00:03.000Z' }],
    // Older than every unsealed entry: nothing to merge.
    ['csv', { to: '2026-11-20T10:00:00.000Z' }],
    ['ndjson', { to: '2026-11-20T10:00:00.000Z' }],
  ] as const)('%s %j: the same bytes as the batches, unsealed entries in their place', async (format, filter) => {
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_log_inbox');
    expect(Number(rows[0].n)).toBeGreaterThanOrEqual(6);
    const spy = jest.spyOn(service() as unknown as { batchExport: () => unknown }, 'batchExport');
    try {
      // The batches first: the export records itself in the log when it ends.
      const dto = Object.fromEntries(
        Object.entries(filter).map(([k, v]) => [k, ['resourceType', 'action'].includes(k) ? v.split(',') : v]),
      );
      const expected = await batches(dto, format);
      spy.mockClear();
      const copied = await download({ format, ...filter });
      expect(spy).not.toHaveBeenCalled();
      expect(copied.length).toBeGreaterThan(0);
      expect(copied.equals(expected)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('the chain export matches the batches, chain fields included', async () => {
    await db.query(
      `INSERT INTO audit_log_inbox (${COLUMNS}) SELECT gen_random_uuid(), $1, now(), 'updated', 'source',
      gen_random_uuid(), 'fresh', 'system', NULL, NULL, NULL, NULL, '[]'::jsonb`,
      [ws.workspaceId],
    );
    await db.query('SELECT audit_log_seal(2147483647, true)');
    const expected = await batches({}, 'ndjson', true);
    const copied = await download({ format: 'ndjson', chain: 'true' });
    const lines = copied
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { chain: { seq: number | null } });
    expect(lines.every((l) => l.chain.seq !== null)).toBe(true);
    expect(copied.equals(expected)).toBe(true);
  });

  it('names every action in SQL as actionName() does, for every type, action and field rule', async () => {
    const changeSets: { field: string }[][] = [[], [{ field: 'name' }], [{ field: 'name' }, { field: 'other[0]' }]];
    for (const type of AUDITED_TYPES) {
      for (const rule of AUDITED_TYPE_INFO[type].fieldActionNames ?? []) {
        changeSets.push(
          [{ field: rule.field }],
          [{ field: 'name' }, { field: `${rule.field}.x` }],
          [{ field: `${rule.field}[2]` }],
          [{ field: `${rule.field}x` }],
        );
      }
    }
    const cases = [...AUDITED_TYPES, 'unknown_type'].flatMap((type) =>
      AUDIT_ACTIONS.flatMap((action) => changeSets.map((changes) => ({ type, action, changes }))),
    );
    const { rows } = await db.query<{ name: string }>(
      `SELECT ${actionNameSql()} AS name
       FROM (SELECT e->>'resource_type' AS "resource_type", e->>'action' AS "action", e->'changes' AS "changes", i
             FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS c(e, i)) c
       ORDER BY i`,
      [JSON.stringify(cases.map((c) => ({ resource_type: c.type, action: c.action, changes: c.changes })))],
    );
    expect(rows.map((r) => r.name)).toEqual(
      cases.map((c) => actionName(c.type as (typeof AUDITED_TYPES)[number], c.action, c.changes)),
    );
    expect(new Set(rows.map((r) => r.name)).size).toBeGreaterThan(20);
  });

  it(`with more than 10,000 unsealed entries, exports in batches: the same bytes`, async () => {
    await db.query(
      `INSERT INTO audit_log_inbox (${COLUMNS}) SELECT gen_random_uuid(), $1, now() - (g || ' seconds')::interval, 'updated',
         'destination', gen_random_uuid(), 'Destination ' || g, 'system', NULL, NULL, NULL, NULL, '[]'::jsonb
       FROM generate_series(1, 10001) g`,
      [ws.workspaceId],
    );
    const spy = jest.spyOn(service() as unknown as { batchExport: () => unknown }, 'batchExport');
    try {
      const expected = await batches({}, 'ndjson');
      spy.mockClear();
      const copied = await download({ format: 'ndjson' });
      expect(spy).toHaveBeenCalledTimes(1);
      expect(copied.equals(expected)).toBe(true);
    } finally {
      spy.mockRestore();
      await db.query('SELECT audit_log_seal(2147483647, true)');
    }
  });
});

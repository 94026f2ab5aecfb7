import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Heap Fetches'?: number;
  'Rows Removed by Filter'?: number;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

/** Every node of a plan, depth first. */
function allNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(allNodes)];
}

const PARTITION = /^audit_logs_p\d{4}_\d{2}$/;

/**
 * The node types of a plan: scans of audit_logs or one of its monthly partitions as
 * `Seq Scan:audit_logs`, others as themselves; `partitions` collects the months read.
 */
function nodes(
  node: PlanNode,
  out: string[] = [],
  partitions = new Set<string>(),
  empty = new Set<string>(),
): string[] {
  const relation = node['Relation Name'];
  // The inbox holds the few entries committed since the sealer last ran: reading it whole, and sorting
  // what it holds, is its design (it has no index so that writers pay for none).
  if (node['Node Type'] === 'Sort' && node.Plans?.[0]?.['Relation Name'] === 'audit_log_inbox') return out;
  if (relation === 'audit_log_inbox') return out;
  if (relation && PARTITION.test(relation)) partitions.add(relation);
  const audit = relation === 'audit_log_sealed' || (relation !== undefined && PARTITION.test(relation));
  // The months created ahead hold no rows yet; reading nothing sequentially costs nothing.
  const ahead = relation !== undefined && empty.has(relation) && node['Node Type'] === 'Seq Scan';
  out.push(audit && !ahead ? `${node['Node Type']}:audit_logs` : node['Node Type']);
  for (const child of node.Plans ?? []) nodes(child, out, partitions, empty);
  return out;
}

/** The partitions holding [from, to): one per UTC month. */
function monthsOf(from: Date, to: Date): string[] {
  const names: string[] = [];
  for (
    let m = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), 1));
    m < to;
    m.setUTCMonth(m.getUTCMonth() + 1)
  ) {
    names.push(`audit_logs_p${m.getUTCFullYear()}_${String(m.getUTCMonth() + 1).padStart(2, '0')}`);
  }
  return names;
}

/**
 * EXPLAIN of every statement the audit-log API sends, on a seeded log over five months: each reads
 * the audit table through an index, never by scanning it whole, and a date range reads only the
 * months it covers.
 */
describe('Query plans of the audit-log API', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let db: Client;
  const statements: { sql: string; params: string }[] = [];
  let emptyPartitions: Set<string>;

  beforeAll(async () => {
    t = await createTestApp({}, { onQuery: (sql, params) => statements.push({ sql, params }) });
    ws = await createWorkspace(t.app);
    db = new Client({ connectionString: t.database.url });
    await db.connect();
    // 60,000 entries over 30 workspaces and 125 days; ours holds a tenth of them.
    await db.query(`SELECT audit_log_create_partitions(now() - interval '126 days', now())`);
    await db.query(
      `INSERT INTO workspaces (id, name) SELECT gen_random_uuid(), 'W' || g FROM generate_series(1, 29) g`,
    );
    await db.query(
      `
      INSERT INTO audit_log_sealed (id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name, actor_id, actor_name, actor_email, request_id, changes, seq, prev_hash, hash)
      SELECT gen_random_uuid(), CASE WHEN g % 10 = 0 THEN $1::uuid ELSE (SELECT id FROM workspaces ORDER BY id OFFSET (g % 29) LIMIT 1) END,
             now() - (3 * g || ' minutes')::interval, CASE WHEN g % 50 = 0 THEN 'created' ELSE 'updated' END, (ARRAY['source','model','segment','destination'])[1 + g % 4],
             gen_random_uuid(), (ARRAY['Customers','Orders','Revenue'])[1 + g % 3] || ' ' || (g % 500),
             CASE WHEN g % 3 = 0 THEN $2::uuid ELSE NULL END, 'A', 'a@acme.test', 'req-' || (g / 3), '[]', g, '', ''
      FROM generate_series(1, 60000) g`,
      [ws.workspaceId, ws.admin.id],
    );
    await db.query('ANALYZE audit_log_sealed');
    const { rows } = await db.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'audit_log_sealed'::regclass AND c.reltuples = 0`,
    );
    emptyPartitions = new Set(rows.map((r) => r.name));
    expect(emptyPartitions.size).toBeGreaterThan(0);
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  const month = { from: new Date(Date.now() - 86_400_000 * 10).toISOString(), to: new Date().toISOString() };
  // `sorted`: the index returns rows in the API's order, so the plan has no Sort at all.
  it.each([
    ['first page', {}, true],
    ['user', { userId: 'ADMIN' }, true],
    ['resource type', { resourceType: 'segment' }, true],
    ['two resource types', { resourceType: 'segment,model' }, false],
    // One resource's few entries: sorting them is cheaper than merging every month's index in order.
    ['resource id', { resourceId: '3b241101-e2bb-4255-8caf-4136c566a962' }, false],
    ['date range', month, true],
    ['action', { action: 'created' }, true],
    ['two actions', { action: 'created,deleted' }, false],
    ['request id', { requestId: 'req-1' }, false],
    ['action and name', { action: 'updated', resourceName: 'orders' }, false],
    ['common name', { resourceName: 'customers' }, true],
    ['rare name', { resourceName: 'Revenue 499' }, false],
    ['short name', { resourceName: 'e' }, true],
    ['all filters', { userId: 'ADMIN', resourceType: 'source', resourceName: 'orders', ...month }, false],
  ])('%s: reads audit_logs through indexes, in order where one index gives it', async (_label, query, sorted) => {
    const q = Object.fromEntries(Object.entries(query).map(([k, v]) => [k, v === 'ADMIN' ? ws.admin.id : v]));
    const first = await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs`)
      .query(q)
      .set(ws.admin.auth)
      .expect(200);
    statements.length = 0;
    await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs`)
      .query({ ...q, ...(first.body.nextCursor ? { cursor: first.body.nextCursor } : {}) })
      .set(ws.admin.auth)
      .expect(200);
    const reads = statements.filter((s) => s.sql.includes('"audit_logs"'));
    expect(reads.length).toBeGreaterThan(0);
    for (const statement of reads) {
      const { rows } = await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (FORMAT JSON) ${statement.sql}`,
        JSON.parse(statement.params) as unknown[],
      );
      const partitions = new Set<string>();
      const plan = nodes(rows[0]['QUERY PLAN'][0].Plan, [], partitions, emptyPartitions);
      expect(plan.filter((type) => type.endsWith(':audit_logs')).length).toBeGreaterThan(0);
      expect(plan).not.toContain('Seq Scan:audit_logs');
      if (sorted && !statement.sql.includes('MATERIALIZED')) expect(plan).not.toContain('Sort');
      if ('from' in q) {
        expect(partitions.size).toBeGreaterThan(0);
        expect([...partitions].filter((p) => !monthsOf(new Date(q.from), new Date(q.to)).includes(p))).toEqual([]);
      }
    }
  });

  it('looks an entry up by id only in the months around the time its UUIDv7 carries', async () => {
    const source = await t.http
      .post(`/api/workspaces/${ws.workspaceId}/sources`)
      .set(ws.admin.auth)
      .send({ name: `by-id ${Date.now()}`, type: 'pg', config: {} })
      .expect(201);
    const [entry] = (
      await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs`)
        .query({ resourceId: source.body.id })
        .set(ws.admin.auth)
        .expect(200)
    ).body.items as { id: string; occurredAt: string }[];
    await t.app.get(AuditSealerService).seal();
    statements.length = 0;
    await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs/${entry.id}`).set(ws.admin.auth).expect(200);
    const [lookup] = statements.filter((s) => s.sql.includes('"audit_logs"'));
    const { rows } = await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (FORMAT JSON) ${lookup.sql}`,
      JSON.parse(lookup.params) as unknown[],
    );
    const partitions = new Set<string>();
    nodes(rows[0]['QUERY PLAN'][0].Plan, [], partitions);
    const at = new Date(entry.occurredAt);
    const around = monthsOf(new Date(at.getTime() - 86_400_000), new Date(at.getTime() + 86_400_000));
    expect([...partitions].filter((p) => !around.includes(p))).toEqual([]);
    expect(partitions.size).toBeGreaterThan(0);
  });

  /** A UUIDv7 carrying the time `ms` (Unix milliseconds). */
  const uuidv7 = (ms: number) => {
    const hex = ms.toString(16).padStart(12, '0') + '7' + randomUUID().replace(/-/g, '').slice(13);
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
  };

  it.each([
    ['a UUIDv4', () => randomUUID()],
    ['a UUID of version 1', () => 'c232ab00-9414-11ec-b3c8-9f68deced846'],
    ['a UUIDv7 of a time two days ahead', () => uuidv7(Date.now() + 2 * 86_400_000)],
    ['a UUIDv7 of a time a century ahead', () => uuidv7(Date.now() + 100 * 365 * 86_400_000)],
    ['a UUIDv7 of the largest time it can hold', () => uuidv7(2 ** 48 - 1)],
  ])('GET /audit-logs/:id with %s is a 404 answered without a query', async (_label, id) => {
    statements.length = 0;
    const res = await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs/${id()}`).set(ws.admin.auth);
    expect(res.status).toBe(404);
    expect(statements.filter((s) => s.sql.includes('"audit_logs"'))).toEqual([]);
  });

  it('GET /audit-logs/:id with a UUIDv7 of an hour ahead (a clock a little fast) still looks it up', async () => {
    statements.length = 0;
    await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs/${uuidv7(Date.now() + 3_600_000)}`)
      .set(ws.admin.auth)
      .expect(404);
    expect(statements.filter((s) => s.sql.includes('"audit_logs"'))).toHaveLength(1);
  });

  it("user, type and name: the window walks the user's index alone, and the table gives the page's rows only", async () => {
    // Index-only reads need the visibility map, which VACUUM (autovacuum, in service) keeps.
    await db.query('VACUUM audit_log_sealed');
    statements.length = 0;
    await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs`)
      .query({ userId: ws.admin.id, resourceType: 'source', resourceName: 'customers 1', limit: '5' })
      .set(ws.admin.auth)
      .expect(200);
    const [window] = statements.filter((s) => s.sql.includes('"window_at"'));
    expect(window).toBeDefined();
    const { rows } = await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) ${window.sql}`,
      JSON.parse(window.params) as unknown[],
    );
    const plan = allNodes(rows[0]['QUERY PLAN'][0].Plan);
    const walks = plan.filter((n) => n['Index Name']?.includes('actor_id') && (n['Actual Loops'] ?? 0) > 0);
    expect(walks.length).toBeGreaterThan(0);
    for (const walk of walks) {
      expect(walk['Node Type']).toBe('Index Only Scan');
      expect(walk['Heap Fetches']).toBe(0);
    }
    // The walk passes the user's entries of other types and names; the table is read for the page
    // (and the one entry past it that says whether there is a next page).
    const walked = walks.reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0), 0);
    const read = plan
      .filter((n) => n['Relation Name'] && PARTITION.test(n['Relation Name']) && !n['Index Name']?.includes('actor_id'))
      .reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1), 0);
    expect(read).toBeGreaterThanOrEqual(5);
    expect(read).toBeLessThanOrEqual(6);
    expect(walked).toBeGreaterThan(4 * read);
  });

  it('GET /audit-logs/:id with a UUIDv7 of a time the log has no month for reads no month', async () => {
    for (const at of [Date.UTC(1990, 0, 1), 0]) {
      statements.length = 0;
      await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs/${uuidv7(at)}`)
        .set(ws.admin.auth)
        .expect(404);
      const [lookup] = statements.filter((s) => s.sql.includes('"audit_logs"'));
      const { rows } = await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (FORMAT JSON) ${lookup.sql}`,
        JSON.parse(lookup.params) as unknown[],
      );
      const partitions = new Set<string>();
      const plan = nodes(rows[0]['QUERY PLAN'][0].Plan, [], partitions);
      expect(partitions.size).toBe(0);
      expect(plan.filter((type) => type.endsWith(':audit_logs'))).toEqual([]);
    }
  });
});

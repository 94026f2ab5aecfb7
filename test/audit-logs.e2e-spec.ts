import { stringify } from 'csv-stringify/sync';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import { runWithActor } from '../src/request-context/run-with-actor';
import { ResourceFactory } from './factories';
import { addEntries } from './fixtures';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

interface Entry {
  id: string;
  occurredAt: string;
  action: string;
  actionName: string;
  resourceType: string;
  resourceId: string;
  resourceName: string;
  user: { id: string; name: string; email: string } | null;
  requestId: string | null;
  changes: unknown[];
  actor: { kind: string; name: string };
}
interface Page {
  items: Entry[];
  nextCursor: string | null;
}

describe('Audit log API', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let other: TestWorkspace;
  let api: ResourceFactory;
  let pg: Client;

  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app, 'Acme');
    other = await createWorkspace(t.app, 'Globex');
    api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    pg = new Client({ connectionString: t.database.url });
    await pg.connect();
  });
  afterAll(async () => {
    await pg.end();
    await t.close();
  });

  const url = (workspaceId = ws.workspaceId, suffix = '') => `/api/workspaces/${workspaceId}/audit-logs${suffix}`;
  const list = async (query: Record<string, string | string[]> = {}, workspace = ws): Promise<Page> => {
    const res = await t.http.get(url(workspace.workspaceId)).query(query).set(workspace.admin.auth);
    if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(res.body)}`);
    return res.body as Page;
  };
  /** Entries with chosen times, for exact boundary checks: a fixture, written as the capture would. */
  const insertEntry = async (fields: { occurredAt: string; name: string; type?: string; actorId?: string | null }) => {
    const id = randomUUID();
    await pg.query(
      `SELECT audit_log_append(jsonb_build_array(jsonb_build_object('id', $1::uuid, 'workspace_id', $2::uuid,
         'occurred_at', $3::timestamptz, 'action', 'updated', 'resource_type', $4::text, 'resource_id', $5::uuid,
         'resource_name', $6::text, 'actor_id', $7::uuid, 'actor_name', 'Fixture', 'actor_email', 'fixture@acme.test',
         'changes', '[]'::jsonb)))`,
      [
        id,
        ws.workspaceId,
        fields.occurredAt,
        fields.type ?? 'segment',
        randomUUID(),
        fields.name,
        fields.actorId ?? null,
      ],
    );
    return id;
  };

  describe('GET /audit-logs', () => {
    it('lists entries newest first with the contract fields', async () => {
      const source = await api.create('sources');
      const page = await list();
      const entry = page.items.find((e) => e.resourceId === source.id)!;
      expect(entry).toEqual({
        id: expect.any(String),
        occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        action: 'created',
        actionName: 'Source created',
        resourceType: 'source',
        resourceId: source.id,
        resourceName: source.name,
        user: { id: ws.admin.id, name: expect.any(String), email: expect.any(String) },
        actor: { kind: 'user', name: entry.user!.name },
        requestId: expect.any(String),
        changes: expect.arrayContaining([{ field: 'name', after: source.name }]),
      });
      const keys = page.items.map((e) => [e.occurredAt, e.id].join(' '));
      expect(keys).toEqual([...keys].sort().reverse());
    });

    it('filters by user (repeated or comma-separated), by type (one or several), and combines them', async () => {
      const byMember = new ResourceFactory(t.http, ws.workspaceId, ws.member.auth);
      const segment = await byMember.create('segments'); // the member creates a source, a model and a segment
      const memberOnly = await list({ userId: ws.member.id, limit: '200' });
      expect(memberOnly.items.length).toBeGreaterThanOrEqual(3);
      expect(memberOnly.items.every((e) => e.user?.id === ws.member.id)).toBe(true);
      const both = await list({ userId: `${ws.member.id},${ws.admin.id}`, limit: '200' });
      const repeated = await list({ userId: [ws.member.id, ws.admin.id], limit: '200' });
      expect(repeated.items).toEqual(both.items);
      expect(both.items.length).toBeGreaterThan(memberOnly.items.length);
      const segments = await list({ resourceType: 'segment', limit: '200' });
      expect(segments.items.every((e) => e.resourceType === 'segment')).toBe(true);
      const two = await list({ resourceType: 'segment,model', limit: '200' });
      expect(new Set(two.items.map((e) => e.resourceType))).toEqual(new Set(['segment', 'model']));
      const combined = await list({ userId: ws.member.id, resourceType: 'segment' });
      expect(combined.items.map((e) => e.resourceId)).toEqual([segment.id]);
      const history = await list({ resourceId: segment.id });
      expect(history.items.map((e) => e.action)).toEqual(['created']);
    });

    it('filters by action (one or several, repeated or comma-separated) and combines it with the others', async () => {
      const source = await api.create('sources');
      await t.http.patch(api.url('sources', source.id)).set(ws.admin.auth).send({ type: 'bigquery' }).expect(200);
      await t.http.delete(api.url('sources', source.id)).set(ws.admin.auth).expect(204);
      const history = async (action: string | string[]) =>
        (await list({ resourceId: source.id, action })).items.map((e) => e.action);
      expect(await history('updated')).toEqual(['updated']);
      expect(await history('deleted,created')).toEqual(['deleted', 'created']);
      expect(await history(['created', 'deleted'])).toEqual(['deleted', 'created']);
      // The contract's read actions are accepted; the log does not record them yet.
      expect(await history('exported,verified')).toEqual([]);
      const updates = await list({ action: 'updated', limit: '200' });
      expect(updates.items.length).toBeGreaterThan(0);
      expect(updates.items.every((e) => e.action === 'updated')).toBe(true);
    });

    it("filters by request id: every entry one request produced, a bulk request's together", async () => {
      const sources = [await api.create('sources'), await api.create('sources'), await api.create('sources')];
      const requestId = `bulk-${randomUUID()}`;
      const res = await t.http
        .post(`${api.url('sources')}/bulk-delete`)
        .set({ ...ws.admin.auth, 'X-Request-Id': requestId })
        .send({ ids: sources.map((s) => s.id) })
        .expect(200);
      expect(res.headers['x-request-id']).toBe(requestId);
      const page = await list({ requestId });
      expect(page.items.map((e) => e.resourceId).sort()).toEqual(sources.map((s) => s.id).sort());
      expect(page.items.every((e) => e.action === 'deleted' && e.requestId === requestId)).toBe(true);
      expect((await list({ requestId, action: 'created' })).items).toEqual([]);
      expect((await list({ requestId: 'no-such-request' })).items).toEqual([]);
    });

    it('finds a resource by the name it had at the time, ignoring case, after a rename', async () => {
      const model = await api.create('models', { name: 'Quarterly Revenue' });
      await t.http.patch(api.url('models', model.id)).set(ws.admin.auth).send({ name: 'Annual revenue' }).expect(200);
      const old = await list({ resourceName: 'QUARTERLY' });
      expect(old.items.map((e) => [e.action, e.resourceName])).toEqual([['created', 'Quarterly Revenue']]);
      const current = await list({ resourceName: 'annual REV' });
      expect(current.items.map((e) => e.action)).toEqual(['updated']);
    });

    it('answers a name search the same way on each of its paths: newest entries, by resource, by trigram', async () => {
      // 1,500 newer entries push the rare names out of the newest-entries window; 'Zephyr' is one
      // resource renamed back and forth; 'Kestrel' is 300 resources, past the by-resource limit.
      const workspace = await createWorkspace(t.app, 'Search');
      const entries = (names: string[], minutesAgo: number) =>
        pg.query(
          `SELECT audit_log_append(jsonb_agg(jsonb_build_object('id', gen_random_uuid(), 'workspace_id', $1::uuid,
             'occurred_at', now() - make_interval(mins => $3::int + (n.i)::int), 'action', 'updated',
             'resource_type', 'segment', 'resource_id', CASE WHEN n.name LIKE 'Zephyr%' THEN $4::uuid ELSE gen_random_uuid() END,
             'resource_name', n.name, 'changes', '[]'::jsonb)))
           FROM unnest($2::text[]) WITH ORDINALITY AS n(name, i)`,
          [workspace.workspaceId, names, minutesAgo, randomUUID()],
        );
      await entries(
        Array.from({ length: 60 }, (_, i) => (i % 2 ? 'Zephyr North' : 'Zephyr South')),
        3000,
      );
      await entries(
        Array.from({ length: 300 }, (_, i) => `Kestrel ${i}`),
        2000,
      );
      await entries(
        Array.from({ length: 1500 }, (_, i) => `Common ${i % 7}`),
        0,
      );
      const oracle = async (name: string, limit: number) =>
        (
          await pg.query<{ id: string }>(
            `SELECT id FROM audit_logs WHERE workspace_id = $1 AND resource_name ILIKE '%' || $2 || '%'
             ORDER BY occurred_at DESC, id DESC LIMIT $3`,
            [workspace.workspaceId, name, limit],
          )
        ).rows.map((r) => r.id);
      for (const [name, limit] of [
        ['common 3', 50],
        ['zephyr north', 50],
        ['ZEPHYR', 200],
        ['kestrel', 50],
        ['estrel 29', 20],
        ['nowhere', 50],
      ] as const) {
        const page = await list({ resourceName: name, limit: String(limit) }, workspace);
        expect(page.items.map((e) => e.id)).toEqual(await oracle(name, limit));
      }
      expect((await list({ resourceName: 'zephyr north', limit: '50' }, workspace)).items).toHaveLength(30);
    });

    it('finds a match past the 512 characters of a name the resource names keep, unsealed and sealed, on every path', async () => {
      const workspace = await createWorkspace(t.app, 'Long names');
      const append = (names: string[], minutesAgo: number) =>
        pg.query(
          `SELECT audit_log_append(jsonb_agg(jsonb_build_object('id', gen_random_uuid(), 'workspace_id', $1::uuid,
             'occurred_at', now() - make_interval(mins => $3::int + (n.i)::int), 'action', 'updated',
             'resource_type', 'segment', 'resource_id', gen_random_uuid(), 'resource_name', n.name, 'changes', '[]'::jsonb)))
           FROM unnest($2::text[]) WITH ORDINALITY AS n(name, i)`,
          [workspace.workspaceId, names, minutesAgo],
        );
      const long = (tail: string) => `${'Long '.repeat(110)}${tail}`; // the tail starts at character 551
      // Osprey: three old entries, behind 1,500 newer ones (the by-resource path); Harrier: the newest.
      await append([long('Osprey 1'), long('Osprey 2'), long('Osprey 3')], 5000);
      await append(
        Array.from({ length: 1500 }, (_, i) => `Common ${i % 7}`),
        10,
      );
      await append([long('Harrier')], 0);
      const names = async (term: string) =>
        (await list({ resourceName: term, limit: '10' }, workspace)).items.map((e) => e.resourceName.slice(550));
      expect(await names('osprey')).toEqual(['Osprey 1', 'Osprey 2', 'Osprey 3']);
      expect(await names('harrier')).toEqual(['Harrier']);
      await t.app.get(AuditSealerService).seal();
      expect(await names('osprey')).toEqual(['Osprey 1', 'Osprey 2', 'Osprey 3']);
      expect(await names('harrier')).toEqual(['Harrier']);
      expect(await names('long long osprey 2')).toEqual(['Osprey 2']);
    });

    it('matches %, _ and \\ literally in a name search', async () => {
      await api.create('sources', { name: '100% real_data\\x' });
      await api.create('sources', { name: '100 percent realXdata' });
      expect((await list({ resourceName: '100%' })).items.map((e) => e.resourceName)).toEqual(['100% real_data\\x']);
      expect((await list({ resourceName: 'real_data' })).items.map((e) => e.resourceName)).toEqual([
        '100% real_data\\x',
      ]);
      expect((await list({ resourceName: 'data\\x' })).items).toHaveLength(1);
    });

    it('takes from inclusive and to exclusive, at exact boundaries and with non-UTC offsets', async () => {
      const at = ['2020-01-01T10:00:00.000Z', '2020-01-01T11:00:00.000Z', '2020-01-01T12:00:00.000Z'];
      const ids = [];
      for (const occurredAt of at) ids.push(await insertEntry({ occurredAt, name: `boundary ${occurredAt}` }));
      const range = await list({ from: at[0], to: at[2] });
      expect(range.items.map((e) => e.id)).toEqual([ids[1], ids[0]]);
      // 12:00+01:00 is 11:00Z: excluded as `to`; 06:00-05:00 is 11:00Z: included as `from`.
      const offsets = await list({ from: '2020-01-01T06:00:00-05:00', to: '2020-01-01T13:00:00.000+01:00' });
      expect(offsets.items.map((e) => e.id)).toEqual([ids[1]]);
      const empty = await list({ from: at[1], to: at[1] });
      expect(empty.items).toEqual([]);
      // Nanoseconds, as Java's Instant writes them: 11:00:00.000000001 excludes the 11:00 entry as `from`.
      const nanos = await list({ from: '2020-01-01T10:59:59.999999999Z', to: '2020-01-01T11:00:00.000000001Z' });
      expect(nanos.items.map((e) => e.id)).toEqual([ids[1]]);
      const after = await list({ from: '2020-01-01T11:00:00.000000001Z', to: '2020-01-01T12:00:00.000000000Z' });
      expect(after.items).toEqual([]);
      expect((await list({ from: '9999-12-31T23:59:59.999999999Z' })).items).toEqual([]);
      // Offsets ISO-8601 allows beyond PostgreSQL's ±15:59, also where they reach year 10000 in UTC.
      const far = await list({ from: '2019-12-31T11:01:00-23:59', to: '2020-01-02T11:59:00+23:59' });
      expect(far.items.map((e) => e.id)).toEqual([ids[1]]);
      expect((await list({ from: '9999-12-31T23:00:00-23:59' })).items).toEqual([]);
    });

    it('pages 1,000 entries by 7 with each exactly once, in order, while new entries are written', async () => {
      const prefix = `paging-${Date.now()}`;
      const admin = await t.prisma.user.findUniqueOrThrow({ where: { id: ws.admin.id } });
      await runWithActor({ kind: 'user', id: admin.id, name: admin.name, email: admin.email }, () =>
        t.prisma.source.createMany({
          data: Array.from({ length: 1000 }, (_, i) => ({
            workspaceId: ws.workspaceId,
            name: `${prefix}-${i}`,
            type: 'pg',
          })),
        }),
      );
      const seen: Entry[] = [];
      let cursor: string | null | undefined;
      let pages = 0;
      do {
        const page = await list({ resourceName: prefix, limit: '7', ...(cursor ? { cursor } : {}) });
        seen.push(...page.items);
        cursor = page.nextCursor;
        if (++pages % 20 === 0) await api.create('sources', { name: `${prefix}-late-${pages}` });
      } while (cursor);
      const original = seen.filter((e) => !e.resourceName.includes('-late-'));
      expect(original).toHaveLength(1000);
      expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
      const keys = seen.map((e) => `${e.occurredAt} ${e.id}`);
      expect(keys).toEqual([...keys].sort().reverse());
      expect(pages).toBe(Math.ceil(1000 / 7));
    });

    it('never shows another workspace, whatever the filter', async () => {
      const foreign = await new ResourceFactory(t.http, other.workspaceId, other.admin.auth).create('sources');
      expect((await list({ resourceId: foreign.id })).items).toEqual([]);
      expect((await list({ resourceName: foreign.name })).items).toEqual([]);
      expect((await list({ userId: other.admin.id })).items).toEqual([]);
      expect((await list({ resourceId: foreign.id }, other)).items).toHaveLength(1);
    });

    it.each([
      [{ resourceType: 'widget' }, /resourceType must be one or more of source, model, segment, destination/],
      [{ userId: 'nope' }, /userId must be user ids/],
      [
        { action: 'created,frobbed' },
        /action must be one or more of created, updated, deleted, restored, exported, verified/,
      ],
      [{ requestId: 'has space' }, /requestId must be a request id/],
      [{ requestId: 'x'.repeat(129) }, /requestId must be a request id: 1 to 128/],
      [{ userId: Array.from({ length: 51 }, () => randomUUID()).join(',') }, /at most 50/],
      [{ limit: '0' }, /limit must be a whole number from 1 to 200/],
      [{ limit: '201' }, /limit must be a whole number from 1 to 200/],
      [{ limit: 'ten' }, /limit must be a whole number from 1 to 200/],
      [{ from: 'yesterday' }, /from must be an ISO-8601 instant/],
      [{ from: '2026-11-25T10:00:00' }, /from must be an ISO-8601 instant with an offset or Z/],
      [{ to: '2026-02-30T10:00:00Z' }, /to is not a valid date/],
      [{ from: '2026-11-26T00:00:00Z', to: '2026-11-25T00:00:00Z' }, /from .* must not be after to/],
      [{ from: '2026-11-26T00:00:00.000002Z', to: '2026-11-26T00:00:00.000001Z' }, /from .* must not be after to/],
      [{ resourceName: 'x'.repeat(201) }, /resourceName must be 1 to 200 characters/],
      [{ resourceId: '42' }, /resourceId must be a UUID/],
      [{ cursor: 'garbage' }, /cursor is not valid/],
      [{ sort: 'asc' }, /property sort should not exist/],
    ])('answers 400 for %j, naming the parameter and what it accepts', async (query, message) => {
      const res = await t.http.get(url()).query(query).set(ws.admin.auth).expect(400);
      expect(JSON.stringify(res.body.message)).toMatch(message);
    });

    it('answers 400 for a tampered cursor and for one from another workspace', async () => {
      const { nextCursor } = await list({ limit: '1' });
      expect(nextCursor).toBeTruthy();
      const [payload, signature] = nextCursor!.split('.');
      const forged = Buffer.from(JSON.stringify(['2999-01-01T00:00:00.000Z', randomUUID()])).toString('base64url');
      await t.http
        .get(url())
        .query({ cursor: `${forged}.${signature}` })
        .set(ws.admin.auth)
        .expect(400);
      await t.http
        .get(url())
        .query({ cursor: `${payload}.${signature.slice(1)}x` })
        .set(ws.admin.auth)
        .expect(400);
      await t.http.get(url(other.workspaceId)).query({ cursor: nextCursor! }).set(other.admin.auth).expect(400);
    });
  });

  describe('access', () => {
    const routes = ['', '/filters', '/export', `/${randomUUID()}`];
    it.each(routes)(
      'GET /audit-logs%s: 401 without a token, 403 for a member, 404 for a non-member',
      async (suffix) => {
        await t.http.get(url(ws.workspaceId, suffix)).expect(401);
        const forbidden = await t.http.get(url(ws.workspaceId, suffix)).set(ws.member.auth).expect(403);
        expect(forbidden.body.message).toMatch(/admins only/);
        await t.http.get(url(ws.workspaceId, suffix)).set(other.admin.auth).expect(404);
      },
    );
  });

  describe('GET /audit-logs/:id', () => {
    it('returns one entry of the workspace, 404 for one of another workspace, 400 for a malformed id', async () => {
      const [entry] = (await list({ limit: '1' })).items;
      const res = await t.http
        .get(url(ws.workspaceId, `/${entry.id}`))
        .set(ws.admin.auth)
        .expect(200);
      expect(res.body).toEqual(entry);
      const [foreign] = (await list({ limit: '1' }, other)).items;
      await t.http
        .get(url(ws.workspaceId, `/${foreign.id}`))
        .set(ws.admin.auth)
        .expect(404);
      await t.http.get(url(ws.workspaceId, '/not-a-uuid')).set(ws.admin.auth).expect(400);
    });
  });

  describe('GET /audit-logs/filters', () => {
    it("offers the workspace users, the contract's resource types and its actions", async () => {
      const res = await t.http.get(url(ws.workspaceId, '/filters')).set(ws.admin.auth).expect(200);
      expect(res.body.resourceTypes).toEqual([
        'source',
        'model',
        'segment',
        'destination',
        'member',
        'api_token',
        'workspace',
        'audit_log',
      ]);
      expect(res.body.actions).toEqual(['created', 'updated', 'deleted', 'restored', 'exported', 'verified']);
      expect(res.body.users.map((u: { id: string }) => u.id).sort()).toEqual([ws.admin.id, ws.member.id].sort());
    });
  });

  describe('GET /audit-logs/export', () => {
    it('exports as NDJSON exactly the items the API lists for the same filter, across export batches', async () => {
      // A workspace of its own, filled here: the test does not depend on what other tests wrote, and
      // holds more matching entries than one export batch (5,000), so the export pages too.
      const own = await createWorkspace(t.app, 'Export');
      const ownApi = new ResourceFactory(t.http, own.workspaceId, own.admin.auth);
      await ownApi.create('sources'); // one entry written by the capture itself
      await pg.query(`SELECT audit_log_create_partitions(now() - interval '1 hour', now())`);
      await addEntries(
        pg,
        'id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name, actor_id, actor_name, actor_email, actor_kind, changes',
        `SELECT gen_random_uuid(), $1, now() - (g || ' milliseconds')::interval, 'updated',
                CASE WHEN g % 20 = 0 THEN 'segment' ELSE 'source' END, gen_random_uuid(), 'Fixture ' || g,
                $2, 'Fixture', 'fixture@acme.test', 'user', '[]'
         FROM generate_series(1, 5600) g`,
        [own.workspaceId, own.admin.id],
      );
      const filter = { resourceType: 'source', userId: own.admin.id };
      const items: Entry[] = [];
      let cursor: string | null = null;
      do {
        const page: Page = await list({ ...filter, limit: '200', ...(cursor ? { cursor } : {}) }, own);
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      const res = await t.http
        .get(url(own.workspaceId, '/export'))
        .query({ ...filter, format: 'ndjson' })
        .set(own.admin.auth)
        .expect(200);
      expect(res.headers['content-type']).toMatch(/application\/x-ndjson/);
      expect(res.headers['content-disposition']).toBe('attachment; filename="export-audit-log-all-time.ndjson"');
      const lines = res.text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Entry);
      expect(lines).toEqual(items);
      expect(items.length).toBe(5600 - 280 + 1);
      expect(items.length).toBeGreaterThan(5000);
    });

    it('names the file after the workspace and the range in UTC days, the end day included', async () => {
      const filename = async (query: Record<string, string>, workspace = ws) =>
        (await t.http.get(url(workspace.workspaceId, '/export')).query(query).set(workspace.admin.auth).expect(200))
          .headers['content-disposition'];
      expect(await filename({})).toBe('attachment; filename="acme-audit-log-all-time.csv"');
      expect(await filename({ from: '2026-11-01T00:00:00Z', to: '2026-11-27T00:00:00Z', format: 'ndjson' })).toBe(
        'attachment; filename="acme-audit-log-2026-11-01-to-2026-11-26.ndjson"',
      );
      // An offset is read as the instant it names: 03:00 in Kolkata is the day before in UTC.
      expect(await filename({ from: '2026-11-01T03:00:00+05:30' })).toBe(
        'attachment; filename="acme-audit-log-from-2026-10-31.csv"',
      );
      expect(await filename({ to: '2026-11-26T15:30:00Z' })).toBe(
        'attachment; filename="acme-audit-log-until-2026-11-26.csv"',
      );
      const accented = await createWorkspace(t.app, 'Café Zürich & Co.');
      expect(await filename({}, accented)).toBe('attachment; filename="cafe-zurich-co-audit-log-all-time.csv"');
      const unlatin = await createWorkspace(t.app, '数据团队');
      expect(await filename({}, unlatin)).toBe('attachment; filename="workspace-audit-log-all-time.csv"');
    });

    it('exports CSV with the contract columns, quoting, and formula injection neutralised', async () => {
      await api.create('sources', { name: '=HYPERLINK("http://evil.test","x")' });
      await api.create('sources', { name: 'comma, "quoted"' });
      const res = await t.http
        .get(url(ws.workspaceId, '/export'))
        .query({ resourceName: 'HYPERLINK' })
        .set(ws.admin.auth)
        .expect(200);
      expect(res.headers['content-type']).toMatch(/text\/csv/);
      const [header, row] = res.text.trim().split('\n');
      expect(header).toBe(
        'occurredAt,actionName,resourceType,resourceName,userName,userEmail,resourceId,requestId,id,action,actorKind,actorName,changes',
      );
      expect(row).toContain(`"'=HYPERLINK(""http://evil.test"",""x"")"`);
      const quoted = await t.http
        .get(url(ws.workspaceId, '/export'))
        .query({ resourceName: 'comma,' })
        .set(ws.admin.auth)
        .expect(200);
      expect(quoted.text).toContain('"comma, ""quoted"""');
    });

    it('renders every CSV cell exactly as csv-stringify with escape_formulas would', async () => {
      const names = [
        '-1 minus',
        '+plus',
        '@at',
        '\ttab',
        'line\nbreak',
        'carriage\rreturn',
        'say "hi"',
        'a,b',
        'plain',
        '=SUM(A1)',
      ];
      for (const name of names) await api.create('sources', { name: `csv ${name}` });
      for (const name of names) await api.create('models', { name: name.trim() === name ? name : `m${name}` });
      const res = await t.http
        .get(url(ws.workspaceId, '/export'))
        .query({ resourceType: 'model', format: 'csv' })
        .set(ws.admin.auth)
        .expect(200);
      const items = (await list({ resourceType: 'model', limit: '200' })).items;
      // The changes cell is the entry's changes as PostgreSQL writes JSON text.
      const changesText = new Map(
        (
          await pg.query<{ id: string; text: string }>(
            'SELECT id, changes::text AS text FROM audit_logs WHERE id = ANY($1::uuid[])',
            [items.map((e) => e.id)],
          )
        ).rows.map((r) => [r.id, r.text]),
      );
      const expected = stringify(
        items.map((e) => [
          e.occurredAt,
          e.actionName,
          e.resourceType,
          e.resourceName,
          e.user?.name ?? '',
          e.user?.email ?? '',
          e.resourceId,
          e.requestId ?? '',
          e.id,
          e.action,
          e.actor.kind,
          e.actor.name,
          changesText.get(e.id),
        ]),
        { escape_formulas: true },
      );
      expect(res.text).toBe(
        `occurredAt,actionName,resourceType,resourceName,userName,userEmail,resourceId,requestId,id,action,actorKind,actorName,changes\n${expected}`,
      );
    });

    it("fills userName and userEmail from the entry's user only: empty for the system or the database", async () => {
      // The workspace's members were added by the system (the bootstrap's actor), not by a user.
      const bySystem = (await list({ resourceType: 'member' })).items.filter((e) => e.user === null);
      expect(bySystem.length).toBeGreaterThan(0);
      expect(bySystem[0].actor.kind).toBe('system');
      const res = await t.http
        .get(url(ws.workspaceId, '/export'))
        .query({ resourceType: 'member', format: 'csv' })
        .set(ws.admin.auth)
        .expect(200);
      const rows = new Map(
        res.text
          .trim()
          .split('\n')
          .slice(1)
          .map((line) => [line.split(',')[8], line.split(',')]),
      );
      for (const entry of bySystem) {
        const row = rows.get(entry.id)!;
        expect({ userName: row[4], userEmail: row[5], actorKind: row[10], actorName: row[11] }).toEqual({
          userName: '',
          userEmail: '',
          actorKind: entry.actor.kind,
          actorName: entry.actor.name,
        });
      }
    });

    it('exports with the action and request id filters', async () => {
      const source = await api.create('sources');
      await t.http.delete(api.url('sources', source.id)).set(ws.admin.auth).expect(204);
      const [deletion] = (await list({ resourceId: source.id, action: 'deleted' })).items;
      const res = await t.http
        .get(url(ws.workspaceId, '/export'))
        .query({ format: 'ndjson', action: 'deleted', requestId: deletion.requestId! })
        .set(ws.admin.auth)
        .expect(200);
      expect(
        res.text
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Entry),
      ).toEqual([deletion]);
      const bad = await t.http
        .get(url(ws.workspaceId, '/export'))
        .query({ action: 'read' })
        .set(ws.admin.auth)
        .expect(400);
      expect(JSON.stringify(bad.body.message)).toMatch(/action must be one or more of/);
    });

    it('answers 400 for a bad format or filter before sending anything', async () => {
      const res = await t.http
        .get(url(ws.workspaceId, '/export'))
        .query({ format: 'xlsx' })
        .set(ws.admin.auth)
        .expect(400);
      expect(JSON.stringify(res.body.message)).toMatch(/format must be csv or ndjson/);
      await t.http.get(url(ws.workspaceId, '/export')).query({ from: 'x' }).set(ws.admin.auth).expect(400);
    });
  });
});

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { migrate } from '../src/database/migrator';
import { pgExecutor } from '../src/database/sql-executor';
import { startReplicaCluster, type ReplicaCluster } from './replica-cluster';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

/** The statements of a server's log that carry an audit tag, with the request id the tag names. */
function statementsIn(log: string): { requestId: string; sql: string }[] {
  return log.split(/\n(?=\d{4}-\d\d-\d\d )/).flatMap((sql) => {
    const tag = /audit='([A-Za-z0-9_-]+)'/.exec(sql)?.[1];
    if (!tag) return [];
    const context = JSON.parse(Buffer.from(tag, 'base64url').toString('utf8')) as { requestId?: string };
    return context.requestId ? [{ requestId: context.requestId, sql }] : [];
  });
}

/** The export `COPY` statements of a server's log that filter on the resource `resourceId`. */
function copiesOf(log: string, resourceId: string): number {
  return log
    .split(/\n(?=\d{4}-\d\d-\d\d )/)
    .filter((statement) => /statement: COPY \(\s*SELECT/.test(statement) && statement.includes(resourceId)).length;
}

interface Entry {
  id: string;
  resourceId: string;
}

/**
 * DATABASE_REPLICA_URL on a real streaming replica: a primary and a hot standby made here with
 * initdb and `pg_basebackup -R -X stream`, each on its own port. The audit log's reads are served by
 * the standby, writes and the sealer by the primary, and what the standby has not replayed yet is
 * either found on the primary (an entry by id, verify) or simply not shown yet (list, export).
 */
describe('Reads on a streaming replica (DATABASE_REPLICA_URL)', () => {
  let cluster: ReplicaCluster;
  let t: TestApp;
  let ws: TestWorkspace;

  beforeAll(async () => {
    cluster = await startReplicaCluster();
    await cluster.primary((c) => migrate(pgExecutor(c)));
    t = await createTestApp({ databaseReplicaUrl: cluster.standbyUrl }, {}, cluster.primaryUrl);
    ws = await createWorkspace(t.app);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await cluster?.close();
  });

  const api = (path: string) => `/api/workspaces/${ws.workspaceId}${path}`;
  const createSource = async (name: string, requestId: string = randomUUID()) => {
    const source = await t.http
      .post(api('/sources'))
      .set(ws.admin.auth)
      .set('X-Request-Id', requestId)
      .send({ name, type: 'postgres', config: { host: 'db.acme.test' } });
    expect(source.status).toBe(201);
    return source.body as { id: string };
  };
  const entriesOf = async (resourceId: string): Promise<Entry[]> =>
    cluster.primary(async (c) => {
      const { rows } = await c.query<{ id: string; resource_id: string }>(
        `SELECT id, resource_id FROM audit_logs WHERE resource_id = $1`,
        [resourceId],
      );
      return rows.map((r) => ({ id: r.id, resourceId: r.resource_id }));
    });
  /**
   * Waits until the sealer has sealed everything (so that a verify's own seal writes nothing), then
   * until the standby has replayed everything the primary has written: a verify then finds the
   * standby caught up at once, however loaded the machine.
   */
  const settled = async () => {
    await cluster.primary(async (c) => {
      const deadline = Date.now() + 30_000;
      while ((await c.query<{ n: string }>('SELECT count(*) AS n FROM audit_log_inbox')).rows[0].n !== '0') {
        if (Date.now() > deadline) throw new Error('the sealer did not seal within 30 s');
        await sleep(50);
      }
    });
    await replayed();
  };
  /** Waits until the standby has replayed everything the primary has written so far. */
  const replayed = async () => {
    const lsn = await cluster.primary((c) =>
      c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn').then((r) => r.rows[0].lsn),
    );
    await cluster.standby(async (c) => {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const { rows } = await c.query<{ done: boolean }>(`SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done`, [
          lsn,
        ]);
        if (rows[0].done) return;
        await sleep(50);
      }
      throw new Error('the standby did not catch up within 30 s');
    });
  };

  it('serves the list, an entry, the filters, the resources view and verify from the standby; writes go to the primary', async () => {
    const writeId = `write-${randomUUID()}`;
    const segment = await createSource('Replicated', writeId);
    await settled();
    const [entry] = await entriesOf(segment.id);
    for (const path of [
      '/audit-logs',
      `/audit-logs/${entry.id}`,
      '/audit-logs/filters',
      '/resources',
      '/audit-logs/verify',
    ]) {
      const requestId = `read-${randomUUID()}`;
      await t.http.get(api(path)).set(ws.admin.auth).set('X-Request-Id', requestId).expect(200);
      const onStandby = statementsIn(cluster.standbyLog());
      expect({ path, onStandby: onStandby.some((q) => q.requestId === requestId) }).toEqual({ path, onStandby: true });
      const onPrimary = statementsIn(cluster.primaryLog());
      const readOnPrimary = onPrimary.some(
        (q) => q.requestId === requestId && /"audit_logs"|"audit_log_sealed"/.test(q.sql),
      );
      expect({ path, readOnPrimary }).toEqual({ path, readOnPrimary: false });
    }
    // The write ran on the primary and never on the standby (which would have refused it).
    expect(
      statementsIn(cluster.primaryLog()).some(
        (q) => q.requestId === writeId && /INSERT INTO [^ ]*"sources"/.test(q.sql),
      ),
    ).toBe(true);
    expect(statementsIn(cluster.standbyLog()).some((q) => q.requestId === writeId)).toBe(false);
    expect(cluster.standbyLog()).not.toMatch(/statement: (INSERT|UPDATE|DELETE)|execute [^:]*: (INSERT|UPDATE|DELETE)/);
  });

  describe('while the standby lags (replay paused)', () => {
    let fresh: Entry;

    beforeAll(async () => {
      await replayed();
      await cluster.standby((c) => c.query('SELECT pg_wal_replay_pause()'));
      const segment = await createSource('Written during the lag');
      [fresh] = await entriesOf(segment.id);
    });
    afterAll(() => cluster.standby((c) => c.query('SELECT pg_wal_replay_resume()')));

    it('the list and the export are the standby’s: the new entry is not in them yet', async () => {
      const list = await t.http.get(api('/audit-logs')).set(ws.admin.auth).expect(200);
      expect((list.body as { items: Entry[] }).items.map((e) => e.id)).not.toContain(fresh.id);
      const exported = await t.http.get(api('/audit-logs/export')).query({ format: 'ndjson' }).set(ws.admin.auth);
      expect(exported.status).toBe(200);
      const ids = exported.text
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as Entry).id);
      expect(ids.length).toBeGreaterThan(0);
      expect(ids).not.toContain(fresh.id);
    });

    it('an entry looked up by id that the standby does not have yet is found on the primary', async () => {
      const res = await t.http
        .get(api(`/audit-logs/${fresh.id}`))
        .set(ws.admin.auth)
        .expect(200);
      expect(res.body).toMatchObject({ id: fresh.id, resourceId: fresh.resourceId });
      // an id that exists nowhere is still a 404
      await t.http
        .get(api(`/audit-logs/${randomUUID()}`))
        .set(ws.admin.auth)
        .expect(404);
    });

    it('verify waits for the standby, then reads the chain on the primary: it counts the new entry', async () => {
      const expected = await cluster.primary((c) =>
        c
          .query<{ n: string }>(`SELECT count(*) AS n FROM audit_logs WHERE workspace_id = $1`, [ws.workspaceId])
          .then((r) => Number(r.rows[0].n)),
      );
      const res = await t.http.get(api('/audit-logs/verify')).set(ws.admin.auth).expect(200);
      expect(res.body).toMatchObject({ intact: true, entries: expected, unsealed: 0 });
    });

    it('a chain export picks its server as verify does: it waits, then reads the primary and has the new entry, sealed', async () => {
      const chained = await t.http
        .get(api('/audit-logs/export'))
        .query({ format: 'ndjson', chain: 'true', resourceId: fresh.resourceId })
        .set(ws.admin.auth);
      expect(chained.status).toBe(200);
      const lines = chained.text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Entry & { chain: { seq: number | null } });
      expect(lines.map((line) => line.id)).toEqual([fresh.id]);
      expect(lines[0].chain.seq).toEqual(expect.any(Number));
      expect(copiesOf(cluster.primaryLog(), fresh.resourceId)).toBe(1);
      expect(copiesOf(cluster.standbyLog(), fresh.resourceId)).toBe(0);
    });
  });

  it('once the standby has caught up, the list shows the entry and verify is read there', async () => {
    const segment = await createSource('After the lag');
    const [entry] = await entriesOf(segment.id);
    await settled();
    const list = await t.http.get(api('/audit-logs')).set(ws.admin.auth).expect(200);
    expect((list.body as { items: Entry[] }).items.map((e) => e.id)).toContain(entry.id);
    const requestId = `verify-${randomUUID()}`;
    await t.http.get(api('/audit-logs/verify')).set(ws.admin.auth).set('X-Request-Id', requestId).expect(200);
    const chainRead = (log: string) =>
      statementsIn(log).some((q) => q.requestId === requestId && /FROM "audit_log_sealed"/.test(q.sql));
    expect(chainRead(cluster.standbyLog())).toBe(true);
    expect(chainRead(cluster.primaryLog())).toBe(false);
  });

  it('once the standby has caught up, a chain export is read there', async () => {
    const source = await createSource('Exported with its chain');
    await settled();
    const chained = await t.http
      .get(api('/audit-logs/export'))
      .query({ format: 'ndjson', chain: 'true', resourceId: source.id })
      .set(ws.admin.auth);
    expect(chained.status).toBe(200);
    expect(chained.text.trim().split('\n')).toHaveLength(1);
    expect(copiesOf(cluster.standbyLog(), source.id)).toBe(1);
    expect(copiesOf(cluster.primaryLog(), source.id)).toBe(0);
  });

  it('a cursor from a page the standby served pages on when the primary serves the next (standby down)', async () => {
    for (let i = 0; i < 4; i++) await createSource(`Paged ${i}`);
    await replayed();
    const first = await t.http.get(api('/audit-logs')).query({ limit: 3 }).set(ws.admin.auth).expect(200);
    const page1 = first.body as { items: Entry[]; nextCursor: string };
    await cluster.stopStandby();
    const second = await t.http
      .get(api('/audit-logs'))
      .query({ limit: 3, cursor: page1.nextCursor })
      .set(ws.admin.auth)
      .expect(200);
    const page2 = second.body as { items: Entry[] };
    const all = await cluster.primary((c) =>
      c
        .query<{ id: string }>(
          `SELECT id FROM audit_logs WHERE workspace_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT 6`,
          [ws.workspaceId],
        )
        .then((r) => r.rows.map((row) => row.id)),
    );
    expect([...page1.items, ...page2.items].map((e) => e.id)).toEqual(all);
    // and the export falls back to the primary too
    const exported = await t.http.get(api('/audit-logs/export')).query({ format: 'csv' }).set(ws.admin.auth);
    expect(exported.status).toBe(200);
    expect(exported.text.trim().split('\n').length).toBeGreaterThan(6);
  });
});

import { Client } from 'pg';
import type { ResourcePath } from './factories';
import { logDisagreements } from './log-invariant';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

const SOAK = process.env.SOAK === '1';

/** Many writers on several workspaces at once: every committed operation has exactly its entry. */
describe('Concurrent writers', () => {
  let t: TestApp;
  let db: Client;
  beforeAll(async () => {
    t = await createTestApp({ databasePoolSize: 8 });
    db = new Client({ connectionString: t.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  it('keeps entries equal to committed operations, every chain intact, and the log matching the data', async () => {
    const workspaces: TestWorkspace[] = [];
    for (let i = 0; i < 3; i++) workspaces.push(await createWorkspace(t.app, `W${i}`));
    const before = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs')).rows[0].n);
    const operations = SOAK ? 600 : 120;
    const paths: ResourcePath[] = ['sources', 'models', 'segments', 'destinations'];
    let expectedEntries = 0;
    const statuses: number[] = [];

    const bodyFor = (path: ResourcePath, n: number, parent?: string): Record<string, unknown> => {
      const name = `${path}-${n}-${Math.random().toString(36).slice(2, 8)}`;
      switch (path) {
        case 'sources':
          return { name, type: 'pg', config: { host: 'h', password: 'p' } };
        case 'models':
          return { name, sourceId: parent, sql: 'SELECT 1' };
        case 'segments':
          return { name, modelId: parent, definition: { rules: [] } };
        case 'destinations':
          return { name, type: 'braze', config: { apiKey: 'k' }, segmentIds: [parent] };
      }
    };
    // Each request either commits (and must have exactly its entry) or answers 503 having changed nothing.
    const worker = async (n: number): Promise<void> => {
      const ws = workspaces[n % workspaces.length];
      const auth = n % 2 === 0 ? ws.admin.auth : ws.member.auth;
      const url = (path: ResourcePath, id = '') => `/api/workspaces/${ws.workspaceId}/${path}${id ? `/${id}` : ''}`;
      const target = paths[n % paths.length];
      let parent: string | undefined;
      for (const path of paths.slice(0, paths.indexOf(target) + 1)) {
        const created = await t.http
          .post(url(path))
          .set(auth)
          .send(bodyFor(path, n, parent));
        statuses.push(created.status);
        if (created.status !== 201) return;
        expectedEntries += 1;
        parent = created.body.id as string;
      }
      const patch = await t.http
        .patch(url(target, parent))
        .set(auth)
        .send({ name: `renamed-${n}-${parent}` });
      statuses.push(patch.status);
      if (patch.status === 200) expectedEntries += 1;
      if (n % 3 === 0) {
        const removed = await t.http.delete(url(target, parent)).set(auth);
        statuses.push(removed.status);
        if (removed.status === 204) expectedEntries += 1;
      }
    };
    // While the writers run, the oldest committed entry the sealer has not sealed yet, in seconds.
    let writing = true;
    let sealLag = 0;
    const watch = (async () => {
      while (writing) {
        const { rows } = await db.query<{ lag: number | null }>(
          `SELECT extract(epoch FROM clock_timestamp() - min(occurred_at))::float8 AS lag FROM audit_log_inbox`,
        );
        sealLag = Math.max(sealLag, rows[0].lag ?? 0);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await Promise.all(Array.from({ length: operations }, (_, n) => worker(n))).finally(() => (writing = false));
    await watch;

    expect(statuses.filter((s) => ![200, 201, 204, 503].includes(s))).toEqual([]);
    const refused = statuses.filter((s) => s === 503).length;
    const after = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs')).rows[0].n);
    expect(after - before).toBe(expectedEntries);
    for (const ws of workspaces) {
      const verified = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`)
        .set(ws.admin.auth)
        .expect(200);
      expect(verified.body).toMatchObject({ intact: true, unsealed: 0 });
    }
    // Every entry the writers made is sealed (the verifications above record entries of their own).
    const sealed = Number(
      (await db.query<{ n: string }>(`SELECT count(*) AS n FROM audit_log_sealed WHERE action <> 'verified'`)).rows[0]
        .n,
    );
    expect(sealed).toBe(after);
    expect(await logDisagreements(db)).toEqual([]);
    console.log(
      `${operations} concurrent writers on 3 workspaces: ${statuses.length} requests, ${refused} refused with 503, ${expectedEntries} entries, all sealed (oldest unsealed entry ${sealLag.toFixed(1)} s at most), chains intact, 0 lost`,
    );
  });
});

import { Client } from 'pg';
import { ResourceFactory, type ResourcePath } from './factories';
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

    const worker = async (n: number): Promise<void> => {
      const ws = workspaces[n % workspaces.length];
      const auth = n % 2 === 0 ? ws.admin.auth : ws.member.auth;
      const api = new ResourceFactory(t.http, ws.workspaceId, auth);
      const path = paths[n % paths.length];
      // Creating a model, segment or destination creates what it depends on first.
      const created = await api.create(path);
      expectedEntries += paths.indexOf(path) + 1;
      const patch = await t.http
        .patch(api.url(path, created.id))
        .set(auth)
        .send({ name: `${created.name} v2` });
      statuses.push(patch.status);
      if (patch.status === 200) expectedEntries += 1;
      if (n % 3 === 0) {
        const removed = await t.http.delete(api.url(path, created.id)).set(auth);
        statuses.push(removed.status);
        if (removed.status === 204) expectedEntries += 1;
      }
    };
    await Promise.all(Array.from({ length: operations }, (_, n) => worker(n)));

    expect(statuses.every((s) => s === 200 || s === 204)).toBe(true);
    const after = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs')).rows[0].n);
    expect(after - before).toBe(expectedEntries);
    for (const ws of workspaces) {
      const verified = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`)
        .set(ws.admin.auth)
        .expect(200);
      expect(verified.body.intact).toBe(true);
    }
    expect(await logDisagreements(db)).toEqual([]);
    console.log(`${operations} concurrent writers on 3 workspaces: ${expectedEntries} entries, chains intact, 0 lost`);
  });
});

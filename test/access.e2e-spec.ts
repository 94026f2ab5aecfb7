import { runAsSystem } from '../src/request-context/run-with-actor';
import { ResourceFactory } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

/** Every admin route, every kind of caller; and workspace B's ids in every parameter of A's routes. */
describe('Access to the audit log', () => {
  let t: TestApp;
  let a: TestWorkspace;
  let b: TestWorkspace;
  let bEntry: string;
  let bResource: string;
  let revoked: string;

  beforeAll(async () => {
    t = await createTestApp();
    a = await createWorkspace(t.app, 'A');
    b = await createWorkspace(t.app, 'B');
    await new ResourceFactory(t.http, a.workspaceId, a.admin.auth).create('segments');
    bResource = (await new ResourceFactory(t.http, b.workspaceId, b.admin.auth).create('segments')).id;
    bEntry = (await t.http.get(`/api/workspaces/${b.workspaceId}/audit-logs`).set(b.admin.auth).expect(200)).body
      .items[0].id;
    const extra = await createWorkspace(t.app, 'A2');
    revoked = extra.admin.token;
    // Revoking is an audited change: made here as a system job, as an operator's script would.
    await runAsSystem('test', () =>
      t.prisma.apiToken.updateMany({ where: { userId: extra.admin.id }, data: { revokedAt: new Date() } }),
    );
  });
  afterAll(() => t.close());

  const routes = () => ['', '/filters', '/export', '/export?format=ndjson', '/verify', `/${bEntry}`];
  const url = (suffix: string) => `/api/workspaces/${a.workspaceId}/audit-logs${suffix}`;

  it('answers 401 without a token or with a revoked one, 403 to a member, 404 to a non-member, on every route', async () => {
    for (const suffix of routes()) {
      await t.http.get(url(suffix)).expect(401);
      await t.http.get(url(suffix)).set('Authorization', `Bearer ${revoked}`).expect(401);
      await t.http.get(url(suffix)).set(a.member.auth).expect(403);
      await t.http.get(url(suffix)).set(b.admin.auth).expect(404);
    }
  });

  it("guards the resources listing and restore the same way, and restores none of B's entries from A", async () => {
    const resources = `/api/workspaces/${a.workspaceId}/resources`;
    const restore = url(`/${bEntry}/restore`);
    await t.http.get(resources).expect(401);
    await t.http.get(resources).set('Authorization', `Bearer ${revoked}`).expect(401);
    await t.http.get(resources).set(a.member.auth).expect(403);
    await t.http.get(resources).set(b.admin.auth).expect(404);
    await t.http.post(restore).expect(401);
    await t.http.post(restore).set('Authorization', `Bearer ${revoked}`).expect(401);
    await t.http.post(restore).set(a.member.auth).expect(403);
    await t.http.post(restore).set(b.admin.auth).expect(404);
    await t.http.post(restore).set(a.admin.auth).expect(404);
    const listed = await t.http.get(resources).query({ limit: '200' }).set(a.admin.auth).expect(200);
    expect(JSON.stringify(listed.body)).not.toContain(bResource);
    const byB = await t.http.get(resources).query({ createdBy: b.admin.id }).set(a.admin.auth).expect(200);
    expect(byB.body.items).toEqual([]);
  });

  it("returns nothing of B's when B's ids are put in A's parameters", async () => {
    const list = async (query: Record<string, string>) =>
      (await t.http.get(url('')).query(query).set(a.admin.auth).expect(200)).body.items as unknown[];
    expect(await list({ resourceId: bResource })).toEqual([]);
    expect(await list({ userId: b.admin.id })).toEqual([]);
    expect(await list({ userId: `${b.admin.id},${b.member.id}` })).toEqual([]);
    await t.http
      .get(url(`/${bEntry}`))
      .set(a.admin.auth)
      .expect(404);
    const exported = await t.http
      .get(url('/export'))
      .query({ resourceId: bResource, format: 'ndjson' })
      .set(a.admin.auth)
      .expect(200);
    expect(exported.text).toBe('');
    const filters = await t.http.get(url('/filters')).set(a.admin.auth).expect(200);
    expect(JSON.stringify(filters.body)).not.toContain(b.admin.id);
    const all = await t.http.get(url('/export')).query({ format: 'ndjson' }).set(a.admin.auth).expect(200);
    // A's log records A's own exports with the filters A typed (B's id among them): those echo A's
    // input, not anything of B's.
    const lines = all.text
      .trim()
      .split('\n')
      .filter((line) => (JSON.parse(line) as { resourceType: string }).resourceType !== 'audit_log');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(bResource);
    expect(all.text).not.toContain(b.workspaceId);
  });
});

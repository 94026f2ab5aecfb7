import { ResourceFactory } from './factories';
import { createTestDatabase, type TestDatabase } from './database';
import { asUser, createAppRole } from './integrity.e2e-spec';
import { createTestApp, createWorkspace, type TestApp } from './test-app';

/** The whole service running as a login role that has only the rights of audit_log_app. */
describe('The service as the least-privilege role', () => {
  let database: TestDatabase;
  let role: { name: string; drop(): Promise<void> };
  let t: TestApp;
  beforeAll(async () => {
    database = await createTestDatabase();
    role = await createAppRole();
    t = await createTestApp({}, {}, asUser(database.url, role.name));
  });
  afterAll(async () => {
    await t.app.close();
    await database.drop();
    await role.drop();
  });

  it('creates, audits, lists and verifies as that role', async () => {
    const ws = await createWorkspace(t.app);
    const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    const destination = await api.create('destinations');
    await t.http.delete(api.url('destinations', destination.id)).set(ws.admin.auth).expect(204);
    const log = await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs`)
      .query({ resourceId: destination.id })
      .set(ws.admin.auth)
      .expect(200);
    expect(log.body.items.map((e: { action: string }) => e.action)).toEqual(['deleted', 'created']);
    const verified = await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`)
      .set(ws.admin.auth)
      .expect(200);
    expect(verified.body).toMatchObject({ intact: true, entries: 5 }); // source, model, segment, destination; one deletion
  });
});

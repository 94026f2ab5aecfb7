import { AuditRetentionService } from '../src/audit/retention/audit-retention.service';
import { ResourceFactory } from './factories';
import { Client } from 'pg';
import { asUser, createAppRole, createTestDatabase, type TestDatabase } from './database';
import { StreamReceiver } from './stream-receiver';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

/** The whole service running as a login role that has only the rights of audit_log_app. */
describe('The service as the least-privilege role', () => {
  let database: TestDatabase;
  let role: { name: string; drop(): Promise<void> };
  let t: TestApp;
  let ws: TestWorkspace;
  let api: ResourceFactory;
  beforeAll(async () => {
    database = await createTestDatabase();
    role = await createAppRole();
    t = await createTestApp(
      { auditStreamsAllowPrivate: true, auditStreamsPollMs: 100, auditSealIntervalMs: 100 },
      {},
      asUser(database.url, role.name),
    );
    ws = await createWorkspace(t.app);
    api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
  });
  afterAll(async () => {
    await t.app.close();
    await database.drop();
    await role.drop();
  });

  const audit = (suffix = '') => `/api/workspaces/${ws.workspaceId}/audit-logs${suffix}`;

  it('creates, audits, lists and verifies as that role', async () => {
    const destination = await api.create('destinations');
    await t.http.delete(api.url('destinations', destination.id)).set(ws.admin.auth).expect(204);
    const log = await t.http.get(audit()).query({ resourceId: destination.id }).set(ws.admin.auth).expect(200);
    expect(log.body.items.map((e: { action: string }) => e.action)).toEqual(['deleted', 'created']);
    // A name search reads the resources' names and the cut ones (audit_resource_names_cut) as that role.
    for (const userId of [undefined, ws.admin.id]) {
      const named = await t.http
        .get(audit())
        .query({ resourceName: destination.name, ...(userId ? { userId } : {}) })
        .set(ws.admin.auth)
        .expect(200);
      expect(named.body.items.map((e: { action: string }) => e.action)).toEqual(['deleted', 'created']);
    }
    const verified = await t.http.get(audit('/verify')).set(ws.admin.auth).expect(200);
    // The workspace, its two members and their two tokens; source, model, segment, destination; one deletion.
    expect(verified.body).toMatchObject({ intact: true, entries: 10 });
  });

  it('updates, bulk-deletes, exports and sets retention as that role', async () => {
    const source = await api.create('sources');
    await t.http.patch(api.url('sources', source.id)).set(ws.admin.auth).send({ type: 'postgres' }).expect(200);
    const doomed = await api.create('sources');
    await t.http
      .post(`/api/workspaces/${ws.workspaceId}/sources/bulk-delete`)
      .set(ws.admin.auth)
      .send({ ids: [doomed.id] })
      .expect(200, { deleted: 1 });
    const exported = await t.http.get(audit('/export')).query({ format: 'ndjson' }).set(ws.admin.auth).expect(200);
    const actions = exported.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { resourceId: string; action: string })
      .filter((e) => e.resourceId === source.id || e.resourceId === doomed.id)
      .map((e) => `${e.resourceId === source.id ? 'source' : 'doomed'} ${e.action}`);
    expect(actions.sort()).toEqual(['doomed created', 'doomed deleted', 'source created', 'source updated']);
    const retention = `/api/workspaces/${ws.workspaceId}/audit-retention`;
    await t.http.put(retention).set(ws.admin.auth).send({ retentionMonths: 24 }).expect(200);
    expect((await t.http.get(retention).set(ws.admin.auth).expect(200)).body.retentionMonths).toBe(24);
    expect((await t.http.get(audit('/verify')).set(ws.admin.auth).expect(200)).body.intact).toBe(true);
  });

  it('restores a deletion as that role, the resource keeping its creator and creation time', async () => {
    const byMember = new ResourceFactory(t.http, ws.workspaceId, ws.member.auth);
    const model = await byMember.create('models');
    const [creation] = (await t.http.get(audit()).query({ resourceId: model.id }).set(ws.admin.auth).expect(200)).body
      .items;
    await t.http.delete(api.url('models', model.id)).set(ws.admin.auth).expect(204);
    const [deletion] = (await t.http.get(audit()).query({ resourceId: model.id }).set(ws.admin.auth).expect(200)).body
      .items;
    const restored = await t.http
      .post(audit(`/${deletion.id}/restore`))
      .set(ws.admin.auth)
      .expect(200);
    expect(restored.body).toMatchObject({
      createdBy: { id: ws.member.id },
      createdAt: creation.occurredAt,
      updatedBy: { id: ws.admin.id },
    });
  });

  it('holds no right to change or remove audit entries', async () => {
    const superuser = new Client({ connectionString: database.url });
    await superuser.connect();
    const rights = await superuser
      .query<{ privilege: string; granted: boolean }>(
        `SELECT p AS privilege, has_table_privilege($1, 'audit_logs', p) AS granted
         FROM unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE']) p`,
        [role.name],
      )
      .finally(() => superuser.end());
    expect(rights.rows).toEqual([
      { privilege: 'UPDATE', granted: false },
      { privilege: 'DELETE', granted: false },
      { privilege: 'TRUNCATE', granted: false },
    ]);
  });

  it('creates, delivers, reads and deletes a log stream as that role', async () => {
    const receiver = await StreamReceiver.start();
    try {
      const streams = `/api/workspaces/${ws.workspaceId}/audit-streams`;
      const created = await t.http
        .post(streams)
        .set(ws.admin.auth)
        .send({ url: receiver.url(), secret: 'least-privilege-secret' })
        .expect(201);
      const source = await api.create('sources');
      const deadline = Date.now() + 30_000;
      while (
        !receiver.accepted().length ||
        !receiver.requests.some((r) => r.ids.length && r.lines.some((l) => l.resourceId === source.id))
      ) {
        if (Date.now() > deadline) throw new Error('the stream delivered nothing within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const status = await t.http.get(`${streams}/${created.body.id}`).set(ws.admin.auth).expect(200);
      expect(status.body.lastDeliveredEntryId).not.toBeNull();
      await t.http.delete(`${streams}/${created.body.id}`).set(ws.admin.auth).expect(204);
    } finally {
      await receiver.close();
    }
  });

  it('holds only the stream rights it needs: no rewriting a stream, no moving a delivery to another stream', async () => {
    const superuser = new Client({ connectionString: database.url });
    await superuser.connect();
    const rights = await superuser
      .query<{ right: string; granted: boolean }>(
        `SELECT r AS right, CASE WHEN r LIKE '%.%'
                  THEN has_column_privilege($1, split_part(r, ':', 1), split_part(split_part(r, ':', 2), '.', 1), split_part(r, '.', 2))
                  ELSE has_table_privilege($1, split_part(r, ':', 1), split_part(r, ':', 2)) END AS granted
         FROM unnest(ARRAY['audit_streams:SELECT', 'audit_streams:INSERT', 'audit_streams:DELETE', 'audit_streams:UPDATE',
                           'audit_streams:TRUNCATE', 'audit_stream_deliveries:SELECT', 'audit_stream_deliveries:INSERT',
                           'audit_stream_deliveries:DELETE', 'audit_stream_deliveries:TRUNCATE',
                           'audit_stream_deliveries:last_seq.UPDATE', 'audit_stream_deliveries:stream_id.UPDATE']) r`,
        [role.name],
      )
      .finally(() => superuser.end());
    expect(Object.fromEntries(rights.rows.map((r) => [r.right, r.granted]))).toEqual({
      'audit_streams:SELECT': true,
      'audit_streams:INSERT': true,
      'audit_streams:DELETE': true,
      'audit_streams:UPDATE': false,
      'audit_streams:TRUNCATE': false,
      'audit_stream_deliveries:SELECT': true,
      'audit_stream_deliveries:INSERT': true,
      'audit_stream_deliveries:DELETE': false,
      'audit_stream_deliveries:TRUNCATE': false,
      'audit_stream_deliveries:last_seq.UPDATE': true,
      'audit_stream_deliveries:stream_id.UPDATE': false,
    });
  });

  it('cannot run retention as that role; with DATABASE_MAINTENANCE_URL a maintenance login runs it', async () => {
    await expect(t.app.get(AuditRetentionService).applyRetention()).rejects.toThrow(/permission denied/);
    const maintainer = await createAppRole('audit_log_maintenance');
    const other = await createTestApp(
      { databaseMaintenanceUrl: asUser(database.url, maintainer.name) },
      {},
      asUser(database.url, role.name),
    );
    try {
      expect(await other.app.get(AuditRetentionService).applyRetention()).toMatchObject({ status: 'succeeded' });
    } finally {
      await other.app.close();
      await maintainer.drop();
    }
  });
});

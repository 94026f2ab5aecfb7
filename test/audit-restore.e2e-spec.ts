import { randomUUID } from 'node:crypto';
import { runAsSystem } from '../src/request-context/run-with-actor';
import { ResourceFactory, type ResourcePath } from './factories';
import { listAuditEntries, logDisagreementsViaApi } from './log-invariant';
import { connect } from './redteam-helpers';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

interface Change {
  field: string;
  before?: unknown;
  after?: unknown;
}
interface Entry {
  id: string;
  occurredAt: string;
  action: string;
  actionName: string;
  resourceId: string;
  user: { id: string } | null;
  actor: { kind: string; name: string };
  requestId: string | null;
  changes: Change[];
}

describe('POST /audit-logs/:id/restore', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let other: TestWorkspace;
  let api: ResourceFactory;

  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app, 'Acme');
    other = await createWorkspace(t.app, 'Globex');
    api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
  });
  afterAll(() => t.close());

  const logs = `/api/workspaces/${'WS'}/audit-logs`;
  const restoreUrl = (entryId: string, workspaceId = ws.workspaceId) =>
    `${logs.replace('WS', workspaceId)}/${entryId}/restore`;
  /** A resource's entries, newest first. */
  const history = async (resourceId: string): Promise<Entry[]> => {
    const res = await t.http
      .get(logs.replace('WS', ws.workspaceId))
      .query({ resourceId, limit: '200' })
      .set(ws.admin.auth)
      .expect(200);
    return res.body.items as Entry[];
  };
  const latest = async (resourceId: string, action: string) =>
    (await history(resourceId)).find((e) => e.action === action)!;
  const patch = (path: ResourcePath, id: string, body: object, auth = ws.admin.auth) =>
    t.http.patch(api.url(path, id)).set(auth).send(body).expect(200);
  const restore = (entryId: string, expected = 200) =>
    t.http.post(restoreUrl(entryId)).set(ws.admin.auth).send().expect(expected);
  const byField = (changes: Change[]) => [...changes].sort((a, b) => (a.field < b.field ? -1 : 1));
  const swap = (changes: Change[]) =>
    changes.map(({ field, before, after }) => ({
      field,
      ...(after !== undefined ? { before: after } : {}),
      ...(before !== undefined ? { after: before } : {}),
    }));

  /** Asserts a refused restore changed nothing: same resource, no new entry. */
  const refused = async (entryId: string, resourceId: string, message: RegExp, path: ResourcePath) => {
    const before = await history(resourceId);
    const state = await t.http.get(api.url(path, resourceId)).set(ws.admin.auth);
    const res = await restore(entryId, 409);
    expect(res.body.message).toMatch(message);
    expect(await history(resourceId)).toEqual(before);
    const after = await t.http.get(api.url(path, resourceId)).set(ws.admin.auth);
    expect([after.status, after.body]).toEqual([state.status, state.body]);
  };

  it("puts an update's fields back as a new change recorded as restored, by the admin, with what it changed", async () => {
    const segment = await api.create('segments', { name: 'Loyal' });
    await patch(
      'segments',
      segment.id,
      {
        name: 'Loyal (edited)',
        definition: {
          operator: 'or',
          rules: [
            { field: 'ltv', op: 'gt', value: 250 },
            { field: 'country', op: 'eq' },
          ],
        },
      },
      ws.member.auth,
    );
    const update = await latest(segment.id, 'updated');
    const res = await restore(update.id);
    const { secretsNotRestored, ...resource } = res.body;
    expect(secretsNotRestored).toEqual([]);
    const current = await t.http.get(api.url('segments', segment.id)).set(ws.admin.auth).expect(200);
    expect(resource).toEqual(current.body);
    expect(resource).toMatchObject({
      name: 'Loyal',
      definition: segment.definition,
      createdBy: { id: ws.admin.id },
      updatedBy: { id: ws.admin.id },
    });
    const [entry] = await history(segment.id);
    expect(entry).toMatchObject({
      action: 'restored',
      actionName: 'Segment restored',
      user: { id: ws.admin.id },
      actor: { kind: 'user' },
      requestId: res.headers['x-request-id'],
    });
    expect(byField(entry.changes)).toEqual(byField(swap(update.changes)));
    // The action filter finds it.
    const restored = await t.http
      .get(logs.replace('WS', ws.workspaceId))
      .query({ resourceId: segment.id, action: 'restored' })
      .set(ws.admin.auth)
      .expect(200);
    expect(restored.body.items.map((e: Entry) => e.id)).toEqual([entry.id]);
  });

  it('re-creates a deleted resource with its id and its state before the deletion, without its secrets', async () => {
    const destination = await api.create('destinations', {
      name: 'Braze EU',
      config: { instance: 'eu', apiKey: 'braze-secret', headers: [{ name: 'X-Team', value: 'growth' }] },
      enabled: false,
    });
    await t.http.delete(api.url('destinations', destination.id)).set(ws.admin.auth).expect(204);
    const deletion = await latest(destination.id, 'deleted');
    const res = await restore(deletion.id);
    expect(res.body.secretsNotRestored).toEqual(['config.apiKey']);
    const current = await t.http.get(api.url('destinations', destination.id)).set(ws.admin.auth).expect(200);
    expect(res.body).toEqual({ ...current.body, secretsNotRestored: ['config.apiKey'] });
    expect(current.body).toMatchObject({
      id: destination.id,
      name: 'Braze EU',
      type: destination.type,
      enabled: false,
      segmentIds: destination.segmentIds,
      // The log never held the secret: the key is left out.
      config: { instance: 'eu', headers: [{ name: 'X-Team', value: 'growth' }] },
      // The creator of its `created` entry, as before the deletion.
      createdBy: { id: ws.admin.id },
    });
    const [entry] = await history(destination.id);
    expect(entry).toMatchObject({ action: 'restored', actionName: 'Destination restored', user: { id: ws.admin.id } });
    expect(entry.changes.every((c) => c.before === undefined)).toBe(true);
    expect(entry.changes.map((c) => c.field)).toEqual(
      expect.arrayContaining(['name', 'enabled', 'config.instance', 'config.headers[0].value']),
    );
    expect(entry.changes.map((c) => c.field)).not.toContain('config.apiKey');
  });

  it('a re-created resource keeps its creator and creation time; the restorer is its last editor', async () => {
    const own = await createWorkspace(t.app, 'Initech');
    const byMember = new ResourceFactory(t.http, own.workspaceId, own.member.auth);
    const segment = await byMember.create('segments', { name: 'Churn risk' });
    const creation = (await listAuditEntries(t.http, own.workspaceId, own.admin.auth, { resourceId: segment.id }))[0];
    expect(creation).toMatchObject({ action: 'created', user: { id: own.member.id } });
    await t.http.delete(`/api/workspaces/${own.workspaceId}/segments/${segment.id}`).set(own.admin.auth).expect(204);
    const [deletion] = await listAuditEntries(t.http, own.workspaceId, own.admin.auth, { resourceId: segment.id });
    const res = await t.http.post(restoreUrl(deletion.id, own.workspaceId)).set(own.admin.auth).send().expect(200);
    // The log's creation: its user, and its time (the row's own creation time is not in the log).
    expect(res.body).toMatchObject({
      id: segment.id,
      createdBy: { id: own.member.id },
      createdAt: creation.occurredAt,
      updatedBy: { id: own.admin.id },
    });
    expect(Math.abs(Date.parse(res.body.createdAt) - Date.parse(segment.createdAt as string))).toBeLessThan(1000);
    expect(Date.parse(res.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(deletion.occurredAt));
    const [restored] = await listAuditEntries(t.http, own.workspaceId, own.admin.auth, { resourceId: segment.id });
    expect(restored).toMatchObject({ action: 'restored', user: { id: own.admin.id } });
    // The resources view shows the same creator, and counts the restorer as another editor.
    const view = await t.http
      .get(`/api/workspaces/${own.workspaceId}/resources`)
      .query({ resourceType: 'segment', editedByOthers: 'true' })
      .set(own.admin.auth)
      .expect(200);
    expect(view.body.items).toEqual([
      expect.objectContaining({
        id: segment.id,
        createdBy: expect.objectContaining({ id: own.member.id }),
        createdAt: creation.occurredAt,
        updatedBy: expect.objectContaining({ id: own.admin.id }),
      }),
    ]);
    const byCreator = await t.http
      .get(`/api/workspaces/${own.workspaceId}/resources`)
      .query({ createdBy: own.member.id })
      .set(own.admin.auth)
      .expect(200);
    expect(byCreator.body.items.map((i: { id: string }) => i.id)).toContain(segment.id);
    // The rows agree with a replay of the log, creators and last editors included.
    const db = await connect(t.database.url);
    try {
      expect(await logDisagreementsViaApi(t.http, own.workspaceId, own.admin.auth, db)).toEqual([]);
    } finally {
      await db.end();
    }
  });

  it('a resource a system job created is re-created with no creator', async () => {
    const imported = await runAsSystem('import', () =>
      t.prisma.source.create({ data: { workspaceId: ws.workspaceId, name: 'Imported', type: 'pg' } }),
    );
    await t.http.delete(api.url('sources', imported.id)).set(ws.admin.auth).expect(204);
    const res = await restore((await latest(imported.id, 'deleted')).id);
    expect(res.body).toMatchObject({ createdBy: null, updatedBy: { id: ws.admin.id } });
    expect(res.body.createdAt).toBe((await latest(imported.id, 'created')).occurredAt);
  });

  it('keeps the current secret values when an update changed them, and lists them', async () => {
    const source = await api.create('sources', { config: { host: 'a.acme.test', password: 'first' } });
    await patch('sources', source.id, { config: { host: 'b.acme.test', password: 'second', port: 5432 } });
    const update = await latest(source.id, 'updated');
    expect(update.changes).toContainEqual({ field: 'config.password', before: '[REDACTED]', after: '[REDACTED]' });
    const res = await restore(update.id);
    expect(res.body.secretsNotRestored).toEqual(['config.password']);
    expect(res.body.config).toEqual({ host: 'a.acme.test', password: '********' });
    const row = await t.prisma.source.findUniqueOrThrow({ where: { id: source.id } });
    expect(row.config).toEqual({ host: 'a.acme.test', password: 'second' });
    const [entry] = await history(source.id);
    expect(byField(entry.changes)).toEqual(
      byField([
        { field: 'config.host', before: 'b.acme.test', after: 'a.acme.test' },
        { field: 'config.port', before: 5432 },
      ]),
    );
  });

  it('restores an update whose fields no later change touched, even when later changes touched others', async () => {
    const source = await api.create('sources', { config: { host: 'h1', region: 'eu' } });
    await patch('sources', source.id, { type: 'bigquery' });
    const update = await latest(source.id, 'updated');
    await patch('sources', source.id, { config: { host: 'h2', region: 'eu' } });
    const res = await restore(update.id);
    expect(res.body).toMatchObject({ type: source.type, config: { host: 'h2', region: 'eu' } });
  });

  it('undoes a restore like the change it made: a put-back is reverted, a re-creation is refused', async () => {
    const source = await api.create('sources', { config: { host: 'h', port: 5432 } });
    await patch('sources', source.id, { config: { host: 'h' } });
    await restore((await latest(source.id, 'updated')).id); // adds config.port back: no `before` at all
    const addedBack = await latest(source.id, 'restored');
    expect(addedBack.changes).toEqual([{ field: 'config.port', after: 5432 }]);
    expect((await restore(addedBack.id)).body.config).toEqual({ host: 'h' });
    const model = await api.create('models', { name: 'Orders', sql: 'SELECT 1' });
    await patch('models', model.id, { name: 'Orders v2', sql: 'SELECT 2' });
    await restore((await latest(model.id, 'updated')).id);
    const putBack = await latest(model.id, 'restored');
    const res = await restore(putBack.id);
    expect(res.body).toMatchObject({ name: 'Orders v2', sql: 'SELECT 2', secretsNotRestored: [] });
    expect((await history(model.id)).map((e) => e.action)).toEqual(['restored', 'restored', 'updated', 'created']);
    await t.http.delete(api.url('models', model.id)).set(ws.admin.auth).expect(204);
    await restore((await latest(model.id, 'deleted')).id);
    const [recreation] = await history(model.id);
    await refused(recreation.id, model.id, /re-creation .* undone by deleting the resource/, 'models');
  });

  it('409 for a created entry: deleting the resource is what undoes a creation', async () => {
    const model = await api.create('models');
    const creation = await latest(model.id, 'created');
    await refused(creation.id, model.id, /creation .* undone by deleting the resource \(DELETE .*\/models\//, 'models');
  });

  it('409 naming the fields when a later change touched the same fields', async () => {
    const source = await api.create('sources', { name: 'Alpha', config: { host: 'h1', nested: { a: 1 } } });
    await patch('sources', source.id, { name: 'Beta', config: { host: 'h1', nested: { a: 2 } } });
    const update = await latest(source.id, 'updated');
    await patch('sources', source.id, { name: 'Gamma', config: { host: 'h1', nested: 'flat' } });
    await refused(
      update.id,
      source.id,
      /later change touched the same fields: (name, config\.nested\.a|config\.nested\.a, name)/,
      'sources',
    );
  });

  it("409 when an updated entry's resource no longer exists", async () => {
    const source = await api.create('sources');
    await patch('sources', source.id, { type: 'redshift' });
    const update = await latest(source.id, 'updated');
    await t.http.delete(api.url('sources', source.id)).set(ws.admin.auth).expect(204);
    await refused(update.id, source.id, /no longer exists, so its fields cannot be restored/, 'sources');
  });

  it('409 naming the name clash, for a re-created resource and for a rename back', async () => {
    const gone = await api.create('sources', { name: 'Clash' });
    await t.http.delete(api.url('sources', gone.id)).set(ws.admin.auth).expect(204);
    const taker = await api.create('sources', { name: 'Clash' });
    await refused(
      (await latest(gone.id, 'deleted')).id,
      gone.id,
      /name "Clash" is now taken by another source/,
      'sources',
    );
    await patch('sources', taker.id, { name: 'Clash renamed' });
    const rename = await latest(taker.id, 'updated');
    await api.create('sources', { name: 'Clash' });
    await refused(rename.id, taker.id, new RegExp(`name "Clash" is now taken by another source`), 'sources');
  });

  it('409 naming the missing dependency', async () => {
    const segment = await api.create('segments');
    await t.http.delete(api.url('segments', segment.id)).set(ws.admin.auth).expect(204);
    await t.http.delete(api.url('models', segment.modelId)).set(ws.admin.auth).expect(204);
    await refused(
      (await latest(segment.id, 'deleted')).id,
      segment.id,
      new RegExp(`modelId: the model ${segment.modelId} that this segment used no longer exists`),
      'segments',
    );
  });

  it('409 when a deleted resource was re-created since; restoring a deletion twice is refused', async () => {
    const source = await api.create('sources');
    await t.http.delete(api.url('sources', source.id)).set(ws.admin.auth).expect(204);
    const deletion = await latest(source.id, 'deleted');
    await restore(deletion.id);
    await refused(deletion.id, source.id, /exists: it was re-created since this deletion/, 'sources');
  });

  it('is for admins: 401, 403 for a member, 404 for an unknown entry or another workspace, 400 for a malformed id', async () => {
    const source = await api.create('sources');
    await patch('sources', source.id, { type: 'x' });
    const update = await latest(source.id, 'updated');
    await t.http.post(restoreUrl(update.id)).expect(401);
    const forbidden = await t.http.post(restoreUrl(update.id)).set(ws.member.auth).expect(403);
    expect(forbidden.body.message).toMatch(/admins only/);
    await t.http.post(restoreUrl(update.id)).set(other.admin.auth).expect(404);
    await t.http.post(restoreUrl(update.id, other.workspaceId)).set(other.admin.auth).expect(404);
    await t.http.post(restoreUrl(randomUUID())).set(ws.admin.auth).expect(404);
    const bad = await t.http.post(restoreUrl('not-a-uuid')).set(ws.admin.auth).expect(400);
    expect(bad.body.message).toMatch(/id must be a UUID/);
    expect((await history(source.id)).map((e) => e.action)).toEqual(['updated', 'created']);
  });
});

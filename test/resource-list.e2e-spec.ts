import { randomUUID } from 'node:crypto';
import { runAsSystem } from '../src/request-context/run-with-actor';
import { ResourceFactory, type ResourceJson } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

interface Summary {
  resourceType: string;
  id: string;
  name: string;
  createdAt: string;
  createdBy: { id: string; name: string; email: string } | null;
  updatedAt: string;
  updatedBy: { id: string; name: string; email: string } | null;
}
interface Page {
  items: Summary[];
  nextCursor: string | null;
}

describe('Resources for auditors: GET /resources', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let other: TestWorkspace;
  let byAdmin: ResourceFactory;
  let byMember: ResourceFactory;
  let memberSegment: ResourceJson;
  let adminSource: ResourceJson;
  let systemSource: { id: string; name: string };
  let systemUntouched: { id: string; name: string };

  const url = (workspaceId = ws.workspaceId) => `/api/workspaces/${workspaceId}/resources`;
  const list = async (query: Record<string, string | string[]> = {}, workspace = ws): Promise<Page> => {
    const res = await t.http.get(url(workspace.workspaceId)).query(query).set(workspace.admin.auth);
    if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(res.body)}`);
    return res.body as Page;
  };
  const ids = (page: Page) => page.items.map((i) => i.id).sort();

  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app, 'Acme');
    other = await createWorkspace(t.app, 'Globex');
    byAdmin = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    byMember = new ResourceFactory(t.http, ws.workspaceId, ws.member.auth);
    // The member creates a source, a model and a segment; the admin then edits the segment.
    memberSegment = await byMember.create('segments', { name: 'Member segment' });
    await t.http
      .patch(byAdmin.url('segments', memberSegment.id))
      .set(ws.admin.auth)
      .send({ definition: { operator: 'or', rules: [] } })
      .expect(200);
    adminSource = await byAdmin.create('sources', { name: '100% real_data\\x' });
    await byAdmin.create('destinations', { name: 'Admin destination' });
    // A system job's resources: one a user edited afterwards, one nobody touched since.
    [systemSource, systemUntouched] = await runAsSystem('import', async () => [
      await t.prisma.source.create({ data: { workspaceId: ws.workspaceId, name: 'Imported A', type: 'pg' } }),
      await t.prisma.source.create({ data: { workspaceId: ws.workspaceId, name: 'Imported B', type: 'pg' } }),
    ]);
    await t.http.patch(byAdmin.url('sources', systemSource.id)).set(ws.admin.auth).send({ type: 'mysql' }).expect(200);
    // Deleted resources are not listed.
    const gone = await byAdmin.create('sources', { name: 'Gone' });
    await t.http.delete(byAdmin.url('sources', gone.id)).set(ws.admin.auth).expect(204);
    await new ResourceFactory(t.http, other.workspaceId, other.admin.auth).create('sources', { name: 'Foreign' });
  });
  afterAll(() => t.close());

  it('lists every live resource of the four types, most recently changed first, with creator and last editor', async () => {
    const page = await list({ limit: '200' });
    // Member: source, model, segment; admin: source, destination (+ its source, model, segment); system: 2.
    expect(page.items).toHaveLength(3 + 1 + 4 + 2);
    expect(new Set(page.items.map((i) => i.resourceType))).toEqual(
      new Set(['source', 'model', 'segment', 'destination']),
    );
    expect(page.items.map((i) => i.name)).not.toContain('Gone');
    expect(page.items.map((i) => i.name)).not.toContain('Foreign');
    expect(page.nextCursor).toBeNull();
    const keys = page.items.map((i) => [i.updatedAt, i.id]);
    const sorted = [...keys].sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? 1 : -1) : a[0] < b[0] ? 1 : -1));
    expect(keys).toEqual(sorted);
    const segment = page.items.find((i) => i.id === memberSegment.id)!;
    expect(segment).toEqual({
      resourceType: 'segment',
      id: memberSegment.id,
      name: 'Member segment',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      createdBy: { id: ws.member.id, name: expect.any(String), email: expect.stringMatching(/^member-/) },
      updatedAt: expect.stringMatching(/Z$/),
      updatedBy: { id: ws.admin.id, name: expect.any(String), email: expect.stringMatching(/^admin-/) },
    });
    // The same creator, editor and times as the resource's own route.
    const own = await t.http.get(byAdmin.url('segments', memberSegment.id)).set(ws.admin.auth).expect(200);
    expect({ ...segment, resourceType: undefined }).toEqual({
      resourceType: undefined,
      id: own.body.id,
      name: own.body.name,
      createdAt: own.body.createdAt,
      createdBy: own.body.createdBy,
      updatedAt: own.body.updatedAt,
      updatedBy: own.body.updatedBy,
    });
    expect(page.items.find((i) => i.id === systemUntouched.id)).toMatchObject({ createdBy: null, updatedBy: null });
  });

  it('filters by type (one or several) and by a case-insensitive name substring with % _ \\ literal', async () => {
    expect((await list({ resourceType: 'segment' })).items.map((i) => i.id)).toEqual(
      (await list({ limit: '200' })).items.filter((i) => i.resourceType === 'segment').map((i) => i.id),
    );
    const two = await list({ resourceType: ['model', 'destination'] });
    expect(new Set(two.items.map((i) => i.resourceType))).toEqual(new Set(['model', 'destination']));
    expect((await list({ name: 'MEMBER seg' })).items.map((i) => i.id)).toEqual([memberSegment.id]);
    // Each pattern would also match this name if %, _ or \ were wildcards or escapes.
    const decoy = await byAdmin.create('sources', { name: 'l-d 100 percent ax' });
    expect((await list({ name: '100%' })).items.map((i) => i.id)).toEqual([adminSource.id]);
    expect((await list({ name: 'l_d' })).items.map((i) => i.id)).toEqual([adminSource.id]);
    expect((await list({ name: 'a\\x' })).items.map((i) => i.id)).toEqual([adminSource.id]);
    await t.http.delete(byAdmin.url('sources', decoy.id)).set(ws.admin.auth).expect(204);
    expect((await list({ name: 'imported', resourceType: 'model' })).items).toEqual([]);
  });

  it('filters by id (repeated or comma-separated): what a page resolving references needs, in one request', async () => {
    const all = await list({ limit: '200' });
    const [a, b] = all.items;
    expect(ids(await list({ id: `${a.id},${b.id}` }))).toEqual([a.id, b.id].sort());
    expect(ids(await list({ id: [a.id, b.id] }))).toEqual([a.id, b.id].sort());
    // Another workspace's resource and an unknown id are not listed: the answer is what exists here.
    const foreign = (await list({ limit: '200' }, other)).items[0];
    expect(ids(await list({ id: [a.id, foreign.id, randomUUID()] }))).toEqual([a.id]);
    expect((await list({ id: a.id, resourceType: 'destination' })).items.map((i) => i.resourceType)).toEqual(
      a.resourceType === 'destination' ? ['destination'] : [],
    );
  });

  it('filters by creator and by last editor (repeated or comma-separated)', async () => {
    const created = await list({ createdBy: ws.member.id });
    expect(created.items).toHaveLength(3);
    expect(created.items.every((i) => i.createdBy?.id === ws.member.id)).toBe(true);
    const edited = await list({ updatedBy: ws.member.id });
    expect(edited.items.map((i) => i.resourceType).sort()).toEqual(['model', 'source']); // the admin edited the segment
    const both = await list({ createdBy: `${ws.member.id},${ws.admin.id}`, limit: '200' });
    expect(ids(both)).toEqual(ids(await list({ createdBy: [ws.member.id, ws.admin.id], limit: '200' })));
    expect(both.items).toHaveLength(8); // all but the system job's two
    expect(ids(await list({ createdBy: ws.member.id, updatedBy: ws.admin.id }))).toEqual([memberSegment.id]);
  });

  it('editedByOthers: the last editor is not the creator, a change without a user counting as another editor', async () => {
    const others = await list({ editedByOthers: 'true' });
    // The member's segment edited by the admin, and the system job's source edited by the admin.
    expect(ids(others)).toEqual([memberSegment.id, systemSource.id].sort());
    const own = await list({ editedByOthers: 'false', limit: '200' });
    expect(own.items).toHaveLength(10 - 2);
    expect(own.items.map((i) => i.id)).toContain(systemUntouched.id); // created and left by the system
    // A user's resource last changed by a system job counts as edited by someone else.
    await runAsSystem('fixer', () => t.prisma.source.update({ where: { id: adminSource.id }, data: { type: 'x' } }));
    expect(ids(await list({ editedByOthers: 'true' }))).toEqual(
      [memberSegment.id, systemSource.id, adminSource.id].sort(),
    );
    expect((await list({ editedByOthers: 'true', createdBy: ws.member.id })).items.map((i) => i.id)).toEqual([
      memberSegment.id,
    ]);
  });

  it('pages with signed cursors, each resource once and in order, and refuses tampered or foreign cursors', async () => {
    const all = await list({ limit: '200' });
    const seen: Summary[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await list({ limit: '3', ...(cursor ? { cursor } : {}) });
      seen.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.items);
    const { nextCursor } = await list({ limit: '1' });
    const [payload, signature] = nextCursor!.split('.');
    const forged = Buffer.from(JSON.stringify(['2999-01-01T00:00:00.000Z', randomUUID()])).toString('base64url');
    // One character of the signature changed (to one it is not: an 'x' replaced by 'x' would be no change).
    const altered = `${signature[0] === 'x' ? 'y' : 'x'}${signature.slice(1)}`;
    for (const bad of [`${forged}.${signature}`, `${payload}.${altered}`, 'garbage']) {
      const res = await t.http.get(url()).query({ cursor: bad }).set(ws.admin.auth).expect(400);
      expect(res.body.message).toMatch(/cursor is not valid/);
    }
    await t.http.get(url(other.workspaceId)).query({ cursor: nextCursor! }).set(other.admin.auth).expect(400);
    // An audit-log cursor is not a resources cursor.
    const logs = await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs`)
      .query({ limit: '1' })
      .set(ws.admin.auth)
      .expect(200);
    await t.http.get(url()).query({ cursor: logs.body.nextCursor }).set(ws.admin.auth).expect(400);
  });

  it.each([
    [{ resourceType: 'member' }, /resourceType must be one or more of source, model, segment, destination/],
    [{ name: 'x'.repeat(201) }, /name must be 1 to 200 characters/],
    [{ createdBy: 'nope' }, /createdBy must be user ids/],
    [{ updatedBy: `${randomUUID()},42` }, /updatedBy must be user ids/],
    [{ editedByOthers: 'yes' }, /editedByOthers must be true or false/],
    [{ id: 'nope' }, /id must be resource ids/],
    [{ id: Array.from({ length: 201 }, () => randomUUID()).join(',') }, /id accepts at most 200 ids/],
    [{ limit: '0' }, /limit must be a whole number from 1 to 200/],
    [{ limit: '201' }, /limit must be a whole number from 1 to 200/],
    [{ sort: 'name' }, /property sort should not exist/],
  ])('answers 400 for %j, naming the parameter and what it accepts', async (query, message) => {
    const res = await t.http.get(url()).query(query).set(ws.admin.auth).expect(400);
    expect(JSON.stringify(res.body.message)).toMatch(message);
  });

  it('is for admins: 401 without a token, 403 for a member, 404 for another workspace', async () => {
    await t.http.get(url()).expect(401);
    const res = await t.http.get(url()).set(ws.member.auth).expect(403);
    expect(res.body.message).toMatch(/admins only/);
    await t.http.get(url()).set(other.admin.auth).expect(404);
  });
});

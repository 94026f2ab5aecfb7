import { ResourceFactory } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

/**
 * Unknown query and body properties are a 400 on every route, also on the routes that take no query
 * or no body at all; and they are refused before anything is read or changed.
 */
describe('Unknown query and body properties', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let api: ResourceFactory;
  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app);
    api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
  });
  afterAll(() => t.close());

  const w = (suffix: string) => `/api/workspaces/${ws.workspaceId}${suffix}`;
  const unknownProperty = (res: { status: number; body: { message?: unknown } }, path: string) => {
    expect({ path, status: res.status, message: res.body.message }).toEqual({
      path,
      status: 400,
      message: ['property foo should not exist'],
    });
  };

  it('a query property on a route that takes no query is a 400 naming it', async () => {
    const source = await api.create('sources');
    const [entry] = (await t.http.get(w('/audit-logs?limit=1')).set(ws.admin.auth).expect(200)).body.items;
    const paths = [
      w('/sources'),
      w(`/sources/${source.id}`),
      w('/members'),
      w('/audit-logs/filters'),
      w('/audit-logs/verify'),
      w(`/audit-logs/${entry.id}`),
      w('/audit-streams'),
      w('/audit-retention'),
      '/api/me',
      '/api/me/tokens',
      '/api/health',
      '/api/audit-logs/public-keys',
    ];
    for (const path of paths) unknownProperty(await t.http.get(`${path}?foo=1`).set(ws.admin.auth), path);
  });

  it('a body property on a route that takes no body is a 400, and nothing is done', async () => {
    const source = await api.create('sources');
    const deleted = await t.http.delete(api.url('sources', source.id)).set(ws.admin.auth).send({ foo: 1 });
    unknownProperty(deleted, 'DELETE source');
    await t.http.get(api.url('sources', source.id)).set(ws.admin.auth).expect(200);

    const digests = async (): Promise<number> =>
      ((await t.http.get(w('/audit-logs/digests')).set(ws.admin.auth).expect(200)).body.items as unknown[]).length;
    const before = await digests();
    unknownProperty(await t.http.post(w('/audit-logs/digests')).set(ws.admin.auth).send({ foo: 1 }), 'POST digests');
    expect(await digests()).toBe(before);

    await t.http.patch(api.url('sources', source.id)).set(ws.admin.auth).send({ name: 'Renamed' }).expect(200);
    const [rename] = (await t.http.get(w(`/audit-logs?resourceId=${source.id}&action=updated`)).set(ws.admin.auth)).body
      .items;
    unknownProperty(
      await t.http
        .post(w(`/audit-logs/${rename.id}/restore`))
        .set(ws.admin.auth)
        .send({ foo: 1 }),
      'POST restore',
    );
    expect((await t.http.get(api.url('sources', source.id)).set(ws.admin.auth)).body.name).toBe('Renamed');
    // An empty body is no property at all.
    await t.http
      .post(w(`/audit-logs/${rename.id}/restore`))
      .set(ws.admin.auth)
      .send({})
      .expect(200);
  });

  it('the token, membership and role are checked first, as for routes that validate their query', async () => {
    await t.http.get(w('/members?foo=1')).expect(401);
    const stranger = await createWorkspace(t.app, 'Elsewhere');
    await t.http.get(w('/members?foo=1')).set(stranger.admin.auth).expect(404);
    await t.http.get(w('/audit-logs/filters?foo=1')).set(ws.member.auth).expect(403);
  });

  it('the page keeps its own query parameters', async () => {
    await t.http.get(`/?workspace=${ws.workspaceId}`).expect(200);
  });
});

describe('Request bodies that are not JSON', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app);
  });
  afterAll(() => t.close());

  const sources = () => `/api/workspaces/${ws.workspaceId}/sources`;
  const names = async () =>
    ((await t.http.get(sources()).set(ws.admin.auth).expect(200)).body.items as { name: string }[]).map((s) => s.name);

  it.each([
    ['a form', 'application/x-www-form-urlencoded', 'name=Form&type=t&config[a]=1'],
    ['text', 'text/plain', '{"name":"Form","type":"t","config":{}}'],
    ['a vendor JSON type', 'application/vnd.api+json', '{"name":"Form","type":"t","config":{}}'],
  ])('%s is a 415 that asks for JSON, and creates nothing', async (_what, type, body) => {
    const res = await t.http.post(sources()).set(ws.admin.auth).set('Content-Type', type).send(body);
    expect(res.status).toBe(415);
    expect(res.body).toEqual({
      statusCode: 415,
      message: expect.stringContaining('application/json'),
      error: 'Unsupported Media Type',
    });
    expect(res.headers['x-request-id']).toEqual(expect.any(String));
    expect(await names()).not.toContain('Form');
  });

  it('a form is refused on every route that takes a body, members included', async () => {
    const res = await t.http
      .post(`/api/workspaces/${ws.workspaceId}/members`)
      .set(ws.admin.auth)
      .type('form')
      .send('email=form@acme.test&name=Form&role=admin');
    expect(res.status).toBe(415);
    const members = (await t.http.get(`/api/workspaces/${ws.workspaceId}/members`).set(ws.admin.auth)).body.items as {
      email: string;
    }[];
    expect(members.map((m) => m.email)).not.toContain('form@acme.test');
  });

  it('JSON with a charset, and requests without a body, are taken as before', async () => {
    await t.http
      .post(sources())
      .set(ws.admin.auth)
      .set('Content-Type', 'application/json; charset=utf-8')
      .send('{"name":"Charset","type":"t","config":{}}')
      .expect(201);
    await t.http.get(sources()).set(ws.admin.auth).set('Content-Type', 'text/plain').expect(200);
    await t.http
      .post(`/api/workspaces/${ws.workspaceId}/audit-logs/digests`)
      .set(ws.admin.auth)
      .set('Content-Type', 'text/plain')
      .set('Content-Length', '0')
      .expect(201);
  });
});

describe('Ids in a path written in upper case', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app);
  });
  afterAll(() => t.close());

  it('name the same member as in lower case', async () => {
    const path = `/api/workspaces/${ws.workspaceId}/members/${ws.member.id.toUpperCase()}`;
    const res = await t.http.patch(path).set(ws.admin.auth).send({ role: 'admin' });
    expect([res.status, res.body.userId, res.body.role]).toEqual([200, ws.member.id, 'admin']);
  });

  it('name the same workspace as in lower case: its digests and its cursors', async () => {
    const upper = `/api/workspaces/${ws.workspaceId.toUpperCase()}/audit-logs`;
    const digest = (await t.http.post(`${upper}/digests`).set(ws.admin.auth).expect(201)).body as {
      workspaceId: string;
    };
    expect(digest.workspaceId).toBe(ws.workspaceId);
    const verified = await t.http.post(`${upper}/verify`).set(ws.admin.auth).send({ digest });
    expect([verified.status, verified.body.extendsDigest]).toEqual([200, true]);
    const page = (await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs?limit=1`).set(ws.admin.auth)).body;
    await t.http
      .get(`${upper}?limit=1&cursor=${encodeURIComponent(page.nextCursor as string)}`)
      .set(ws.admin.auth)
      .expect(200);
  });
});

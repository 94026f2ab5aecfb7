import { TEMPLATE_ENV, withAdminClient } from './database';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

const UNAVAILABLE = {
  statusCode: 503,
  message: 'The database is unavailable; nothing was changed. Retry shortly.',
  error: 'Service Unavailable',
};

/** The database goes away under a running app: every route answers 503 and the app recovers by itself. */
describe('A lost database', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app);
  });
  afterAll(async () => {
    await withAdminClient((c) => c.query(`ALTER DATABASE "${t.database.name}" ALLOW_CONNECTIONS true`)).catch(
      () => undefined,
    );
    await t.close();
  });

  const api = () => `/api/workspaces/${ws.workspaceId}`;
  const routes = (): [string, string, object?][] => [
    ['get', '/api/me'],
    ['get', `${api()}/sources`],
    ['post', `${api()}/sources`, { name: 'Warehouse', type: 'snowflake', config: { account: 'acme' } }],
    ['get', `${api()}/audit-logs`],
    ['get', `${api()}/audit-logs/filters`],
    ['get', `${api()}/audit-logs/verify`],
    ['get', `${api()}/audit-logs/export?format=ndjson`],
    ['get', `${api()}/audit-retention`],
    ['get', `${api()}/members`],
    ['get', `${api()}/resources`],
    ['get', `${api()}/audit-streams`],
    ['get', `${api()}/audit-logs/digests`],
    ['get', '/api/me/tokens'],
    ['get', '/api/audit-logs/public-keys'],
  ];

  const expectUnavailableEverywhere = async () => {
    for (const [method, url, body] of routes()) {
      const req = method === 'post' ? t.http.post(url).send(body) : t.http.get(url);
      const res = await req.set(ws.admin.auth);
      expect({ url, status: res.status, body: res.body }).toEqual({ url, status: 503, body: UNAVAILABLE });
      expect({ url, retryAfter: res.headers['retry-after'] }).toEqual({ url, retryAfter: '5' });
    }
    const health = await t.http.get('/api/health');
    expect(health.status).toBe(503);
    expect(health.headers['retry-after']).toBe('5');
  };

  it('dropped: 503 with Retry-After on every route; recreated: answers again without a restart', async () => {
    await t.http.get(`${api()}/audit-logs`).set(ws.admin.auth).expect(200);
    await withAdminClient((c) => c.query(`DROP DATABASE "${t.database.name}" WITH (FORCE)`));
    try {
      await expectUnavailableEverywhere();
    } finally {
      const template = process.env[TEMPLATE_ENV]!;
      await withAdminClient((c) => c.query(`CREATE DATABASE "${t.database.name}" TEMPLATE "${template}"`));
    }
    await t.http.get('/api/health').expect(200);
    ws = await createWorkspace(t.app); // the copy of the template has none
    await t.http.get(`${api()}/audit-logs`).set(ws.admin.auth).expect(200);
  });

  it('refusing connections: 503 with Retry-After on every route; allowed again: answers again', async () => {
    await t.http.get(`${api()}/sources`).set(ws.admin.auth).expect(200);
    await withAdminClient(async (c) => {
      await c.query(`ALTER DATABASE "${t.database.name}" ALLOW_CONNECTIONS false`);
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [t.database.name]);
    });
    try {
      await expectUnavailableEverywhere();
    } finally {
      await withAdminClient((c) => c.query(`ALTER DATABASE "${t.database.name}" ALLOW_CONNECTIONS true`));
    }
    await t.http.get(`${api()}/sources`).set(ws.admin.auth).expect(200);
    await t.http.get('/api/health').expect(200);
  });
});

import { DATABASE_CONNECTION, type DatabaseConnection } from '../src/database/database-connection';
import { createTestApp, type TestApp } from './test-app';

describe('GET /api/health', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it('answers 200 with the database up, without a token', async () => {
    const res = await t.http.get('/api/health').expect(200);
    expect(res.body).toEqual({ status: 'ok', database: 'up' });
  });

  it('generates an X-Request-Id when none is sent', async () => {
    const res = await t.http.get('/api/health');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('echoes a valid incoming X-Request-Id and replaces an invalid one', async () => {
    const echoed = await t.http.get('/api/health').set('X-Request-Id', 'req-123.abc');
    expect(echoed.headers['x-request-id']).toBe('req-123.abc');
    const replaced = await t.http.get('/api/health').set('X-Request-Id', 'bad id with spaces');
    expect(replaced.headers['x-request-id']).not.toBe('bad id with spaces');
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('carries X-Request-Id on errors too', async () => {
    const res = await t.http
      .get('/api/workspaces/00000000-0000-4000-8000-000000000000/sources')
      .set('X-Request-Id', 'err-1');
    expect(res.status).toBe(401);
    expect(res.headers['x-request-id']).toBe('err-1');
  });

  it('carries X-Request-Id on a body the JSON parser refuses, which is answered as every other error', async () => {
    const post = (id: string, body: string, type = 'application/json') =>
      t.http
        .post('/api/workspaces/00000000-0000-4000-8000-000000000000/sources')
        .set('X-Request-Id', id)
        .set('Content-Type', type)
        .send(body);
    const malformed = await post('parse-1', '{"name":');
    expect([malformed.status, malformed.headers['x-request-id']]).toEqual([400, 'parse-1']);
    expect(malformed.body).toEqual({ statusCode: 400, message: expect.any(String), error: 'Bad Request' });
    const large = await post('large-1', `{"name":"${'z'.repeat(110_000)}"}`);
    expect([large.status, large.headers['x-request-id']]).toEqual([413, 'large-1']);
    expect(large.body).toEqual({
      statusCode: 413,
      message: expect.stringMatching(/100 kB/),
      error: 'Payload Too Large',
    });
    const charset = await post('charset-1', '{}', 'application/json; charset=latin1');
    expect([charset.status, charset.headers['x-request-id']]).toEqual([415, 'charset-1']);
    expect(charset.body).toEqual({
      statusCode: 415,
      message: expect.stringMatching(/utf-8/i),
      error: 'Unsupported Media Type',
    });
  });

  it('carries X-Request-Id on the page, its assets and the API documentation', async () => {
    for (const path of ['/', '/assets/app.js', '/api/docs-json', '/nowhere']) {
      const res = await t.http.get(path).set('X-Request-Id', 'page-1');
      expect([path, res.headers['x-request-id']]).toEqual([path, 'page-1']);
    }
  });

  it('answers 503 with the database down', async () => {
    await t.app.get<DatabaseConnection>(DATABASE_CONNECTION).close();
    const res = await t.http.get('/api/health').expect(503);
    expect(res.body).toMatchObject({ status: 'error', database: 'down' });
  });
});

describe('GET /api/docs', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it('serves the OpenAPI document with the audit-log routes and their query parameters', async () => {
    const res = await t.http.get('/api/docs-json').expect(200);
    const list = res.body.paths['/api/workspaces/{workspaceId}/audit-logs'].get;
    const names = list.parameters.map((p: { name: string }) => p.name);
    expect(names).toEqual(
      expect.arrayContaining(['userId', 'resourceType', 'resourceName', 'from', 'to', 'limit', 'cursor']),
    );
    await t.http.get('/api/docs').expect(200);
  });
});

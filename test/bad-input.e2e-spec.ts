import { Client } from 'pg';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

/** Input PostgreSQL or the validation pipe cannot take is a 400 that says what is accepted, never a 500. */
describe('Bad input', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let db: Client;
  let sourceId: string;
  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app);
    db = new Client({ connectionString: t.database.url });
    await db.connect();
    const created = await t.http
      .post(`/api/workspaces/${ws.workspaceId}/sources`)
      .set(ws.admin.auth)
      .send({ name: 'Warehouse', type: 'snowflake', config: { account: 'acme' } })
      .expect(201);
    sourceId = created.body.id;
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  const api = (suffix: string) => `/api/workspaces/${ws.workspaceId}${suffix}`;
  const entries = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs')).rows[0].n);
  /** Raw JSON text, so that escapes such as \ud800 reach the server as written. */
  const postRaw = (path: string, json: string) =>
    t.http.post(api(path)).set(ws.admin.auth).set('Content-Type', 'application/json').send(json);
  const patchRaw = (path: string, json: string) =>
    t.http.patch(api(path)).set(ws.admin.auth).set('Content-Type', 'application/json').send(json);

  it.each([
    ['resourceName=%00', /resourceName contains a NUL character/],
    ['resourceName=ab%00cd', /resourceName contains a NUL character/],
    ['resourceType=segment%00', /resourceType contains a NUL character/],
  ])('GET /audit-logs?%s is a 400 naming the parameter', async (query, message) => {
    for (const suffix of ['', '/export']) {
      const res = await t.http.get(api(`/audit-logs${suffix}?${query}`)).set(ws.admin.auth);
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(message);
      expect(res.body.message).toMatch(/text must be valid Unicode without NUL characters/);
    }
  });

  it.each([
    ['a NUL in type', '{"name":"n","type":"t\\u0000","config":{}}', /type contains a NUL character/],
    ['a NUL in a config value', '{"name":"n","type":"t","config":{"host":"a\\u0000b"}}', /config\.host contains a NUL/],
    [
      'a NUL in a config key',
      '{"name":"n","type":"t","config":{"ho\\u0000st":"x"}}',
      /a key in config contains a NUL/i,
    ],
    ['a lone high surrogate', '{"name":"\\ud800","type":"t","config":{}}', /name contains a lone surrogate/],
    ['a lone low surrogate deep down', '{"name":"n","type":"t","config":{"a":["\\udc00"]}}', /config\.a\[0\] contains/],
    ['a lone surrogate in a key', '{"name":"n","type":"t","config":{"\\ud800":1}}', /a key in config contains a lone/i],
  ])('POST /sources with %s is a 400 and writes nothing', async (_what, json, message) => {
    const before = await entries();
    const res = await postRaw('/sources', json);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
    expect(await entries()).toBe(before);
  });

  it('a PATCH with a NUL or a lone surrogate is a 400 too', async () => {
    await patchRaw(`/sources/${sourceId}`, '{"config":{"password":"\\u0000"}}').expect(400);
    await patchRaw(`/sources/${sourceId}`, '{"name":"\\udfff"}').expect(400);
  });

  it('a config nested 5,000 deep is a 400 naming the limit of 32 levels', async () => {
    const deep = `{"name":"n","type":"t","config":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
    const res = await postRaw('/sources', deep);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/nests objects and arrays deeper than 32 levels/);
    const arrays = `{"name":"n","type":"t","config":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}`;
    expect((await postRaw('/sources', arrays)).status).toBe(400);
  });

  it('32 levels are accepted, 33 are not', async () => {
    // The body is level 1 and config level 2: 30 more objects inside config make 32.
    const nested = (levels: number) =>
      `{"name":"n","type":"t","config":${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}}`;
    await postRaw('/sources', nested(31)).expect(201);
    await postRaw('/sources', nested(32)).expect(400);
  });

  it('a body over 100 kB is a 413', async () => {
    const res = await postRaw('/sources', `{"name":"n","type":"t","config":{"x":"${'z'.repeat(110_000)}"}}`);
    expect(res.status).toBe(413);
  });

  it('well-formed text outside the BMP, and other control characters, are still accepted', async () => {
    await postRaw('/sources', '{"name":"😀 \\ud83d\\ude00","type":"t\\u0007","config":{"k":"tab\\tline\\n"}}').expect(
      201,
    );
  });

  describe('keys that Object.prototype has', () => {
    it.each(['toString', 'hasOwnProperty', 'valueOf'])(
      'a PATCH with "%s": "********" is a 400 (no secret is stored there), not a silently dropped key',
      async (key) => {
        const res = await patchRaw(`/sources/${sourceId}`, `{"config":{"account":"acme","${key}":"********"}}`);
        expect(res.status).toBe(400);
        expect(res.body.message).toBe(
          `config.${key} is "********", which keeps a stored secret, but config.${key} is not a secret: send its value.`,
        );
      },
    );

    it('such a key with a plain value is stored like any other', async () => {
      const res = await patchRaw(`/sources/${sourceId}`, '{"config":{"account":"acme","toString":"plain"}}');
      expect(res.status).toBe(200);
      expect(res.body.config).toEqual({ account: 'acme', toString: 'plain' });
    });

    it.each(['__proto__', 'constructor', 'prototype'])(
      'a key named %s, which the validation pipe would drop, is a 400',
      async (key) => {
        const res = await patchRaw(`/sources/${sourceId}`, `{"config":{"account":"acme","${key}":{"x":1}}}`);
        expect(res.status).toBe(400);
        expect(res.body.message).toMatch(new RegExp(`config\\.${key} is not accepted as a key`));
      },
    );
  });
});

import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { ResourceFactory, type ResourceJson } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

/** Requests per route: sized down for CI; `npm run test:soak` runs the full count. */
const RUNS = Number(process.env.FUZZ_RUNS ?? (process.env.SOAK === '1' ? 1000 : 60));
const MARKER = 'globex-secret-marker';

describe('Generated bad input', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let foreign: TestWorkspace;
  let db: Client;
  const foreignIds: string[] = [];
  const ids: Record<string, ResourceJson> = {};
  /** What the requests actually did, counted as they answer (printed at the end, whatever happened). */
  const counts = { tried: 0, fiveHundreds: 0, leaks: 0, rejectedWrites: 0 };

  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app, 'Acme');
    foreign = await createWorkspace(t.app, 'Globex');
    const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    ids.destinations = await api.create('destinations');
    const other = new ResourceFactory(t.http, foreign.workspaceId, foreign.admin.auth);
    const theirs = await other.create('destinations', { name: `${MARKER} destination`, config: { token: MARKER } });
    foreignIds.push(theirs.id, theirs.segmentIds![0]);
    const entries = await t.http
      .get(`/api/workspaces/${foreign.workspaceId}/audit-logs`)
      .set(foreign.admin.auth)
      .expect(200);
    foreignIds.push(...entries.body.items.map((e: { id: string }) => e.id));
    db = new Client({ connectionString: t.database.url });
    await db.connect();
  });
  afterAll(async () => {
    console.log(
      `fuzz: ${counts.tried} generated requests, ${counts.fiveHundreds} answered 5xx, ${counts.leaks} showed another workspace, ${counts.rejectedWrites} rejected ones wrote`,
    );
    await db.end();
    await t.close();
  });

  const nasty = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme', maxLength: 300 }),
    fc.string({
      unit: fc.constantFrom(
        '\u0000',
        '\u0007',
        '\n',
        '\r',
        '\t',
        '\u202e',
        '\ufeff',
        '%',
        '_',
        '\\',
        ',',
        '"',
        "'",
        '\ud800',
        '\udfff',
        'a',
      ),
    }),
    // NUL and lone surrogates, which PostgreSQL cannot store in text or jsonb.
    fc.constantFrom('\u0000', 'ab\u0000cd', 't\u0000', '\ud800', 'x\udc00y', '\ud83d', '\ud83d\ude00'),
    fc.constantFrom(
      'x'.repeat(250),
      'y'.repeat(20_000),
      '',
      ' ',
      'null',
      'undefined',
      '[]',
      '{}',
      '-1',
      '1e309',
      'NaN',
    ),
    fc.constantFrom('2026-13-01T00:00:00Z', '2026-11-25', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999+14:00'),
    fc.uuid().map(String),
    fc.constantFrom(...['3b241101-e2bb-4255-8caf-4136c566a96', 'not-a-uuid', '00000000-0000-0000-0000-000000000000']),
  );
  const anyValue: fc.Arbitrary<unknown> = fc.oneof(
    nasty,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(nasty, { maxLength: 600 }),
    fc.dictionary(nasty, nasty, { maxKeys: 5 }),
    // Drawn when the property runs, after beforeAll has filled foreignIds (not when the file loads).
    fc.nat().map((i) => foreignIds[i % foreignIds.length]),
  );
  const queryKey = fc.oneof(
    fc.constantFrom(
      'userId',
      'resourceType',
      'resourceName',
      'resourceId',
      'action',
      'requestId',
      'from',
      'to',
      'limit',
      'cursor',
      'format',
      'name',
      'createdBy',
      'updatedBy',
      'editedByOthers',
    ),
    fc.string({ maxLength: 12 }),
  );
  const query = fc.dictionary(queryKey, fc.oneof(nasty, fc.array(nasty, { maxLength: 60 })), { maxKeys: 6 });
  const body = fc.oneof(
    fc.dictionary(
      fc.oneof(
        fc.constantFrom(
          'name',
          'type',
          'config',
          'sql',
          'sourceId',
          'modelId',
          'definition',
          'enabled',
          'segmentIds',
          'ids',
        ),
        fc.string({ maxLength: 10 }),
      ),
      anyValue,
      { maxKeys: 6 },
    ),
    fc.array(anyValue, { maxLength: 3 }),
  );

  const entryCount = async () =>
    Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs')).rows[0].n);

  /** One generated request: never a 5xx, nothing of the other workspace, no entry from a rejected write. */
  const check = async (send: () => Promise<{ status: number; text: string }>, writes: boolean, input: unknown = '') => {
    const before = writes ? await entryCount() : 0;
    const res = await send();
    counts.tried++;
    if (res.status >= 500) {
      counts.fiveHundreds++;
      throw new Error(`answered ${res.status}: ${res.text.slice(0, 300)}`);
    }
    // An id the request itself carried may be echoed back ("Source … not found"); any other is a leak.
    const sent = typeof input === 'string' ? input : JSON.stringify(input);
    const leaked = foreignIds.find((id) => res.text.includes(id) && !sent.includes(id));
    if (leaked || res.text.includes(MARKER)) {
      counts.leaks++;
      throw new Error(leaked ? `showed ${leaked} of another workspace` : 'showed another workspace’s data');
    }
    if (writes && res.status >= 400 && (await entryCount()) !== before) {
      counts.rejectedWrites++;
      throw new Error(`a rejected request (${res.status}) wrote entries`);
    }
  };
  /**
   * A path segment for any string: a lone surrogate has no UTF-8 form, so it goes as the bytes a
   * careless client would send for it (%ED%A0%80, invalid UTF-8) instead of throwing here.
   */
  const segment = (s: string) =>
    Array.from(s, (c) => (/[\ud800-\udfff]/.test(c) ? '%ED%A0%80' : encodeURIComponent(c))).join('');
  const base = () => `/api/workspaces/${ws.workspaceId}`;
  const run = <T extends unknown[]>(property: fc.IAsyncPropertyWithHooks<T>) =>
    fc.assert(property, { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 20261125) });

  it.each(['', '/export', '/filters', '/verify'])('GET /audit-logs%s with generated query strings', async (suffix) => {
    await run(
      fc.asyncProperty(query, (q) =>
        check(
          () =>
            t.http
              .get(`${base()}/audit-logs${suffix}`)
              .query(q as Record<string, string>)
              .set(ws.admin.auth),
          false,
        ),
      ),
    );
  });

  it('GET /resources with generated query strings', async () => {
    await run(
      fc.asyncProperty(query, (q) =>
        check(
          () =>
            t.http
              .get(`${base()}/resources`)
              .query(q as Record<string, string>)
              .set(ws.admin.auth),
          false,
        ),
      ),
    );
  });

  it('POST /audit-logs/:id/restore with generated ids', async () => {
    await run(
      fc.asyncProperty(fc.oneof(nasty, fc.constantFrom(...foreignIds)), (id) =>
        check(() => t.http.post(`${base()}/audit-logs/${segment(id)}/restore`).set(ws.admin.auth), true, id),
      ),
    );
  });

  it('GET /audit-logs/:id with generated ids', async () => {
    await run(
      fc.asyncProperty(nasty, (id) =>
        check(() => t.http.get(`${base()}/audit-logs/${segment(id)}`).set(ws.admin.auth), false, id),
      ),
    );
  });

  it.each(['sources', 'models', 'segments', 'destinations'])('POST /%s with generated bodies', async (path) => {
    await run(
      fc.asyncProperty(body, (b) => check(() => t.http.post(`${base()}/${path}`).set(ws.admin.auth).send(b), true, b)),
    );
  });

  it.each(['sources', 'models', 'segments', 'destinations'])(
    'PATCH /%s/:id with generated ids and bodies',
    async (path) => {
      const known = fc.constantFrom(ids.destinations.id, foreignIds[0], randomUUID());
      await run(
        fc.asyncProperty(fc.oneof(known, nasty), body, (id, b) =>
          check(
            () =>
              t.http
                .patch(`${base()}/${path}/${segment(id)}`)
                .set(ws.admin.auth)
                .send(b),
            true,
            [id, b],
          ),
        ),
      );
    },
  );

  it.each(['sources', 'models', 'segments', 'destinations'])(
    'POST /%s/bulk-delete and PATCH /destinations/bulk with generated bodies',
    async (path) => {
      await run(
        fc.asyncProperty(body, (b) =>
          check(() => t.http.post(`${base()}/${path}/bulk-delete`).set(ws.admin.auth).send(b), true, b),
        ),
      );
      await run(
        fc.asyncProperty(body, (b) =>
          check(() => t.http.patch(`${base()}/destinations/bulk`).set(ws.admin.auth).send(b), true, b),
        ),
      );
    },
  );

  /** Raw JSON text nested `depth` deep at a generated field: JSON.stringify itself overflows past ~4,000. */
  const deepBody = fc
    .record({
      depth: fc.integer({ min: 1, max: 6000 }),
      field: fc.constantFrom('config', 'definition', 'name', 'ids', 'segmentIds'),
      brackets: fc.constantFrom<[string, string]>(['{"a":', '}'], ['[', ']'], ['{"x":[', ']}']),
    })
    .map(({ depth, field, brackets: [open, close] }) => `{"${field}":${open.repeat(depth)}1${close.repeat(depth)}}`);

  it.each(['sources', 'models', 'segments', 'destinations'])(
    'POST and PATCH /%s with deeply nested bodies',
    async (path) => {
      await run(
        fc.asyncProperty(deepBody, fc.boolean(), (raw, patch) =>
          check(
            () =>
              (patch ? t.http.patch(`${base()}/${path}/${ids.destinations.id}`) : t.http.post(`${base()}/${path}`))
                .set(ws.admin.auth)
                .set('Content-Type', 'application/json')
                .send(raw),
            true,
            raw,
          ),
        ),
      );
    },
  );

  it('malformed JSON, wrong content types and oversized bodies are 4xx', async () => {
    for (const raw of ['{', '{"name": }', 'null', '"x"', '[1,2', `{"name":"${'z'.repeat(300_000)}"}`]) {
      await check(
        () => t.http.post(`${base()}/sources`).set(ws.admin.auth).set('Content-Type', 'application/json').send(raw),
        true,
      );
    }
    await check(
      () => t.http.post(`${base()}/sources`).set(ws.admin.auth).set('Content-Type', 'text/plain').send('name=x'),
      true,
    );
  });

  it('the summary counts what happened', () => {
    expect(foreignIds.length).toBeGreaterThan(2);
    expect(counts.tried).toBeGreaterThan(0);
    expect(counts).toMatchObject({ fiveHundreds: 0, leaks: 0, rejectedWrites: 0 });
  });
});

import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from './database';
import { contractLeaves, listAuditEntries, logDisagreements, REDACTED } from './log-invariant';
import { SECRET_KEY, URL_PASSWORD } from '../src/audit/capture/audited-resources';
import { replaceTextSecrets } from '../src/resources/secrets';
import { asRole, connect, createLoginRole } from './redteam-helpers';
import { createTestApp, createWorkspaceWithActors, type TestApp, type WorkspaceWithActors } from './test-app';

const MASK = '********';

/**
 * Fourth red-team round: secrets written inside text (a URL's query, a connection string, a header
 * line), in header tuples and in keys, and the sealer's lock. Every test here states the safe
 * behaviour the design claims and fails on the code it was written against.
 */
describe('Red team, round 4', () => {
  let database: TestDatabase;
  let t: TestApp;
  let db: Client;
  let appRole: { name: string; drop(): Promise<void> };

  beforeAll(async () => {
    database = await createTestDatabase();
    t = await createTestApp({ auditSealIntervalMs: 0 }, {}, database.url);
    db = await connect(t.database.url);
    appRole = await createLoginRole('rt4_app', { inRole: 'audit_log_app' });
  });
  afterAll(async () => {
    await db.end();
    await t.app.close();
    await database.drop();
    await appRole.drop();
  });

  const rand = () => randomBytes(5).toString('hex');
  const setup = () => createWorkspaceWithActors(t);
  const history = (s: WorkspaceWithActors, resourceId: string) =>
    listAuditEntries(t.http, s.workspaceId, s.ws.admin.auth, { resourceId });

  describe('A. secrets inside text, in tuples and in keys of a config', () => {
    /** `S` in a config stands for a fresh secret of its own, which must show in no entry and no response. */
    const cases: [string, unknown, string[]][] = [
      ['a query parameter api_key', { url: 'https://hooks.example.com/x?api_key=S&x=1' }, ['?api_key=', '&x=1']],
      ['a query parameter token', { url: 'https://hooks.example.com/x?token=S' }, ['/x?token=']],
      [
        'an Azure SAS signature (sig)',
        { url: 'https://acct.blob.core.windows.net/c/b.csv?sv=2022-11-02&se=2030-01-01&sig=S' },
        ['sv=2022-11-02&se=2030-01-01&sig='],
      ],
      [
        'an S3 presigned URL',
        { url: 'https://b.s3.amazonaws.com/k?X-Amz-Credential=S&X-Amz-Signature=S&X-Amz-Expires=60' },
        ['X-Amz-Expires=60'],
      ],
      ['a password parameter in mixed case', { url: 'https://h.example.com/x?a=1&PassWord=S' }, ['?a=1&PassWord=']],
      ['a jwt parameter', { url: 'wss://h.example.com/socket?jwt=S&v=2' }, ['&v=2']],
      [
        'a connection URL with ?password=',
        { url: 'postgres://db.example.com/app?password=S&sslmode=require' },
        ['postgres://db.example.com/app?password=', '&sslmode=require'],
      ],
      [
        'a JDBC URL with &password=',
        { url: 'jdbc:postgresql://db.example.com:5432/app?user=u&password=S' },
        ['?user=u&password='],
      ],
      [
        'a JDBC SQL Server URL with ;password=',
        { url: 'jdbc:sqlserver://db.example.com:1433;databaseName=app;user=u;password=S;encrypt=true' },
        [';user=u;password=', ';encrypt=true'],
      ],
      [
        'a URL in arrays and objects',
        { targets: [{ urls: ['https://h.example.com/a', 'https://h.example.com/b?access_token=S'] }] },
        ['https://h.example.com/b?access_token='],
      ],
      [
        'a fragment access_token (OAuth implicit flow)',
        { callback: 'https://app.example.com/cb#access_token=S&state=xyz' },
        ['#access_token=', '&state=xyz'],
      ],
      [
        'an ADO.NET connection string',
        { connection: 'Server=db.example.com;Database=app;User Id=u;Password=S;Encrypt=true' },
        ['Server=db.example.com;Database=app;User Id=u;Password=', ';Encrypt=true'],
      ],
      [
        'a libpq keyword connection string',
        { conninfo: 'host=db.example.com port=5432 password=S dbname=app' },
        ['host=db.example.com port=5432 password=', ' dbname=app'],
      ],
      [
        'header tuples',
        {
          headers: [
            ['Authorization', 'Bearer S'],
            ['X-Api-Key', 'S'],
            ['Accept', 'application/json'],
          ],
        },
        ['application/json'],
      ],
      [
        'header lines',
        { extraHeaders: ['Authorization: Bearer S', 'Accept: text/plain'] },
        ['Authorization: ', 'Accept: text/plain'],
      ],
      ['JSON text in a string', { extra: '{"client_secret": "S", "region": "eu"}' }, ['{"client_secret": ']],
      ['a URL with credentials after other text', { command: 'psql postgres://app:S@db.example.com/app' }, ['psql ']],
      [
        'two URLs with credentials in one string',
        { hosts: 'mongodb://a:S@h1.example.com/x, mongodb://b:S@h2.example.com/y' },
        ['@h1.example.com/x, mongodb://b:', '@h2.example.com/y'],
      ],
      ['a scheme-relative URL with credentials', { url: '//app:S@db.example.com/app' }, ['@db.example.com/app']],
      ['a scheme with an underscore', { url: 'my_db://app:S@db.example.com/app' }, ['my_db://app:']],
      [
        'a PEM private key after a certificate',
        {
          cert: '-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nS\n-----END PRIVATE KEY-----\n',
        },
        [
          '-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----',
          '-----END PRIVATE KEY-----',
        ],
      ],
      [
        'a PEM private key cut short',
        { tls: { client: '-----BEGIN EC PRIVATE KEY-----\nS' } },
        ['-----BEGIN EC PRIVATE KEY-----'],
      ],
      [
        'secrets in the keys of an object',
        {
          endpoints: { 'https://u:S@h.example.com/x': { weight: 1 }, 'https://h.example.com/y?token=S': { weight: 2 } },
        },
        [],
      ],
      ['secrets as the keys of a secret object', { apiKeys: { S: 'admin' }, tokens: [{ S: 1 }] }, []],
    ];
    /** The config with each `S` replaced by a fresh secret, and the secrets. */
    const withSecrets = (config: unknown): { config: unknown; secrets: string[] } => {
      const secrets: string[] = [];
      const text = JSON.stringify(config).replace(/(?<=\\n)S\b|\bS\b/g, () => {
        secrets.push(`Zq${rand()}`);
        return secrets[secrets.length - 1];
      });
      return { config: JSON.parse(text) as unknown, secrets };
    };

    it.each(cases)(
      'POST a source whose config holds %s: the entry and the response show the secret — expected: neither does, the rest is kept, and the entry redacts what the response masks',
      async (_case, template, kept) => {
        const s = await setup();
        const { config, secrets } = withSecrets(template);
        const res = await t.http
          .post(s.asAdmin.url('sources'))
          .set(s.ws.admin.auth)
          .send({ name: `text ${rand()}`, type: 'http', config });
        expect(res.status).toBe(201);
        const [entry] = await history(s, (res.body as { id: string }).id);
        const entryText = JSON.stringify(entry.changes);
        const responseText = JSON.stringify(res.body);
        const stored = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM audit_logs WHERE workspace_id = $1 AND changes::text ~ $2`,
          [s.workspaceId, secrets.join('|')],
        );
        const inEntry = Object.fromEntries(
          entry.changes
            .filter((c) => c.field.startsWith('config'))
            .map((c) => [c.field, JSON.stringify(c.after).split(REDACTED).join(MASK)]),
        );
        const inResponse = Object.fromEntries(
          [...contractLeaves('config', (res.body as { config: unknown }).config, false)].map(([path, leaf]) => [
            path,
            JSON.stringify(leaf),
          ]),
        );
        expect({
          entryShows: secrets.filter((secret) => entryText.includes(secret)),
          responseShows: secrets.filter((secret) => responseText.includes(secret)),
          storedEntriesShowing: Number(stored.rows[0].n),
          entryKeeps: kept.filter((part) => !entryText.includes(JSON.stringify(part).slice(1, -1))),
          responseKeeps: kept.filter((part) => !responseText.includes(JSON.stringify(part).slice(1, -1))),
          entryRedactsAsResponseMasks: inEntry,
        }).toEqual({
          entryShows: [],
          responseShows: [],
          storedEntriesShowing: 0,
          entryKeeps: [],
          responseKeeps: [],
          entryRedactsAsResponseMasks: inResponse,
        });
      },
    );

    const tupleConfig = (secret: string, x: number) => ({
      url: `https://hooks.example.com/x?token=${secret}&x=${x}`,
      headers: [['Authorization', `Bearer ${secret}`]],
      dsn_hosts: { [secret]: 'primary' },
    });

    it('PATCH a config whose query token, header tuple and secret keys change, then restore that update: before/after show the old and new secrets — expected: redacted, and the restore lists them as not restored and keeps the current ones', async () => {
      const s = await setup();
      const [first, second] = [`Zq${rand()}`, `Zq${rand()}`];
      const source = await s.asAdmin.create('sources', { config: tupleConfig(first, 1) });
      await t.http
        .patch(s.asAdmin.url('sources', source.id))
        .set(s.ws.admin.auth)
        .send({ config: tupleConfig(second, 2) })
        .expect(200);
      const [update] = await history(s, source.id);
      const text = JSON.stringify(update.changes);
      expect({ first: text.includes(first), second: text.includes(second) }).toEqual({ first: false, second: false });
      expect(update.changes).toContainEqual({
        field: 'config.url',
        before: `https://hooks.example.com/x?token=${REDACTED}&x=1`,
        after: `https://hooks.example.com/x?token=${REDACTED}&x=2`,
      });
      const restored = await t.http
        .post(`/api/workspaces/${s.workspaceId}/audit-logs/${update.id}/restore`)
        .set(s.ws.admin.auth)
        .send()
        .expect(200);
      const { rows } = await db.query<{ config: unknown }>('SELECT config FROM sources WHERE id = $1', [source.id]);
      expect({
        notRestored: [...(restored.body as { secretsNotRestored: string[] }).secretsNotRestored].sort(),
        stored: rows[0].config,
      }).toEqual({
        notRestored: ['config.dsn_hosts', 'config.headers[0][1]', 'config.url'],
        stored: tupleConfig(second, 2),
      });
    });

    it('PATCH back exactly the masked config GET returned (query token, header tuple, header line, ADO.NET string, private key, secret keys, a URL as a key): the stored secrets are kept, no entry — expected: 200, the config unchanged', async () => {
      const s = await setup();
      const secret = `Zq${rand()}`;
      const config = {
        ...tupleConfig(secret, 1),
        lines: [`Authorization: Bearer ${secret}`],
        connection: `Server=db.example.com;Password=${secret};Encrypt=true`,
        url2: `jdbc:postgresql://u:${secret}@db.example.com/app?password=${secret}`,
        endpoints: { [`https://u:${secret}@h.example.com/x`]: { weight: 1 } },
        pem: `-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----\n`,
      };
      const source = await s.asAdmin.create('sources', { config });
      const got = await t.http.get(s.asAdmin.url('sources', source.id)).set(s.ws.admin.auth).expect(200);
      expect(JSON.stringify(got.body)).not.toContain(secret);
      const patched = await t.http
        .patch(s.asAdmin.url('sources', source.id))
        .set(s.ws.admin.auth)
        .send({ config: (got.body as { config: unknown }).config });
      const { rows } = await db.query<{ config: unknown }>('SELECT config FROM sources WHERE id = $1', [source.id]);
      expect({
        status: patched.status,
        stored: rows[0].config,
        entries: (await history(s, source.id)).map((e) => e.action),
      }).toEqual({ status: 200, stored: config, entries: ['created'] });
    });

    it('PATCH a URL whose masked query token has no stored counterpart: the mask would be stored as the token — expected: 400', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources', { config: { url: 'https://hooks.example.com/x?a=1' } });
      const patched = await t.http
        .patch(s.asAdmin.url('sources', source.id))
        .set(s.ws.admin.auth)
        .send({ config: { url: `https://hooks.example.com/x?a=1&token=${MASK}` } });
      expect(patched.status).toBe(400);
    });

    it.each([
      ['a URL password, the host changed', 'https://u:SECRET@db.example.com/x', `https://u:${MASK}@evil.example/x`],
      [
        'a query token, the host changed',
        'https://hooks.example.com/x?token=SECRET',
        `https://evil.example/x?token=${MASK}`,
      ],
      [
        'a query token, another parameter changed',
        'https://h.example.com/x?a=1&token=SECRET',
        `https://h.example.com/x?a=2&token=${MASK}`,
      ],
      ['a connection string, the server changed', 'Server=db;Password=SECRET;', `Server=evil;Password=${MASK};`],
    ])(
      'PATCH %s, the secret sent back masked: the stored secret would go where the new text points — expected: 400, nothing changed',
      async (_case, text, sent) => {
        const s = await setup();
        const secret = `Zq${rand()}`;
        const config = { url: text.replace('SECRET', secret) };
        const source = await s.asAdmin.create('sources', { config });
        const patched = await t.http
          .patch(s.asAdmin.url('sources', source.id))
          .set(s.ws.admin.auth)
          .send({ config: { url: sent } });
        const { rows } = await db.query<{ config: unknown }>('SELECT config FROM sources WHERE id = $1', [source.id]);
        expect({
          status: patched.status,
          message: (patched.body as { message: string }).message,
          stored: rows[0].config,
          entries: (await history(s, source.id)).map((e) => e.action),
        }).toEqual({
          status: 400,
          message: expect.stringContaining('config.url has "********" in place of a stored secret') as unknown,
          stored: config,
          entries: ['created'],
        });
      },
    );

    it('the database (audit_redact_text) and the API (replaceTextSecrets) redact the same parts of 3,000 random texts of separators, names, header lines, URLs, key blocks and spaces', async () => {
      const parts = [
        '?',
        '&',
        ';',
        '#',
        ' ',
        '\t',
        '\n',
        '\r',
        '\r\n',
        '=',
        ':',
        ': ',
        '"',
        '@',
        '/',
        '//',
        'a',
        'Token',
        'sig',
        'x-sig',
        'design',
        'pass',
        'https://',
        'u:p@h',
        'é',
        '😀',
        'Authorization',
        'Cookie: ',
        'X-Api-Key:',
        'sid=S; ',
        'theme=dark',
        'host:5432',
        '[REDACTED]',
        '-----BEGIN RSA PRIVATE KEY-----',
        '-----END',
        '-',
      ];
      const texts = Array.from({ length: 3_000 }, () =>
        Array.from(
          { length: 1 + Math.floor(Math.random() * 12) },
          () => parts[Math.floor(Math.random() * parts.length)],
        ).join(''),
      );
      const { rows } = await db.query<{ shown: string[] }>(
        'SELECT array_agg("audit_redact_text"(t, $2, $3) ORDER BY n) AS shown FROM unnest($1::text[]) WITH ORDINALITY AS x(t, n)',
        [texts, SECRET_KEY.source, URL_PASSWORD.source],
      );
      const api = texts.map((text) => replaceTextSecrets(text, () => REDACTED));
      expect(texts.filter((text, i) => rows[0].shown[i] !== api[i]).slice(0, 5)).toEqual([]);
    });

    it.each([
      ['a path parameter', 'https://logs.example.com/in;jsessionid=ABCDEF0123456789'],
      ['a fragment parameter', 'https://logs.example.com/in#access_token=ABCDEF0123456789'],
    ])(
      'POST a log stream whose url holds a credential in %s (the query is checked, the rest is not): the workspace entry records it in clear — expected: 400',
      async (_case, url) => {
        const s = await setup();
        const res = await t.http
          .post(`/api/workspaces/${s.workspaceId}/audit-streams`)
          .set(s.ws.admin.auth)
          .send({ url, secret: 'a-long-random-secret-you-keep' });
        expect({ status: res.status, message: JSON.stringify(res.body.message) }).toEqual({
          status: 400,
          message: expect.stringMatching(/url must not hold a credential/),
        });
      },
    );

    it('every entry of these configs agrees with the contract replayed on the rows', async () => {
      const s = await setup();
      const { config } = withSecrets(Object.assign({}, ...cases.map(([, template]) => template as object)));
      await s.asAdmin.create('sources', { config });
      expect(await logDisagreements(db, s.workspaceId)).toEqual([]);
    });
  });

  describe("B. the sealer's lock", () => {
    const outcome = (promise: Promise<unknown>) =>
      promise.then(
        () => 'succeeded',
        (error: Error) => `refused: ${error.message}`,
      );

    it("app role: SELECT pg_advisory_lock(7460012), session kept open: another instance's sealer returns -1, verify and the forgetting of names wait for as long as it is held — expected: the entry sealed, verify answers, names forgotten", async () => {
      const s = await setup();
      await s.asAdmin.create('sources');
      const app = await connect(asRole(t.database.url, appRole.name));
      try {
        await app.query('SELECT pg_advisory_lock(7460012)');
        const [{ sealed }] = (await db.query<{ sealed: number }>('SELECT "audit_log_seal"(1000) AS sealed')).rows;
        const inbox = await db.query<{ n: string }>(
          'SELECT count(*) AS n FROM audit_log_inbox WHERE workspace_id = $1',
          [s.workspaceId],
        );
        const verify = await t.http
          .get(`/api/workspaces/${s.workspaceId}/audit-logs/verify`)
          .set(s.ws.admin.auth)
          .timeout(5_000)
          .then(
            (res) => res.status,
            (error: Error) => error.message,
          );
        const forget = await outcome(
          (async () => {
            await db.query('BEGIN');
            try {
              await db.query(`SET LOCAL lock_timeout = '3s'`);
              await db.query('SELECT "audit_resource_names_forget"($1)', [s.workspaceId]);
            } finally {
              await db.query('ROLLBACK');
            }
          })(),
        );
        expect({ sealed: sealed > 0, inbox: Number(inbox.rows[0].n), verify, forget }).toEqual({
          sealed: true,
          inbox: 0,
          verify: 200,
          forget: 'succeeded',
        });
      } finally {
        await app.end();
      }
    });

    it("app role, while a sealer runs: row locks and table locks beyond ACCESS SHARE on the tables the sealer writes, and any lock on the sealer's own lock (a rule on it queues ACCESS EXCLUSIVE before the owner check) — expected: each refused at once", async () => {
      const statements = [
        'SELECT 1 FROM audit_chain_heads FOR KEY SHARE',
        'SELECT 1 FROM audit_chain_heads FOR UPDATE',
        'SELECT 1 FROM audit_log_inbox FOR UPDATE',
        'SELECT 1 FROM audit_log_sealed FOR SHARE',
        'SELECT 1 FROM audit_resource_names FOR KEY SHARE',
        'LOCK TABLE audit_chain_heads IN ROW SHARE MODE',
        'LOCK TABLE audit_log_inbox IN SHARE MODE',
        'LOCK TABLE audit_log_sealed IN EXCLUSIVE MODE',
        'LOCK TABLE audit_resource_names IN SHARE ROW EXCLUSIVE MODE',
        'SELECT 1 FROM audit_private.sealer_lock FOR UPDATE',
        'LOCK TABLE audit_private.sealer_lock IN ACCESS SHARE MODE',
        'CREATE RULE held AS ON INSERT TO audit_private.sealer_lock DO INSTEAD NOTHING',
      ];
      const sealer = await connect(t.database.url);
      const app = await connect(asRole(t.database.url, appRole.name));
      try {
        await sealer.query('BEGIN');
        await sealer.query('SELECT "audit_log_seal"(0, true)');
        await app.query(`SET lock_timeout = '1s'`);
        const results: Record<string, string> = {};
        for (const sql of statements) {
          await app.query('BEGIN');
          results[sql] = await outcome(app.query(sql));
          await app.query('ROLLBACK');
        }
        expect(Object.entries(results).filter(([, result]) => !/^refused: permission denied/.test(result))).toEqual([]);
      } finally {
        await sealer.query('ROLLBACK');
        await sealer.end();
        await app.end();
      }
    });
  });
});

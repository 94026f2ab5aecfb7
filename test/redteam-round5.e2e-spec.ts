import type { Client } from 'pg';
import { PEM_PRIVATE_KEY, SECRET_KEY, URL_PASSWORD } from '../src/audit/capture/audited-resources';
import { MASK, replaceTextSecrets } from '../src/resources/secrets';
import { listAuditEntries, REDACTED } from './log-invariant';
import { connect } from './redteam-helpers';
import { createTestApp, createWorkspaceWithActors, type TestApp } from './test-app';

/**
 * Fifth red-team round: the cost of the text rule on both sides (the API's masking, the capture
 * trigger's audit_redact_text) for texts a client may send within the body limit. Every test here
 * states the safe behaviour the design claims and fails on the code it was written against.
 */
describe('Red team, round 5', () => {
  let t: TestApp;
  let db: Client;

  beforeAll(async () => {
    t = await createTestApp({ auditSealIntervalMs: 0 });
    db = await connect(t.database.url);
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  /** What the capture trigger shows for each text, and the milliseconds it took. */
  const redact = async (texts: string[]): Promise<{ shown: string[]; ms: number }> => {
    const start = performance.now();
    const { rows } = await db.query<{ shown: string[] }>(
      'SELECT array_agg("audit_redact_text"(t, $2, $3) ORDER BY n) AS shown FROM unnest($1::text[]) WITH ORDINALITY AS x(t, n)',
      [texts, SECRET_KEY.source, URL_PASSWORD.source],
    );
    return { shown: rows[0].shown, ms: performance.now() - start };
  };

  it('the database redacts PEM keys whose BEGIN line repeats its words as the API does, with the regex of PEM_PRIVATE_KEY', async () => {
    const texts = [
      `-----BEGIN ${'PRIVATE KEY'.repeat(9_000)}`,
      `-----BEGIN ${'PRIVATE KEY '.repeat(50)}-----\nS\n-----END PRIVATE KEY-----`,
      '-----BEGIN RSA PRIVATE KEY-----\nS\n------END RSA PRIVATE KEY-----',
      '-----BEGIN PUBLIC KEY-----\nS\n-----END PUBLIC KEY----- -----BEGIN KEY PRIVATE-----S',
      '-----BEGIN ENCRYPTED PRIVATE KEY 2-----S',
    ];
    const { rows } = await db.query<{ src: string }>(
      `SELECT pg_get_functiondef('"audit_redact_text"(text, text, text)'::regprocedure) AS src`,
    );
    expect({
      shown: (await redact(texts)).shown,
      sameRegex: rows[0].src.includes(`'${PEM_PRIVATE_KEY.source}'`),
    }).toEqual({ shown: texts.map((text) => replaceTextSecrets(text, () => REDACTED)), sameRegex: true });
  });
  it('the database redacts a text of 80,000 parameters (`a=&`, 240 kB) within a second, as it does one of 10,000 within an eighth of it — the trigger took 1.9 s, quadratic in the parameters', async () => {
    const few = 'a=&'.repeat(10_000);
    const many = `${'a=&'.repeat(40_000)}token=S&${'a=&'.repeat(40_000)}`;
    await redact([few]);
    const fewRun = await redact([few]);
    const manyRun = await redact([many]);
    expect({
      fewWithinAnEighthOfASecond: fewRun.ms < 125,
      manyWithinASecond: manyRun.ms < 1_000,
      shown: manyRun.shown[0] === replaceTextSecrets(many, () => REDACTED),
      secretShown: manyRun.shown[0].includes('S&'),
    }).toEqual({ fewWithinAnEighthOfASecond: true, manyWithinASecond: true, shown: true, secretShown: false });
  });
  it('POST a source whose config holds header lines without a space after the colon (`Authorization:Bearer S`, curl\'s -H "X-Api-Key:S"): the entry and the response show the secrets — expected: neither does, `host:5432` is kept, and the entry redacts what the response masks', async () => {
    const s = await createWorkspaceWithActors(t);
    const secrets = ['Zq1bearer', 'Zq2apikey', 'Zq3curl'];
    const config = {
      extraHeaders: [`Authorization:Bearer ${secrets[0]}`, `X-Api-Key:${secrets[1]}`],
      command: `curl -H "X-Api-Key:${secrets[2]}" https://hooks.example.com/x`,
      host: 'db.example.com:5432',
    };
    const res = await t.http
      .post(s.asAdmin.url('sources'))
      .set(s.ws.admin.auth)
      .send({ name: 'header lines', type: 'http', config });
    const [entry] = await listAuditEntries(t.http, s.workspaceId, s.ws.admin.auth, {
      resourceId: (res.body as { id: string }).id,
    });
    const after = Object.fromEntries(entry.changes.map((c) => [c.field, c.after]));
    const shown = (res.body as { config: typeof config }).config;
    expect({
      status: res.status,
      entryShows: secrets.filter((secret) => JSON.stringify(entry.changes).includes(secret)),
      responseShows: secrets.filter((secret) => JSON.stringify(res.body).includes(secret)),
      host: [after['config.host'], shown.host],
      entryRedactsAsResponseMasks: [
        after['config.extraHeaders[0]'],
        after['config.extraHeaders[1]'],
        after['config.command'],
      ],
    }).toEqual({
      status: 201,
      entryShows: [],
      responseShows: [],
      host: [config.host, config.host],
      entryRedactsAsResponseMasks: [...shown.extraHeaders, shown.command].map((text) =>
        text.split(MASK).join(REDACTED),
      ),
    });
  });
});

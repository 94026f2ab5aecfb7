import { randomBytes, randomUUID } from 'node:crypto';
import type { Client } from 'pg';
import { attachAuditTriggers } from '../src/audit/capture/audit-triggers';
import { pgExecutor } from '../src/database/sql-executor';
import { createTestDatabase, type TestDatabase } from './database';
import { listAuditEntries, logDisagreements } from './log-invariant';
import { asRole, auditComment, connect, createLoginRole } from './redteam-helpers';
import { runAsSystem } from '../src/request-context/run-with-actor';
import { WorkspacesService } from '../src/workspaces/workspaces.service';
import { createTestApp, createWorkspaceWithActors, type TestApp, type WorkspaceWithActors } from './test-app';
import { until } from './until';

/**
 * Third red-team round on the capture, the sealer and the log's integrity. Every test here states
 * the safe behaviour the design claims and fails on the code it was written against.
 */
describe('Red team, round 3', () => {
  let database: TestDatabase;
  let t: TestApp;
  let db: Client;
  let appRole: { name: string; drop(): Promise<void> };

  beforeAll(async () => {
    database = await createTestDatabase();
    t = await createTestApp({ auditSealIntervalMs: 0 }, {}, database.url);
    db = await connect(t.database.url);
    appRole = await createLoginRole('rt3_app', { inRole: 'audit_log_app' });
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
  const outcome = (promise: Promise<unknown>) =>
    promise.then(
      () => 'succeeded',
      (error: Error) => `refused: ${error.message}`,
    );
  /** A session of the application's role, closed after `fn`. */
  const asAppRole = async <T>(fn: (app: Client) => Promise<T>): Promise<T> => {
    const app = await connect(asRole(t.database.url, appRole.name));
    try {
      return await fn(app);
    } finally {
      await app.end();
    }
  };

  describe('A. a TEMP table of the caller shadows the tables the audit functions name', () => {
    it('app role: CREATE TEMP TABLE audit_log_inbox (LIKE public.audit_log_inbox), then UPDATE sources SET config: the capture (owner rights, search_path = public) writes the entry into the TEMP table and the change commits with none — expected: the entry in the log', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      await asAppRole(async (app) => {
        await app.query('CREATE TEMP TABLE audit_log_inbox (LIKE public.audit_log_inbox)');
        await app.query('GRANT ALL ON audit_log_inbox TO PUBLIC');
        await app.query(`UPDATE sources SET config = '{"host":"attacker.example"}' WHERE id = $1`, [source.id]);
      });
      const entries = await history(s, source.id);
      expect({
        disagreements: await logDisagreements(db, s.workspaceId),
        actions: entries.map((e) => e.action).sort(),
      }).toEqual({ disagreements: [], actions: ['created', 'updated'] });
    });

    it('app role: rows inserted into a TEMP audit_log_inbox, then SELECT audit_log_seal(1000): the sealer (owner rights) seals them into the chain as "Alice deleted Warehouse" — expected: no such entry', async () => {
      const s = await setup();
      const forgedId = randomUUID();
      await asAppRole(async (app) => {
        await app.query('CREATE TEMP TABLE audit_log_inbox (LIKE public.audit_log_inbox)');
        await app.query(
          `INSERT INTO audit_log_inbox VALUES ($1, $2, now(), 'deleted', 'source', $3, 'Forged warehouse', 'user', $4,
             $5, $6, NULL, NULL, NULL, '[]')`,
          [randomUUID(), s.workspaceId, forgedId, s.admin.id, s.admin.name, s.admin.email],
        );
        await outcome(app.query('SELECT "audit_log_seal"(1000)'));
      });
      const { rows } = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM audit_logs WHERE workspace_id = $1 AND resource_id = $2',
        [s.workspaceId, forgedId],
      );
      expect(Number(rows[0].n)).toBe(0);
    });

    it("app role: CREATE TEMP TABLE memberships (LIKE public.memberships), then INSERT INTO api_tokens for the member: the token's entry fans out over the (empty) TEMP memberships — expected: the entry in the member's workspace", async () => {
      const s = await setup();
      const tokenId = randomUUID();
      await asAppRole(async (app) => {
        await app.query('CREATE TEMP TABLE memberships (LIKE public.memberships)');
        await app.query(
          `INSERT INTO api_tokens (id, user_id, token_hash, label) VALUES ($1, $2, $3, 'shadow token') ${auditComment({ ...s.admin })}`,
          [tokenId, s.member.id, randomBytes(32).toString('hex')],
        );
      });
      expect((await history(s, tokenId)).map((e) => e.action)).toEqual(['created']);
    });

    it("app role: CREATE TEMP TABLE segments holding workspace B's segment under workspace A's id, then UPDATE destinations SET segment_ids = {B's segment}: the reference check reads the TEMP table — expected: refused", async () => {
      const a = await setup();
      const b = await setup();
      const destination = await a.asAdmin.create('destinations');
      const foreign = await b.asAdmin.create('segments');
      const result = await asAppRole(async (app) => {
        await app.query('CREATE TEMP TABLE segments (id uuid, workspace_id uuid)');
        await app.query('INSERT INTO segments VALUES ($1, $2)', [foreign.id, a.workspaceId]);
        return outcome(
          app.query(`UPDATE destinations SET segment_ids = ARRAY[$1::uuid], name = $2 WHERE id = $3`, [
            foreign.id,
            `cross ${rand()}`,
            destination.id,
          ]),
        );
      });
      expect(result).toMatch(/refused: segment .* does not exist in workspace/);
    });

    it('every function that runs with its owner rights, the capture functions audit_attach creates included, searches pg_temp last', async () => {
      await db.query(`SELECT "audit_attach"('sources', 'source', ARRAY['config'], 'pass', '^x', '{}')`);
      try {
        const { rows } = await db.query<{ fn: string; config: string[] | null }>(
          `SELECT p.oid::regprocedure::text AS fn, p.proconfig AS config FROM pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef ORDER BY 1`,
        );
        expect(rows.filter((r) => !(r.config ?? []).includes('search_path=public, pg_temp'))).toEqual([]);
        expect(rows.map((r) => r.fn)).toContain('audit_capture_sources()');
      } finally {
        await attachAuditTriggers(pgExecutor(db));
      }
    });
  });

  describe('B. the actor in the statement tag', () => {
    /** A user added to the workspace as the CLI (or an admin over HTTP) adds one, with a token of their own. */
    const addUser = async (s: WorkspaceWithActors, name: string, email: string) => {
      const added = await runAsSystem('test', () =>
        t.app.get(WorkspacesService).addUser(s.workspaceId, { name, email }, 'admin'),
      );
      return { ...added, auth: { Authorization: `Bearer ${added.token}` } };
    };
    const exportsOf = async (workspaceId: string) =>
      Number(
        (
          await db.query<{ n: string }>(
            `SELECT count(*) AS n FROM audit_logs WHERE workspace_id = $1 AND action = 'exported'`,
            [workspaceId],
          )
        ).rows[0].n,
      );

    it('a user named 199 × "a" + "😀" (200 characters for POST …/members) creates a source and exports the log: the tag cut the name at 200 UTF-16 units, mid-emoji, and the database refused its JSON — the write answered 500 and the export was sent with no entry — expected: 201, and both recorded under that name', async () => {
      const s = await setup();
      const name = `${'a'.repeat(199)}😀`;
      const viaApi = await t.http
        .post(`/api/workspaces/${s.workspaceId}/members`)
        .set(s.ws.admin.auth)
        .send({ email: `emoji-${rand()}@acme.test`, name, role: 'member' });
      expect(viaApi.status).toBe(201);
      const user = await addUser(s, name, `emoji-${rand()}@acme.test`);
      const created = await t.http
        .post(`/api/workspaces/${s.workspaceId}/sources`)
        .set(user.auth)
        .send({ name: `by emoji ${rand()}`, type: 'pg', config: {} });
      const before = await exportsOf(s.workspaceId);
      const exported = await t.http
        .get(`/api/workspaces/${s.workspaceId}/audit-logs/export?format=ndjson`)
        .set(user.auth);
      expect(exported.status).toBe(200);
      const recorded = await until(
        'the export recorded in the log',
        async () => ((await exportsOf(s.workspaceId)) > before ? true : undefined),
        3_000,
      ).catch(() => false);
      const entries = created.status === 201 ? await history(s, (created.body as { id: string }).id) : [];
      expect({
        created: created.status,
        exportRecorded: recorded,
        recordedAs: entries.map((e) => e.user?.name),
      }).toEqual({ created: 201, exportRecorded: true, recordedAs: [name] });
    });

    it('a user whose email is 255 characters (a valid address; emails are taken up to 320) creates a source: the entry records the first 200 characters of it, an address that is not theirs — expected: the whole email', async () => {
      const s = await setup();
      const email = `${'b'.repeat(60)}.${rand()}@${'d'.repeat(60)}.${'e'.repeat(60)}.${'f'.repeat(60)}.test`;
      const user = await addUser(s, 'Long Email', email);
      const created = await t.http
        .post(`/api/workspaces/${s.workspaceId}/sources`)
        .set(user.auth)
        .send({ name: `by long email ${rand()}`, type: 'pg', config: {} })
        .expect(201);
      const entries = await history(s, (created.body as { id: string }).id);
      expect(entries.map((e) => e.user?.email)).toEqual([email]);
    });
  });

  describe('C. secrets in header lists written another way', () => {
    it('POST a destination whose config.headers are [{Name: "Authorization", Value}, {Key: "X-Api-Key", Value}, {header: "Cookie", value}] (AWS-style capitals, another label key): the entry and the response show each Value in clear — expected: "[REDACTED]" in the entry, "********" in the response', async () => {
      const s = await setup();
      const secrets = [`bearer-${rand()}`, `api-key-${rand()}`, `cookie-${rand()}`];
      const res = await t.http
        .post(`/api/workspaces/${s.workspaceId}/destinations`)
        .set(s.ws.admin.auth)
        .send({
          name: `headers ${rand()}`,
          type: 'webhook',
          config: {
            url: 'https://hooks.example.com/in',
            headers: [
              { Name: 'Authorization', Value: secrets[0] },
              { Key: 'X-Api-Key', Value: secrets[1] },
              { header: 'Cookie', value: secrets[2] },
            ],
          },
          segmentIds: [],
        })
        .expect(201);
      const [entry] = await history(s, (res.body as { id: string }).id);
      const shown = (text: string) => secrets.filter((secret) => text.includes(secret));
      expect({ inEntry: shown(JSON.stringify(entry.changes)), inResponse: shown(JSON.stringify(res.body)) }).toEqual({
        inEntry: [],
        inResponse: [],
      });
      expect(entry.changes.filter((c) => /\.(Value|value)$/.test(c.field)).map((c) => [c.field, c.after])).toEqual([
        ['config.headers[0].Value', '[REDACTED]'],
        ['config.headers[1].Value', '[REDACTED]'],
        ['config.headers[2].value', '[REDACTED]'],
      ]);
    });

    it('PATCH back exactly the masked config GET returned ({Name: "Authorization", Value: "********"}): the stored secret is kept, no entry — expected: 200, the secret unchanged', async () => {
      const s = await setup();
      const secret = `bearer-${rand()}`;
      const created = await t.http
        .post(`/api/workspaces/${s.workspaceId}/destinations`)
        .set(s.ws.admin.auth)
        .send({
          name: `masked ${rand()}`,
          type: 'webhook',
          config: { headers: [{ Name: 'Authorization', Value: secret }] },
          segmentIds: [],
        })
        .expect(201);
      const id = (created.body as { id: string }).id;
      const got = await t.http
        .get(`/api/workspaces/${s.workspaceId}/destinations/${id}`)
        .set(s.ws.admin.auth)
        .expect(200);
      const patched = await t.http
        .patch(`/api/workspaces/${s.workspaceId}/destinations/${id}`)
        .set(s.ws.admin.auth)
        .send({ config: (got.body as { config: unknown }).config });
      const { rows } = await db.query<{ config: unknown }>('SELECT config FROM destinations WHERE id = $1', [id]);
      expect({
        status: patched.status,
        stored: rows[0].config,
        entries: (await history(s, id)).map((e) => e.action),
      }).toEqual({
        status: 200,
        stored: { headers: [{ Name: 'Authorization', Value: secret }] },
        entries: ['created'],
      });
    });
  });
});

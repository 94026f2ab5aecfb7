import { randomBytes, randomUUID } from 'node:crypto';
import type { Client } from 'pg';
import { runAsSystem } from '../src/request-context/run-with-actor';
import { WorkspacesService } from '../src/workspaces/workspaces.service';
import { createTestDatabase, type TestDatabase } from './database';
import { listAuditEntries, logDisagreements, logDisagreementsViaApi } from './log-invariant';
import { asRole, auditComment, connect, createLoginRole, randomText } from './redteam-helpers';
import { createTestApp, createWorkspaceWithActors, type TestApp, type WorkspaceWithActors } from './test-app';

/**
 * Red-team attacks on the database capture (triggers, comment-borne actor, sealer) and on the
 * HTTP paths that reach it. Every test here states the safe behaviour the design claims and
 * fails on the code it was written against.
 */
describe('Red team: capture in the database', () => {
  let database: TestDatabase;
  let t: TestApp;
  let db: Client;
  let appRole: { name: string; drop(): Promise<void> };

  beforeAll(async () => {
    database = await createTestDatabase();
    t = await createTestApp({ auditSealIntervalMs: 0 }, {}, database.url);
    db = await connect(t.database.url);
    appRole = await createLoginRole('rt_app', { inRole: 'audit_log_app' });
  });
  afterAll(async () => {
    await db.end();
    await t.app.close();
    await database.drop();
    await appRole.drop();
  });

  type Setup = WorkspaceWithActors;
  const rand = () => randomBytes(5).toString('hex');
  const setup = () => createWorkspaceWithActors(t);
  const history = (s: Setup, resourceId: string) =>
    listAuditEntries(t.http, s.workspaceId, s.ws.admin.auth, { resourceId });
  const outcome = (promise: Promise<unknown>) =>
    promise.then(
      () => 'succeeded',
      (error: Error) => `refused: ${error.message}`,
    );
  const asAppRole = () => connect(asRole(t.database.url, appRole.name));

  describe('A. the application role reaches SECURITY DEFINER capture code through its own TEMP table', () => {
    it('app role: CREATE TRIGGER on a TEMP table EXECUTE FUNCTION public.audit_capture(…) forges a "created" entry, attributed to the admin, in a workspace it names — expected: permission denied, no entry', async () => {
      const victim = await setup();
      const forgedId = randomUUID();
      const app = await asAppRole();
      let created: string;
      try {
        await app.query('CREATE TEMP TABLE forge (id uuid, workspace_id uuid, name text)');
        created = await outcome(
          app.query(
            `CREATE TRIGGER forge AFTER INSERT ON forge REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
             EXECUTE FUNCTION public.audit_capture('source', '''[{"field":"name","after":"Exfiltrated warehouse"}]''::jsonb')`,
          ),
        );
        if (created === 'succeeded') {
          await app.query(
            `INSERT INTO forge VALUES ($1, $2, 'Exfiltrated warehouse') ${auditComment({ ...victim.admin })}`,
            [forgedId, victim.workspaceId],
          );
        }
      } finally {
        await app.end();
      }
      const forged = await history(victim, forgedId);
      // What happened: the trigger was created, and the admin's log shows an entry they never made,
      // for a source that never existed.
      expect({
        createTrigger: created.startsWith('refused') ? 'refused' : created,
        forgedEntries: forged.map((e) => [e.action, e.user?.id ?? null, e.resourceName]),
      }).toEqual({ createTrigger: 'refused', forgedEntries: [] });
    });

    it("app role: CREATE TRIGGER on a TEMP table EXECUTE FUNCTION public.audit_capture_sources() (a table's own capture function, owner's rights) — expected: permission denied", async () => {
      const app = await asAppRole();
      try {
        await app.query('CREATE TEMP TABLE forge_sources (LIKE public.sources)');
        await expect(
          app.query(
            `CREATE TRIGGER forge AFTER INSERT ON forge_sources REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
             EXECUTE FUNCTION public.audit_capture_sources()`,
          ),
        ).rejects.toThrow(/permission denied/);
      } finally {
        await app.end();
      }
    });

    it('app role: the trigger argument of public.audit_capture is SQL run as its owner — set_config(session_replication_role, replica) sticks to the session and the next UPDATE sources is not logged — expected: refused; the change has its entry', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      const app = await asAppRole();
      let replicaRole = 'origin';
      try {
        await app.query('CREATE TEMP TABLE escalate (id uuid, workspace_id uuid, name text)');
        await outcome(
          app.query(
            `CREATE TRIGGER escalate AFTER INSERT ON escalate REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
             EXECUTE FUNCTION public.audit_capture('source',
               '(SELECT ''[]''::jsonb FROM pg_catalog.set_config(''session_replication_role'', ''replica'', false) x)')`,
          ),
        );
        await outcome(app.query(`INSERT INTO escalate VALUES ($1, $2, 'x')`, [randomUUID(), s.workspaceId]));
        replicaRole = (await app.query<{ r: string }>(`SELECT current_setting('session_replication_role') AS r`))
          .rows[0].r;
        // The app role now changes an audited row with every trigger switched off.
        await app.query(`UPDATE sources SET config = '{"host":"attacker.example","password":"stolen"}' WHERE id = $1`, [
          source.id,
        ]);
      } finally {
        await app.end();
      }
      expect({ replicaRole, disagreements: await logDisagreements(db, s.workspaceId) }).toEqual({
        replicaRole: 'origin',
        disagreements: [],
      });
    });
  });

  describe('B. the per-statement actor cache (audit.statement / audit.statement_actor) is a settable GUC', () => {
    it('app role: DO $$ set_config(audit.statement, statement_timestamp()) + set_config(audit.statement_actor, <member>); INSERT/UPDATE sources $$ — the rows say created/updated by the member, their entries say {kind: database} — expected: createdBy/updatedBy agree with the log', async () => {
      const s = await setup();
      const existing = await s.asAdmin.create('sources', { name: `framed existing ${rand()}` });
      const createdId = randomUUID();
      const app = await asAppRole();
      try {
        // Refusing the statement is a safe answer too: then nothing changed.
        await app
          .query(
            `DO $$ BEGIN
             PERFORM set_config('audit.statement', statement_timestamp()::text, true),
                     set_config('audit.statement_actor', '${s.member.id}', true);
             INSERT INTO sources (id, workspace_id, name, type, config)
               VALUES ('${createdId}', '${s.workspaceId}', 'framed ${rand()}', 'pg', '{"host":"h"}');
             UPDATE sources SET type = 'framed' WHERE id = '${existing.id}';
           END $$`,
          )
          .catch((error: Error) => expect(error.message).toMatch(/does not match the statement's actor/));
      } finally {
        await app.end();
      }
      const rows = await db.query<{ id: string; created_by_id: string | null; updated_by_id: string | null }>(
        'SELECT id, created_by_id, updated_by_id FROM sources WHERE id = ANY($1::uuid[]) ORDER BY id',
        [[createdId, existing.id]],
      );
      // The member never acted: yet both rows name them, while their entries say {database, rt_app_…}.
      expect({
        rowsNamingTheMember: rows.rows.filter((r) => r.updated_by_id === s.member.id).length,
        disagreements: await logDisagreementsViaApi(t.http, s.workspaceId, s.ws.admin.auth, db),
      }).toEqual({ rowsNamingTheMember: 0, disagreements: [] });
    });
  });

  describe("B2. a restore's re-creation keeps the creator of the resource's created entry", () => {
    it("app role: a re-creation tagged as a restore by the admin names the created entry's user and time; a forged audit.statement_restored does not — expected: createdBy/updatedBy agree with the log", async () => {
      const s = await setup();
      const restoredSource = await s.asMember.create('sources', { name: `restored ${rand()}` });
      const framedSource = await s.asMember.create('sources', { name: `framed ${rand()}` });
      for (const source of [restoredSource, framedSource]) {
        await t.http.delete(s.asAdmin.url('sources', source.id)).set(s.ws.admin.auth).expect(204);
      }
      const [creation] = (await history(s, restoredSource.id)).filter((e) => e.action === 'created');
      const insert = (id: string) =>
        `INSERT INTO sources (id, workspace_id, name, type, config) VALUES ('${id}', '${s.workspaceId}', 'again ${rand()}', 'pg', '{}')`;
      // A resource whose created entry the log does not hold is stamped as any insert: by the restorer.
      const unlogged = randomUUID();
      const app = await asAppRole();
      try {
        await app.query(`${insert(restoredSource.id)} ${auditComment({ ...s.admin, action: 'restored' })}`);
        await app.query(`${insert(unlogged)} ${auditComment({ ...s.admin, action: 'restored' })}`);
        // Refusing the statement is a safe answer too: then nothing changed.
        await app
          .query(
            `DO $$ BEGIN
             PERFORM set_config('audit.statement', statement_timestamp()::text, true),
                     set_config('audit.statement_actor', '${s.member.id}', true),
                     set_config('audit.statement_restored', 'on', true);
             ${insert(framedSource.id)};
           END $$`,
          )
          .catch((error: Error) => expect(error.message).toMatch(/does not match the statement's actor/));
      } finally {
        await app.end();
      }
      const rows = await db.query<{ id: string; created_by_id: string | null; created_at: Date }>(
        'SELECT id, created_by_id, created_at FROM sources WHERE id = ANY($1::uuid[])',
        [[restoredSource.id, framedSource.id, unlogged]],
      );
      const restored = rows.rows.find((r) => r.id === restoredSource.id);
      expect({
        restored: [restored?.created_by_id, restored?.created_at.toISOString()],
        unlogged: rows.rows.find((r) => r.id === unlogged)?.created_by_id,
        framed: rows.rows.filter((r) => r.id === framedSource.id && r.created_by_id === s.member.id).length,
        disagreements: await logDisagreementsViaApi(t.http, s.workspaceId, s.ws.admin.auth, db),
      }).toEqual({
        restored: [s.member.id, creation.occurredAt],
        unlogged: s.admin.id,
        framed: 0,
        disagreements: [],
      });
    });
  });

  describe('C. who acted, as the comment says it', () => {
    it('a database role outside audit_log_app (an ETL login with UPDATE on sources) ends its statement with /*audit=<admin>*/ and is recorded as the admin — expected: actor {kind: database, name: <that role>}', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      const etl = await createLoginRole('rt_etl', {
        databaseUrl: t.database.url,
        grants: (name) => [`GRANT USAGE ON SCHEMA public TO "${name}"`, `GRANT SELECT, UPDATE ON sources TO "${name}"`],
      });
      try {
        const client = await connect(asRole(t.database.url, etl.name));
        try {
          await client.query(`UPDATE sources SET type = 'etl-sync' WHERE id = $1 ${auditComment({ ...s.admin })}`, [
            source.id,
          ]);
        } finally {
          await client.end();
        }
      } finally {
        await etl.drop();
      }
      const [newest] = await history(s, source.id);
      expect({ action: newest.action, user: newest.user?.id ?? null, actor: newest.actor }).toEqual({
        action: 'updated',
        user: null,
        actor: { kind: 'database', name: etl.name },
      });
    });

    it('a user whose name is 2,200 characters (no length limit anywhere) PATCHes with a 512-character User-Agent of `"` and a 128-character X-Request-Id: the tag outgrows right(current_query(), 4096) and the change is recorded as {kind: database} with no user — expected: recorded as that user', async () => {
      const s = await setup();
      const longName = `Dr. ${'Maximilian '.repeat(230)}`.slice(0, 2200);
      const joined = await runAsSystem('test', () =>
        t.app
          .get(WorkspacesService)
          .addUser(s.workspaceId, { email: `long-${rand()}@acme.test`, name: longName }, 'member'),
      );
      const source = await s.asAdmin.create('sources');
      const res = await t.http
        .patch(s.asAdmin.url('sources', source.id))
        .set({
          Authorization: `Bearer ${joined.token}`,
          'User-Agent': '"'.repeat(512),
          'X-Request-Id': 'r'.repeat(128),
        })
        .send({ type: 'renamed-by-long-name' });
      expect(res.status).toBe(200);
      const [newest] = await history(s, source.id);
      expect({
        user: newest.user?.id ?? null,
        kind: newest.actor?.kind,
        updatedBy: res.body.updatedBy?.id ?? null,
      }).toEqual({
        user: joined.userId,
        kind: 'user',
        updatedBy: joined.userId,
      });
    });
  });

  describe('D. secrets', () => {
    it.each([
      ['name', { name: 'Authorization', value: 'Bearer sk_live_51Hx' }, { name: 'X-Debug-Echo', value: '********' }],
      ['key', { key: 'api_key', value: 'sk_live_51Hx' }, { key: 'region', value: '********' }],
    ])(
      'a member PATCHes a header item whose %s no longer looks secret, with value "********": the stored secret moves under the harmless label and is answered in clear — expected: 400 or still masked',
      async (_label, stored, patched) => {
        const s = await setup();
        const source = await s.asAdmin.create('sources', { config: { host: 'h', headers: [stored] } });
        const res = await t.http
          .patch(s.asAdmin.url('sources', source.id))
          .set(s.ws.member.auth)
          .send({ config: { host: 'h', headers: [patched] } });
        const got = await t.http.get(s.asAdmin.url('sources', source.id)).set(s.ws.member.auth);
        const entries = JSON.stringify(await history(s, source.id));
        const secret = stored.value;
        expect({
          patchStatus: res.status,
          patchResponseLeaks: JSON.stringify(res.body).includes(secret),
          getLeaks: JSON.stringify(got.body).includes(secret),
          entriesLeak: entries.includes(secret),
        }).toEqual({
          patchStatus: 400,
          patchResponseLeaks: false,
          getLeaks: false,
          entriesLeak: false,
        });
      },
    );

    it.each([
      [
        'an e-mail address as the user',
        'snowflake://jane@acme.com:Hunter2Secret@acme.snowflakecomputing.com/db',
        'Hunter2Secret',
      ],
      ['an "@" inside the password', 'postgres://app:p4ss@w0rdTail@db.acme.test:5432/app', 'w0rdTail'],
      ['a jdbc: prefix', 'jdbc:postgresql://app:JdbcSecret9@db.acme.test:5432/app', 'JdbcSecret9'],
    ])(
      'config.url with credentials and %s: the password is stored in clear in the entry and shown in clear by the API — expected: "[REDACTED]" / "********"',
      async (_case, url, secret) => {
        const s = await setup();
        const created = await t.http
          .post(s.asAdmin.url('sources'))
          .set(s.ws.admin.auth)
          .send({ name: `url ${rand()}`, type: 'pg', config: { url } });
        expect(created.status).toBe(201);
        const entries = await history(s, created.body.id as string);
        const { rows } = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM audit_logs WHERE workspace_id = $1 AND changes::text LIKE '%' || $2 || '%'`,
          [s.workspaceId, secret],
        );
        expect({
          responseLeaks: JSON.stringify(created.body).includes(secret),
          apiEntriesLeak: JSON.stringify(entries).includes(secret),
          storedEntriesLeaking: Number(rows[0].n),
        }).toEqual({ responseLeaks: false, apiEntriesLeak: false, storedEntriesLeaking: 0 });
      },
    );
    it('config.headers [{name: ["Authorization"], value: "…"}]: the entry redacts the value (SQL reads name as text) but the API answers it in clear (JS wants a string name) — expected: one rule, so the response masks it too', async () => {
      const s = await setup();
      const secret = `arrNameSecret${rand()}`;
      const created = await t.http
        .post(s.asAdmin.url('sources'))
        .set(s.ws.admin.auth)
        .send({
          name: `labels ${rand()}`,
          type: 'http',
          config: { headers: [{ name: ['Authorization'], value: secret }] },
        });
      expect(created.status).toBe(201);
      const entries = await history(s, created.body.id as string);
      expect({
        entryValue: entries[0].changes.find((c) => c.field === 'config.headers[0].value')?.after,
        responseLeaks: JSON.stringify(created.body).includes(secret),
      }).toEqual({ entryValue: '[REDACTED]', responseLeaks: false });
    });
  });

  describe('E. no-ops and values that are equal as JSON', () => {
    it('config stored as {"port": 5432.0} by another program; the admin PATCHes back exactly the config GET returned: an "updated" entry "config.port 5432 → 5432" and updatedBy moves — expected: no entry, updatedAt/updatedBy untouched', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources', { config: { host: 'db.acme.test', port: 5432 } });
      await db.query(`UPDATE sources SET config = '{"host": "db.acme.test", "port": 5432.0}' WHERE id = $1`, [
        source.id,
      ]);
      const before = (await db.query('SELECT updated_at, updated_by_id FROM sources WHERE id = $1', [source.id]))
        .rows[0];
      const entriesBefore = (await history(s, source.id)).length;
      const got = await t.http.get(s.asAdmin.url('sources', source.id)).set(s.ws.admin.auth).expect(200);
      const res = await t.http
        .patch(s.asAdmin.url('sources', source.id))
        .set(s.ws.admin.auth)
        .send({ config: got.body.config });
      expect(res.status).toBe(200);
      const after = (await db.query('SELECT updated_at, updated_by_id FROM sources WHERE id = $1', [source.id]))
        .rows[0];
      const entries = await history(s, source.id);
      expect({ newEntries: entries.slice(0, entries.length - entriesBefore).map((e) => e.changes), after }).toEqual({
        newEntries: [],
        after: before,
      });
    });
  });

  describe('F. cost of the JSON walk', () => {
    it('POST a source whose config holds a 10,000-element array (≈20 KB body, a fifth of the body limit): the walk in audit_leaves is quadratic (array appends) — expected: 201 within 3 s', async () => {
      const s = await setup();
      const started = Date.now();
      const res = await t.http
        .post(s.asAdmin.url('sources'))
        .set(s.ws.member.auth)
        .send({ name: `wide ${rand()}`, type: 'pg', config: { allowlist: Array<number>(10_000).fill(0) } });
      const seconds = (Date.now() - started) / 1000;
      expect({ status: res.status, within3s: seconds < 3, seconds: Math.round(seconds) }).toEqual({
        status: 201,
        within3s: true,
        seconds: expect.any(Number),
      });
    }, 120_000);
  });

  describe('H. the sealer can be stopped for every workspace by one entry', () => {
    /** A database of its own: these tests leave an inbox that can never be sealed. */
    const withOwnDatabase = async (fn: (su: Client, url: string, workspaceId: string) => Promise<void>) => {
      const own = await createTestDatabase();
      const su = await connect(own.url);
      try {
        const workspaceId = randomUUID();
        await su.query(`INSERT INTO workspaces (id, name) VALUES ($1, 'poisoned')`, [workspaceId]);
        await fn(su, own.url, workspaceId);
      } finally {
        await su.end();
        await own.drop();
      }
    };
    const sealState = async (su: Client) => {
      const sealed = await su.query<{ n: number }>('SELECT "audit_log_seal"(5000, true) AS n').then(
        (r) => `sealed ${r.rows[0].n}`,
        (error: Error) => `failed: ${error.message}`,
      );
      const { rows } = await su.query<{ n: string }>('SELECT count(*) AS n FROM audit_log_inbox');
      return { sealed: sealed.startsWith('sealed') ? 'ok' : sealed, unsealed: Number(rows[0].n) };
    };

    it('a source named with 2,665 random characters (fits the sources name index) is captured, but audit_resource_names_pkey refuses it at sealing: every later entry of every workspace stays unsealed — expected: sealing continues', async () => {
      await withOwnDatabase(async (su, _url, workspaceId) => {
        await su.query(`INSERT INTO sources (id, workspace_id, name, type) VALUES ($1, $2, $3, 'pg')`, [
          randomUUID(),
          workspaceId,
          randomText(2665),
        ]);
        const other = randomUUID();
        await su.query(`INSERT INTO workspaces (id, name) VALUES ($1, 'bystander')`, [other]);
        await su.query(`INSERT INTO sources (id, workspace_id, name, type) VALUES ($1, $2, 'ordinary', 'pg')`, [
          randomUUID(),
          other,
        ]);
        expect(await sealState(su)).toEqual({ sealed: 'ok', unsealed: 0 });
      });
    });

    it('the app role tags a statement with {"kind":"robot"} (any kind outside user|system|database): the entry enters the inbox unchecked and every seal then fails on audit_log_sealed_actor_kind_check — expected: the write refused or recorded with a valid kind; sealing continues', async () => {
      await withOwnDatabase(async (su, url, workspaceId) => {
        const app = await connect(asRole(url, appRole.name));
        try {
          await outcome(
            app.query(
              `INSERT INTO sources (id, workspace_id, name, type) VALUES ($1, $2, 'robot-made', 'pg') ${auditComment({ kind: 'robot', name: 'x' })}`,
              [randomUUID(), workspaceId],
            ),
          );
        } finally {
          await app.end();
        }
        await su.query(`INSERT INTO sources (id, workspace_id, name, type) VALUES ($1, $2, 'ordinary', 'pg')`, [
          randomUUID(),
          workspaceId,
        ]);
        expect(await sealState(su)).toEqual({ sealed: 'ok', unsealed: 0 });
      });
    });
  });
});

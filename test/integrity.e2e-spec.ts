import { Client } from 'pg';
import { AuditDigestsService } from '../src/audit/digests/audit-digests.service';
import { AuditLogsService, VERIFY_BATCH } from '../src/audit/query/audit-logs.service';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import { runWithActor } from '../src/request-context/run-with-actor';
import { ResourceFactory } from './factories';
import { addSegmentUpdates } from './fixtures';
import { until } from './until';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';
import { asUser, createAppRole } from './database';

/** A login role that has exactly the application's rights (member of audit_log_app). */
describe('Audit log integrity', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let api: ResourceFactory;
  let superuser: Client;

  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app);
    api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    for (let i = 0; i < 5; i++) await api.create('segments');
    await t.app.get(AuditSealerService).seal();
    superuser = new Client({ connectionString: t.database.url });
    await superuser.connect();
  });
  afterAll(async () => {
    await superuser.end();
    await t.close();
  });

  const verify = async (workspace = ws) =>
    (
      await t.http
        .get(`/api/workspaces/${workspace.workspaceId}/audit-logs/verify`)
        .set(workspace.admin.auth)
        .expect(200)
    ).body as { intact: boolean; entries: number; firstBroken?: { id: string | null; seq: number; reason: string } };
  /** Tampering as an attacker with superuser rights would: with triggers switched off for the session. */
  const tamper = async (sql: string, params: unknown[] = []) => {
    await superuser.query('BEGIN');
    await superuser.query(`SET LOCAL session_replication_role = replica`);
    await superuser.query(sql, params);
    await superuser.query('COMMIT');
  };
  const seal = () => t.app.get(AuditSealerService).seal();
  describe('append-only in the database', () => {
    it.each([
      ['UPDATE', `UPDATE audit_log_sealed SET resource_name = 'x'`],
      ['DELETE', `DELETE FROM audit_log_sealed`],
      ['TRUNCATE', `TRUNCATE audit_log_sealed`],
    ])('refuses %s even to a superuser (trigger)', async (op, sql) => {
      await expect(superuser.query(sql)).rejects.toThrow(`audit_logs is append-only: ${op} is not allowed`);
    });

    it('gives the application role no right to write the log, its inbox or its chain', async () => {
      const role = await createAppRole();
      const client = new Client({ connectionString: asUser(t.database.url, role.name) });
      await client.connect();
      try {
        for (const sql of [
          `UPDATE audit_log_sealed SET resource_name = 'x'`,
          `INSERT INTO audit_chain_heads VALUES (gen_random_uuid(), 1, 'x')`,
          `INSERT INTO audit_log_inbox SELECT * FROM audit_log_inbox`,
          `DELETE FROM audit_log_inbox`,
          `INSERT INTO audit_log_sealed SELECT * FROM audit_log_sealed`,
          `INSERT INTO audit_chain_anchors VALUES (gen_random_uuid(), 1, 'x', gen_random_uuid())`,
          `DELETE FROM audit_resource_names`,
          `INSERT INTO audit_retention_runs (id) VALUES (gen_random_uuid())`,
          `UPDATE audit_retention_runs SET entries_removed = 0`,
          `UPDATE audit_retention_removals SET entries = 0`,
          `UPDATE audit_resource_types SET secret_pattern = 'nothing'`,
          `SELECT audit_log_purge(gen_random_uuid(), gen_random_uuid(), 100)`,
          `SELECT audit_log_drop_partition(gen_random_uuid(), 'audit_logs_p2020_01')`,
          `SELECT audit_log_create_partitions(now(), now())`,
          `SELECT audit_log_append('[]')`,
          `SELECT audit_retention_begin('someone-else')`,
          `SELECT audit_retention_finish(gen_random_uuid(), NULL)`,
          `SELECT audit_retention_record(gen_random_uuid(), '[]', NULL)`,
          `SELECT audit_attach('sources', 'source', '{}', 'nothing', 'nothing')`,
          `SELECT audit_resource_names_forget(gen_random_uuid())`,
          'DELETE FROM audit_log_sealed',
          'TRUNCATE audit_log_sealed',
          'DELETE FROM audit_chain_heads',
          `UPDATE audit_chain_heads SET hash = ''`,
        ]) {
          await expect(client.query(sql)).rejects.toThrow(/permission denied/);
        }
        const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs');
        expect(Number(rows[0].n)).toBeGreaterThan(0);
      } finally {
        await client.end();
        await role.drop();
      }
    });
  });

  it("lets the application role run no function with the owner's rights but the sealer", async () => {
    const { rows } = await superuser.query<{ fn: string }>(
      `SELECT p.oid::regprocedure::text AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'public' AND p.prosecdef AND has_function_privilege('audit_log_app', p.oid, 'EXECUTE')
       ORDER BY 1`,
    );
    expect(rows.map((r) => r.fn)).toEqual(['audit_log_seal(integer,boolean)']);
  });

  describe('writers of one workspace do not wait for each other', () => {
    it('lets a transaction that writes two resources and a single update of the second both commit', async () => {
      const [first, second] = [await api.create('sources'), await api.create('sources')];
      const admin = await t.prisma.user.findUniqueOrThrow({ where: { id: ws.admin.id } });
      const asAdmin = <T>(fn: () => Promise<T>) =>
        runWithActor({ kind: 'user', id: admin.id, name: admin.name, email: admin.email }, fn);
      let single: Promise<unknown> | undefined;
      let singleDone = false;
      const pair = asAdmin(() =>
        t.prisma.$transaction(async (tx) => {
          await tx.source.update({ where: { id: first.id }, data: { type: 'pair' } });
          single = asAdmin(() =>
            t.prisma.source.update({ where: { id: second.id }, data: { type: 'single' } }),
          ).finally(() => (singleDone = true));
          // Wait until the single update has committed or is blocked on a lock: with a per-workspace
          // chain lock it would now wait for this transaction, which then waits for its row.
          for (;;) {
            const { rows } = await superuser.query<{ n: string }>(
              `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            );
            if (singleDone || Number(rows[0].n) > 0) break;
            await new Promise((resolve) => setImmediate(resolve));
          }
          await tx.source.update({ where: { id: second.id }, data: { type: 'pair' } });
        }),
      );
      const [pairOutcome] = await Promise.allSettled([pair]);
      const [singleOutcome] = await Promise.allSettled([single]);
      expect([pairOutcome.status, singleOutcome.status]).toEqual(['fulfilled', 'fulfilled']);
      const types = await t.prisma.source.findMany({
        where: { id: { in: [first.id, second.id] } },
        select: { id: true, type: true },
      });
      expect(Object.fromEntries(types.map((r) => [r.id, r.type]))).toEqual({ [first.id]: 'pair', [second.id]: 'pair' });
      expect((await verify()).intact).toBe(true);
    });
  });

  describe.each([
    ['all in one statement', VERIFY_BATCH],
    ['two positions per statement', 2],
  ])('hash chain, read %s', (_, batch) => {
    let cws: TestWorkspace;
    let capi: ResourceFactory;
    const at = async (seq: number, workspace = cws) =>
      (
        await superuser.query<{ id: string }>(`SELECT id FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2`, [
          workspace.workspaceId,
          seq,
        ])
      ).rows[0].id;
    beforeAll(async () => {
      t.app.get(AuditLogsService).verifyBatch = batch;
      cws = await createWorkspace(t.app, `Chain ${batch}`);
      capi = new ResourceFactory(t.http, cws.workspaceId, cws.admin.auth);
      for (let i = 0; i < 5; i++) await capi.create('segments');
      await seal();
    });
    afterAll(() => {
      t.app.get(AuditLogsService).verifyBatch = VERIFY_BATCH;
    });

    it('verifies intact, with every entry of the workspace checked', async () => {
      const result = await verify(cws);
      // Every entry but the verification's own (recorded after it, and perhaps sealed since).
      const { rows } = await superuser.query<{ n: string }>(
        `SELECT count(*) AS n FROM audit_log_sealed WHERE workspace_id = $1 AND NOT (action = 'verified' AND seq > $2)`,
        [cws.workspaceId, result.entries],
      );
      expect(result).toMatchObject({ intact: true, entries: Number(rows[0].n) });
      expect(result.entries).toBeGreaterThanOrEqual(15);
    });

    it('stays one chain under concurrent writers of one workspace', async () => {
      const sources = await Promise.all(Array.from({ length: 3 }, () => capi.create('sources')));
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.http
            .patch(capi.url('sources', sources[i % 3].id))
            .set(cws.admin.auth)
            .send({ type: `t${i}` })
            .expect(200),
        ),
      );
      expect((await verify(cws)).intact).toBe(true);
      const { rows } = await superuser.query<{ seq: string }>(
        'SELECT seq FROM audit_log_sealed WHERE workspace_id = $1 ORDER BY seq',
        [cws.workspaceId],
      );
      expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
      expect((await verify(cws)).intact).toBe(true);
    });

    it('reports the first altered entry', async () => {
      const isolated = await createWorkspace(t.app, 'Altered');
      await new ResourceFactory(t.http, isolated.workspaceId, isolated.admin.auth).create('segments');
      await seal();
      const victim = await at(3, isolated);
      await tamper(`UPDATE audit_log_sealed SET resource_name = 'Nothing to see' WHERE id = $1`, [victim]);
      expect(await verify(isolated)).toMatchObject({
        intact: false,
        firstBroken: { id: victim, seq: 3, reason: 'the entry was altered after it was written' },
      });
    });

    it('reports a copy of an entry at the position it repeats, and a gap across several positions', async () => {
      const isolated = await createWorkspace(t.app, 'Repeated');
      const factory = new ResourceFactory(t.http, isolated.workspaceId, isolated.admin.auth);
      for (let i = 0; i < 3; i++) await factory.create('segments');
      await seal();
      await tamper(
        `INSERT INTO audit_log_sealed SELECT (jsonb_populate_record(a, jsonb_build_object('id', gen_random_uuid()))).*
         FROM audit_log_sealed a WHERE id = $1`,
        [await at(5, isolated)],
      );
      expect(await verify(isolated)).toMatchObject({
        intact: false,
        firstBroken: { seq: 5, reason: 'another entry has the same position in the chain' },
      });
      await tamper(`DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq BETWEEN 4 AND 8`, [
        isolated.workspaceId,
      ]);
      expect(await verify(isolated)).toMatchObject({
        intact: false,
        firstBroken: { id: await at(9, isolated), seq: 9, reason: 'an entry before this one is missing' },
      });
    });

    it.each([
      ['below the first (-5)', '-5', 'the entry is outside the chain (its positions start at 1)'],
      ['at the smallest bigint', '-9223372036854775808', 'the entry is outside the chain (its positions start at 1)'],
      ['at the largest bigint', '9223372036854775807', 'an entry before this one is missing'],
    ])('reports a copied entry given a position %s', async (_label, seq, reason) => {
      const isolated = await createWorkspace(t.app, `Position ${seq}`);
      await new ResourceFactory(t.http, isolated.workspaceId, isolated.admin.auth).create('segments');
      await seal();
      await tamper(
        `INSERT INTO audit_log_sealed SELECT (jsonb_populate_record(a, jsonb_build_object('id', gen_random_uuid(), 'seq', $2::bigint))).*
         FROM audit_log_sealed a WHERE id = $1`,
        [await at(2, isolated), seq],
      );
      const result = await verify(isolated);
      expect(result).toMatchObject({ intact: false, firstBroken: { reason } });
      expect(result.firstBroken!.seq).toBe(Number(seq)); // a JSON number: the nearest double past 2^53
    });

    it('reports an entry that a forger re-hashed, at the next link', async () => {
      const isolated = await createWorkspace(t.app, 'Forged');
      const forged = new ResourceFactory(t.http, isolated.workspaceId, isolated.admin.auth);
      await forged.create('models'); // after the workspace's own entries: the source, then the model
      await seal();
      const [first] = (
        await superuser.query<{ id: string }>(`SELECT id FROM audit_log_sealed WHERE workspace_id = $1 AND seq = 1`, [
          isolated.workspaceId,
        ])
      ).rows;
      await tamper(`UPDATE audit_log_sealed SET resource_name = 'Forged entry' WHERE id = $1`, [first.id]);
      await tamper(`UPDATE audit_log_sealed SET hash = audit_log_digest(prev_hash, audit_log_sealed.*) WHERE id = $1`, [
        first.id,
      ]);
      expect(await verify(isolated)).toMatchObject({
        intact: false,
        firstBroken: { seq: 2, reason: 'the entry does not link to the one before it' },
      });
    });

    it('reports a deleted entry in the middle and one removed from the end', async () => {
      const isolated = await createWorkspace(t.app, 'Deleted');
      const factory = new ResourceFactory(t.http, isolated.workspaceId, isolated.admin.auth);
      await factory.create('segments'); // three entries after the workspace's own
      await seal();
      const { rows } = await superuser.query<{ last: string }>(
        'SELECT max(seq) AS last FROM audit_log_sealed WHERE workspace_id = $1',
        [isolated.workspaceId],
      );
      const last = Number(rows[0].last);
      await tamper(`DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2`, [isolated.workspaceId, last]);
      expect(await verify(isolated)).toMatchObject({
        intact: false,
        firstBroken: { seq: last, reason: 'entries at the end of the chain are missing' },
      });
      await tamper(`DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq = 1`, [isolated.workspaceId]);
      expect(await verify(isolated)).toMatchObject({
        intact: false,
        firstBroken: { seq: 2, reason: 'an entry before this one is missing' },
      });
    });

    it('verifies from a digest, reading from its position on', async () => {
      const isolated = await createWorkspace(t.app, 'Digest');
      const factory = new ResourceFactory(t.http, isolated.workspaceId, isolated.admin.auth);
      await factory.create('segments');
      const digest = await t.app.get(AuditDigestsService).issue(isolated.workspaceId);
      for (let i = 0; i < 2; i++) await factory.create('sources');
      await seal();
      const { rows } = await superuser.query<{ n: string }>(
        `SELECT count(*) AS n FROM audit_log_sealed WHERE workspace_id = $1 AND seq >= $2`,
        [isolated.workspaceId, digest.seq],
      );
      const posted = async () =>
        (
          await t.http
            .post(`/api/workspaces/${isolated.workspaceId}/audit-logs/verify`)
            .set(isolated.admin.auth)
            .send({ digest })
            .expect(200)
        ).body as { intact: boolean; extendsDigest: boolean; entries: number; firstBroken?: { seq: number } };
      expect(await posted()).toMatchObject({ intact: true, extendsDigest: true, entries: Number(rows[0].n) });
      const victim = digest.seq + 2;
      await tamper(`UPDATE audit_log_sealed SET resource_name = 'Nothing to see' WHERE id = $1`, [
        await at(victim, isolated),
      ]);
      expect(await posted()).toMatchObject({ intact: false, firstBroken: { seq: victim } });
    });
  });

  it.each(['GET …/verify', 'POST …/verify with one digest'])(
    'checks a workspace one verification at a time: %s requests that come meanwhile share the next check, which covers what they saw committed',
    async (kind) => {
      const busy = await createWorkspace(t.app, `Busy ${kind}`);
      // A digest before the 3,000 entries, so that the check from it reads them all too.
      const digest = await t.app.get(AuditDigestsService).issue(busy.workspaceId);
      await addSegmentUpdates(superuser, busy.workspaceId, 3000, 10);
      await seal();
      const check = async () =>
        kind.startsWith('GET')
          ? verify(busy)
          : ((
              await t.http
                .post(`/api/workspaces/${busy.workspaceId}/audit-logs/verify`)
                .set(busy.admin.auth)
                .send({ digest })
                .expect(200)
            ).body as Awaited<ReturnType<typeof verify>>);
      const logs = t.app.get(AuditLogsService);
      logs.verifyBatch = 10; // 300 statements: the first check is still running while the others arrive
      const checks = jest.spyOn(logs as unknown as { checkChainNow: () => Promise<unknown> }, 'checkChainNow');
      try {
        let firstDone = false;
        const first = check().finally(() => (firstDone = true));
        await until('the first check started', () => (checks.mock.calls.length > 0 ? true : undefined), 60_000, 5);
        await new ResourceFactory(t.http, busy.workspaceId, busy.admin.auth).create('sources');
        const later = Promise.all(Array.from({ length: 5 }, check));
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(firstDone).toBe(false); // otherwise this test shows nothing about requests that overlap
        const [before, after] = [await first, await later];
        expect(checks).toHaveBeenCalledTimes(2);
        expect(before.intact).toBe(true);
        for (const result of after) expect(result).toEqual(after[0]);
        expect(after[0].intact).toBe(true);
        expect(after[0].entries).toBeGreaterThan(before.entries); // the source created after the first began
      } finally {
        checks.mockRestore();
        logs.verifyBatch = VERIFY_BATCH;
      }
    },
  );

  it('verification is for admins only', async () => {
    await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`).set(ws.member.auth).expect(403);
  });
});

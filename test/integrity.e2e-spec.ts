import { Client } from 'pg';
import { ResourceFactory } from './factories';
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
  const nth = async (seq: number) =>
    (
      await superuser.query<{ id: string }>(`SELECT id FROM audit_logs WHERE workspace_id = $1 AND seq = $2`, [
        ws.workspaceId,
        seq,
      ])
    ).rows[0].id;

  describe('append-only in the database', () => {
    it.each([
      ['UPDATE', `UPDATE audit_logs SET resource_name = 'x'`],
      ['DELETE', `DELETE FROM audit_logs`],
      ['TRUNCATE', `TRUNCATE audit_logs`],
    ])('refuses %s even to a superuser (trigger)', async (op, sql) => {
      await expect(superuser.query(sql)).rejects.toThrow(`audit_logs is append-only: ${op} is not allowed`);
    });

    it('gives the application role SELECT and INSERT only', async () => {
      const role = await createAppRole();
      const client = new Client({ connectionString: asUser(t.database.url, role.name) });
      await client.connect();
      try {
        for (const sql of [
          `UPDATE audit_logs SET resource_name = 'x'`,
          `INSERT INTO audit_chain_heads VALUES (gen_random_uuid(), 1, 'x')`,
          'DELETE FROM audit_logs',
          'TRUNCATE audit_logs',
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

  describe('hash chain', () => {
    it('verifies intact, with every entry of the workspace checked', async () => {
      const result = await verify();
      const { rows } = await superuser.query<{ n: string }>(
        'SELECT count(*) AS n FROM audit_logs WHERE workspace_id = $1',
        [ws.workspaceId],
      );
      expect(result).toMatchObject({ intact: true, entries: Number(rows[0].n) });
      expect(result.entries).toBeGreaterThanOrEqual(15);
    });

    it('stays one chain under concurrent writers of one workspace', async () => {
      const sources = await Promise.all(Array.from({ length: 3 }, () => api.create('sources')));
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.http
            .patch(api.url('sources', sources[i % 3].id))
            .set(ws.admin.auth)
            .send({ type: `t${i}` })
            .expect(200),
        ),
      );
      const { rows } = await superuser.query<{ seq: string }>(
        'SELECT seq FROM audit_logs WHERE workspace_id = $1 ORDER BY seq',
        [ws.workspaceId],
      );
      expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
      expect((await verify()).intact).toBe(true);
    });

    it('reports the first altered entry', async () => {
      const victim = await nth(3);
      await tamper(`UPDATE audit_logs SET resource_name = 'Nothing to see' WHERE id = $1`, [victim]);
      expect(await verify()).toMatchObject({
        intact: false,
        firstBroken: { id: victim, seq: 3, reason: 'the entry was altered after it was written' },
      });
      await tamper(
        `UPDATE audit_logs SET resource_name = (SELECT resource_name FROM audit_logs WHERE id = $1) WHERE id = $1`,
        [victim],
      );
    });

    it('reports an entry that a forger re-hashed, at the next link', async () => {
      const isolated = await createWorkspace(t.app, 'Forged');
      const forged = new ResourceFactory(t.http, isolated.workspaceId, isolated.admin.auth);
      await forged.create('models'); // two entries: the source, then the model
      const [first] = (
        await superuser.query<{ id: string }>(`SELECT id FROM audit_logs WHERE workspace_id = $1 AND seq = 1`, [
          isolated.workspaceId,
        ])
      ).rows;
      await tamper(`UPDATE audit_logs SET resource_name = 'Forged' WHERE id = $1`, [first.id]);
      await tamper(`UPDATE audit_logs SET hash = audit_log_digest(prev_hash, audit_logs.*) WHERE id = $1`, [first.id]);
      expect(await verify(isolated)).toMatchObject({
        intact: false,
        firstBroken: { seq: 2, reason: 'the entry does not link to the one before it' },
      });
    });

    it('reports a deleted entry in the middle and one removed from the end', async () => {
      const isolated = await createWorkspace(t.app, 'Deleted');
      const factory = new ResourceFactory(t.http, isolated.workspaceId, isolated.admin.auth);
      await factory.create('segments'); // three entries
      await tamper(`DELETE FROM audit_logs WHERE workspace_id = $1 AND seq = 3`, [isolated.workspaceId]);
      expect(await verify(isolated)).toMatchObject({
        intact: false,
        firstBroken: { seq: 3, reason: 'entries at the end of the chain are missing' },
      });
      await tamper(`DELETE FROM audit_logs WHERE workspace_id = $1 AND seq = 1`, [isolated.workspaceId]);
      expect(await verify(isolated)).toMatchObject({
        intact: false,
        firstBroken: { seq: 2, reason: 'an entry before this one is missing' },
      });
    });

    it('is for admins only', async () => {
      await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`).set(ws.member.auth).expect(403);
    });
  });
});

import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { Client } from 'pg';
import type { AppPrismaClient } from '../src/database/prisma-client.factory';
import { runWithActor } from '../src/request-context/run-with-actor';
import { createTestDatabase, type TestDatabase, withAdminClient } from './database';
import { ResourceFactory } from './factories';
import { logDisagreements } from './log-invariant';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

const SOAK = process.env.SOAK === '1';

/**
 * Faults injected into real PostgreSQL while the service writes. After each: every committed
 * change has exactly its entries, no entry exists without its change, and every request that
 * answered 2xx committed.
 */
describe('Fault injection', () => {
  let database: TestDatabase;
  let db: Client;
  beforeAll(async () => {
    database = await createTestDatabase();
    db = new Client({ connectionString: database.url });
    db.on('error', () => undefined);
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await database.drop();
  });

  /** One app at a time: TransactionHost is a per-process singleton. */
  const withApp = async (
    config: Parameters<typeof createTestApp>[0],
    fn: (t: TestApp, ws: TestWorkspace, api: ResourceFactory) => Promise<void>,
  ) => {
    const t = await createTestApp(config, {}, database.url);
    try {
      const ws = await createWorkspace(t.app);
      await fn(t, ws, new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth));
    } finally {
      await t.app.close();
    }
    expect(await logDisagreements(db)).toEqual([]);
  };
  const typeOf = async (id: string) =>
    (await db.query<{ type: string }>('SELECT type FROM sources WHERE id = $1', [id])).rows[0].type;
  const entryCount = async (id: string) =>
    Number(
      (await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs WHERE resource_id = $1', [id])).rows[0].n,
    );

  it('a backend killed mid-transaction leaves neither the changes nor their entries', async () => {
    await withApp({}, async (t, ws, api) => {
      const source = await api.create('sources');
      const segment = await api.create('segments');
      const txHost = t.app.get<TransactionHost<TransactionalAdapterPrisma<AppPrismaClient>>>(TransactionHost);
      const admin = await t.prisma.user.findUniqueOrThrow({ where: { id: ws.admin.id } });
      await expect(
        runWithActor({ kind: 'user', id: admin.id, name: admin.name, email: admin.email }, () =>
          txHost.withTransaction(async () => {
            await txHost.tx.source.update({ where: { id: source.id }, data: { type: 'killed' } });
            const [{ pid }] = await txHost.tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
            await withAdminClient((c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
            await txHost.tx.segment.update({ where: { id: segment.id }, data: { name: 'never' } });
          }),
        ),
      ).rejects.toThrow();
      expect(await typeOf(source.id)).toBe('snowflake');
      expect(await entryCount(source.id)).toBe(1);
      // The pool replaces the dead connection: the next request works.
      await t.http.patch(api.url('sources', source.id)).set(ws.admin.auth).send({ type: 'after-kill' }).expect(200);
      expect(await entryCount(source.id)).toBe(2);
    });
  });

  it('a failing audit insert fails the request and rolls its change back', async () => {
    await db.query(`ALTER TABLE audit_log_inbox ADD CONSTRAINT fault_refuse CHECK (resource_name <> 'refused')`);
    try {
      await withApp({}, async (t, ws, api) => {
        const source = await api.create('sources');
        const res = await t.http
          .patch(api.url('sources', source.id))
          .set(ws.admin.auth)
          .send({ name: 'refused', type: 'x' });
        expect(res.status).toBeGreaterThanOrEqual(500);
        expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts|stack/);
        expect(await typeOf(source.id)).toBe('snowflake');
        expect(await entryCount(source.id)).toBe(1);
      });
    } finally {
      await db.query('ALTER TABLE audit_log_inbox DROP CONSTRAINT fault_refuse');
    }
  });

  it('a statement timeout while another transaction holds the row fails the request and changes nothing', async () => {
    await db.query(`ALTER DATABASE "${database.name}" SET statement_timeout = '500ms'`);
    try {
      await withApp({}, async (t, ws, api) => {
        const source = await api.create('sources');
        const holder = new Client({ connectionString: database.url });
        holder.on('error', () => undefined);
        await holder.connect();
        await holder.query('BEGIN');
        await holder.query('SELECT 1 FROM sources WHERE id = $1 FOR UPDATE', [source.id]);
        const res = await t.http.patch(api.url('sources', source.id)).set(ws.admin.auth).send({ type: 'timed-out' });
        await holder.query('ROLLBACK');
        await holder.end();
        expect(res.status).toBe(503);
        expect(res.body.message).toMatch(/took too long.*nothing was changed\. Retry/i);
        expect(await typeOf(source.id)).toBe('snowflake');
        expect(await entryCount(source.id)).toBe(1);
      });
    } finally {
      await db.query(`ALTER DATABASE "${database.name}" RESET statement_timeout`);
    }
  });

  it('an exhausted pool answers every request either with success that committed, or with an error that did not', async () => {
    const requests = SOAK ? 400 : 60;
    await withApp({ databasePoolSize: 2 }, async (t, ws, api) => {
      const sources = await Promise.all(Array.from({ length: 4 }, () => api.create('sources')));
      const responses = await Promise.all(
        Array.from({ length: requests }, (_, i) =>
          t.http
            .patch(api.url('sources', sources[i % 4].id))
            .set(ws.admin.auth)
            .send({ type: `p${i}` })
            .then((res) => ({ i, status: res.status })),
        ),
      );
      const ok = responses.filter((r) => r.status === 200).map((r) => `p${r.i}`);
      expect(responses.every((r) => r.status === 200 || r.status === 503)).toBe(true);
      const { rows } = await db.query<{ after: string }>(
        `SELECT c->>'after' AS after FROM audit_logs, jsonb_array_elements(changes) c
         WHERE resource_id = ANY($1::uuid[]) AND action = 'updated' AND c->>'field' = 'type'`,
        [sources.map((s) => s.id)],
      );
      expect(rows.map((r) => r.after).sort()).toEqual(ok.sort());
      console.log(
        `pool of 2: ${requests} concurrent updates, ${ok.length} committed, ${requests - ok.length} refused with 503`,
      );
    });
  });

  it('connections cut after commits leave committed work in place, and the next requests reconnect', async () => {
    await withApp({}, async (t, ws, api) => {
      const source = await api.create('sources');
      await t.http.patch(api.url('sources', source.id)).set(ws.admin.auth).send({ type: 'committed' }).expect(200);
      await withAdminClient((c) =>
        c.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [database.name],
        ),
      );
      await db.end().catch(() => undefined);
      db = new Client({ connectionString: database.url });
      db.on('error', () => undefined);
      await db.connect();
      expect(await typeOf(source.id)).toBe('committed');
      let status = 0;
      for (let attempt = 0; attempt < 3 && status !== 200; attempt++) {
        status = (
          await t.http
            .patch(api.url('sources', source.id))
            .set(ws.admin.auth)
            .send({ type: `again-${attempt}` })
        ).status;
      }
      expect(status).toBe(200);
    });
  });
});

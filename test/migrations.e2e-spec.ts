import { PGlite } from '@electric-sql/pglite';
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { attachAuditTriggers } from '../src/audit/capture/audit-triggers';
import { loadConfig } from '../src/config/app-config';
import { openDatabase } from '../src/database/database-connection';
import { migrate, MigrationError, migrationStatus, MIGRATIONS_DIR, readMigrations } from '../src/database/migrator';
import { pgExecutor, pgliteExecutor } from '../src/database/sql-executor';
import { createTestDatabase, type TestDatabase } from './database';
import { auditComment } from './redteam-helpers';
import { until } from './until';

describe('migration runner', () => {
  let database: TestDatabase;
  const clients: Client[] = [];
  const connect = async (): Promise<Client> => {
    const client = new Client({ connectionString: database.url });
    await client.connect();
    clients.push(client);
    return client;
  };
  beforeEach(async () => {
    database = await createTestDatabase({ empty: true });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await database.drop();
  });

  it('applies every migration once, with Prisma Migrate bookkeeping and sha256 checksums', async () => {
    const client = await connect();
    const all = readMigrations().map((m) => m.name);
    expect(await migrate(pgExecutor(client))).toEqual(all);
    expect(await migrate(pgExecutor(client))).toEqual([]);
    const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" ORDER BY migration_name',
    );
    expect(rows.map((r) => r.migration_name)).toEqual(all);
    for (const row of rows) {
      const file = readFileSync(join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'));
      expect(row.checksum).toBe(createHash('sha256').update(file).digest('hex'));
      expect(row.finished_at).toBeInstanceOf(Date);
    }
  });

  it('moves existing entries into monthly partitions unchanged, hash chains intact', async () => {
    const client = await connect();
    const all = readMigrations();
    const split = all.findIndex((m) => m.name.endsWith('_audit_logs_partitioned_by_month'));
    await migrate(pgExecutor(client), all.slice(0, split));
    const workspace = '6f1c1f0e-8a4b-4c1e-9d7a-2b3c4d5e6f70';
    await client.query(`INSERT INTO workspaces (id, name) VALUES ($1, 'Old')`, [workspace]);
    // Three months apart, inserted as the capture did before partitions existed.
    for (const age of ['70 days', '35 days', '1 day']) {
      await client.query(
        `INSERT INTO audit_logs (id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name, changes)
         VALUES (gen_random_uuid(), $1, now() - $2::interval, 'created', 'source', gen_random_uuid(), $2, '[]')`,
        [workspace, age],
      );
    }
    const snapshot = `SELECT id, occurred_at, seq, prev_hash, hash, resource_name FROM audit_logs ORDER BY seq`;
    const before = (await client.query(snapshot)).rows;
    expect(before).toHaveLength(3);

    await migrate(pgExecutor(client), all);
    expect((await client.query(snapshot)).rows).toEqual(before);
    const { rows } = await client.query<{ partitioned: boolean; months: string; ok: boolean }>(`
      SELECT (SELECT relkind = 'p' FROM pg_class WHERE relname = 'audit_log_sealed') AS partitioned,
             (SELECT count(DISTINCT tableoid)::text FROM audit_log_sealed) AS months,
             bool_and(hash = audit_log_digest(prev_hash, a)) AS ok FROM audit_log_sealed a`);
    expect(rows[0]).toEqual({ partitioned: true, months: expect.stringMatching(/^[23]$/) as unknown, ok: true });
    // The chain goes on from its head: the next entry links to the last copied one.
    await client.query(
      `SELECT audit_log_append(jsonb_build_array(jsonb_build_object('id', gen_random_uuid(), 'workspace_id', $1::uuid,
         'occurred_at', now(), 'action', 'updated', 'resource_type', 'source', 'resource_id', gen_random_uuid(),
         'resource_name', 'new', 'changes', '[]'::jsonb)))`,
      [workspace],
    );
    await client.query('SELECT audit_log_seal(100)');
    const last = (await client.query(`SELECT seq, prev_hash FROM audit_logs WHERE resource_name = 'new'`)).rows[0];
    expect(last).toEqual({ seq: '4', prev_hash: before[2].hash });
  });

  it('builds the covering actor index with the log readable and audited writes going on, waiting for a sealer without blocking them', async () => {
    const client = await connect();
    const all = readMigrations();
    const at = all.findIndex((m) => m.name.endsWith('_audit_log_actor_index_covers_type_and_resource'));
    await migrate(pgExecutor(client), all.slice(0, at));
    // A sealer in the middle of its transaction holds the log against a concurrent index build.
    const sealer = await connect();
    await sealer.query('BEGIN');
    await sealer.query('LOCK TABLE audit_log_sealed IN ROW EXCLUSIVE MODE');
    const migrating = migrate(pgExecutor(client), all.slice(0, at + 1));
    const reader = await connect();
    await until('the migration waiting for the sealer', async () => {
      const { rows } = await reader.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      return rows.length ? true : undefined;
    });
    // Dropping the old index first would queue an exclusive lock that every read then waits behind.
    await reader.query(`SET statement_timeout = '2s'`);
    const { rows } = await reader.query('SELECT count(*)::int AS n FROM audit_logs');
    expect(rows).toEqual([{ n: 0 }]);
    // The capture goes on too: it appends to the inbox, which the build does not touch.
    await reader.query(`INSERT INTO workspaces (id, name) VALUES ('6f1c1f0e-8a4b-4c1e-9d7a-2b3c4d5e6f71', 'During')`);
    expect((await reader.query('SELECT count(*)::int AS n FROM audit_log_inbox')).rows).toEqual([{ n: 1 }]);
    await sealer.query('COMMIT');
    expect(await migrating).toEqual([all[at].name]);
    const { rows: index } = await reader.query<{ definition: string }>(
      `SELECT pg_get_indexdef('audit_logs_workspace_id_actor_id_occurred_at_id_idx'::regclass) AS definition`,
    );
    expect(index[0].definition).toContain('INCLUDE (resource_type, resource_id)');
  });

  it('attaches the capture the service attached before again, so that a restore keeps the creator of a resource created then', async () => {
    const client = await connect();
    const all = readMigrations();
    const split = all.findIndex((m) => m.name.endsWith('_audit_restore_keeps_the_creator'));
    await migrate(pgExecutor(client), all.slice(0, split));
    const [workspace, creator, restorer, source] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const as = (id: string, action?: string) => auditComment({ kind: 'user', id, name: id, email: null, action });
    await client.query(`INSERT INTO workspaces (id, name) VALUES ($1, 'Old') ${as(restorer)}`, [workspace]);
    for (const id of [creator, restorer]) {
      await client.query(`INSERT INTO users (id, email, name) VALUES ($1, $2, $3) ${as(restorer)}`, [
        id,
        `${id}@acme.test`,
        id,
      ]);
    }
    const insert = `INSERT INTO sources (id, workspace_id, name, type) VALUES ($1, $2, 'Warehouse', 'pg')`;
    await client.query(`${insert} ${as(creator)}`, [source, workspace]);
    await client.query(`DELETE FROM sources WHERE id = $1 ${as(restorer)}`, [source]);
    await migrate(pgExecutor(client));
    expect(await attachAuditTriggers(pgExecutor(client))).toEqual([]);
    await client.query(`${insert} ${as(restorer, 'restored')}`, [source, workspace]);
    const { rows } = await client.query<{ created_by_id: string; updated_by_id: string; created: boolean }>(
      `SELECT s.created_by_id, s.updated_by_id, s.created_at = (SELECT l.occurred_at FROM audit_logs l
              WHERE l.resource_id = s.id AND l.action = 'created') AS created
       FROM sources s WHERE s.id = $1`,
      [source],
    );
    expect(rows).toEqual([{ created_by_id: creator, updated_by_id: restorer, created: true }]);
  });

  it('lets two runners start at once without interleaving', async () => {
    const [a, b] = [await connect(), await connect()];
    const [first, second] = await Promise.all([migrate(pgExecutor(a)), migrate(pgExecutor(b))]);
    expect([...first, ...second].sort()).toEqual(readMigrations().map((m) => m.name));
    const { rows } = await a.query<{ n: string }>('SELECT count(*) AS n FROM "_prisma_migrations"');
    expect(Number(rows[0].n)).toBe(readMigrations().length);
  });

  it('names an applied migration whose file was edited', async () => {
    const client = await connect();
    await migrate(pgExecutor(client));
    const edited = readMigrations().map((m, i) => (i === 1 ? { ...m, sql: `${m.sql}\n-- edit`, checksum: 'x' } : m));
    await expect(migrationStatus(pgExecutor(client), edited)).rejects.toThrow(
      new RegExp(`${readMigrations()[1].name} was edited after it was applied`),
    );
  });

  it('rolls a failing migration back whole and records nothing for it', async () => {
    const client = await connect();
    const broken = [
      ...readMigrations(),
      {
        name: '29991231000000_broken',
        sql: 'CREATE TABLE half_done (id int); SELECT no_such_function();',
        checksum: 'y',
      },
    ];
    await expect(migrate(pgExecutor(client), broken)).rejects.toThrow(/Migration 29991231000000_broken failed/);
    const { rows } = await client.query(`SELECT to_regclass('half_done') AS t`);
    expect(rows[0].t).toBeNull();
    expect((await migrationStatus(pgExecutor(client), broken)).pending).toEqual(['29991231000000_broken']);
  });

  it('works on the embedded database (PGlite)', async () => {
    const db = await PGlite.create({ extensions: { pg_trgm, btree_gin } });
    try {
      expect(await migrate(pgliteExecutor(db))).toHaveLength(readMigrations().length);
      expect(await migrate(pgliteExecutor(db))).toEqual([]);
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_logs');
      expect(rows[0].n).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('keeps the server from starting on PostgreSQL with pending migrations, naming them and the command', async () => {
    const config = { ...loadConfig({}), databaseUrl: database.url };
    const attempt = openDatabase(config);
    await expect(attempt).rejects.toBeInstanceOf(MigrationError);
    await expect(openDatabase(config)).rejects.toThrow(new RegExp(`${readMigrations()[0].name}.*npm run db:migrate`));
  });
});

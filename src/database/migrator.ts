import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { attachAuditTriggers } from '../audit/capture/audit-triggers';
import type { SqlExecutor } from './sql-executor';

export const MIGRATIONS_DIR = resolve(__dirname, '../../prisma/migrations');

/** Any constant will do: it only has to be the same for every runner of this project. */
const ADVISORY_LOCK_KEY = 72_531_904;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** Prisma Migrate's own bookkeeping table, so that `prisma migrate status` agrees with this runner. */
const BOOKKEEPING_DDL = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

async function appliedMigrations(db: SqlExecutor): Promise<AppliedRow[]> {
  const [{ exists }] = await db.query<{ exists: boolean }>(
    `SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS "exists"`,
  );
  if (!exists) return [];
  return db.query<AppliedRow>(
    `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL`,
  );
}

/** Compares the files with the database; throws when an applied migration was edited or failed. */
export async function migrationStatus(db: SqlExecutor, migrations = readMigrations()): Promise<MigrationStatus> {
  const applied = new Map((await appliedMigrations(db)).map((row) => [row.migration_name, row]));
  for (const migration of migrations) {
    const row = applied.get(migration.name);
    if (!row) continue;
    if (row.finished_at === null) {
      throw new MigrationError(
        `Migration ${migration.name} started but did not finish. Inspect the database, then remove its row from "_prisma_migrations".`,
      );
    }
    if (row.checksum !== migration.checksum) {
      throw new MigrationError(
        `Migration ${migration.name} was edited after it was applied (checksum mismatch). Restore the file and add a new migration instead.`,
      );
    }
  }
  return {
    applied: migrations.filter((m) => applied.has(m.name)).map((m) => m.name),
    pending: migrations.filter((m) => !applied.has(m.name)).map((m) => m.name),
  };
}

/**
 * Applies pending migrations, each in its own transaction, under an advisory lock so that two
 * runners (two servers starting at once, say) cannot interleave. Returns the names it applied.
 */
export async function migrate(db: SqlExecutor, migrations = readMigrations()): Promise<string[]> {
  await db.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
  try {
    await db.exec(BOOKKEEPING_DDL);
    const { pending } = await migrationStatus(db, migrations);
    for (const name of pending) {
      const migration = migrations.find((m) => m.name === name)!;
      await db.exec('BEGIN');
      try {
        await db.exec(migration.sql);
        await db.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
           VALUES ($1, $2, $3, now(), now(), 1)`,
          [randomUUID(), migration.checksum, migration.name],
        );
        await db.exec('COMMIT');
      } catch (error) {
        await db.exec('ROLLBACK');
        throw new MigrationError(`Migration ${name} failed: ${(error as Error).message}`);
      }
    }
    await attachAuditTriggers(db);
    return pending;
  } finally {
    await db.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]);
  }
}

import { PGlite } from '@electric-sql/pglite';
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { PrismaPg } from '@prisma/adapter-pg';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Pool } from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { type AppConfig, ConfigError } from '../config/app-config';
import type { DriverAdapter } from './prisma-client.factory';
import { MigrationError, migrate, migrationStatus } from './migrator';
import { pgExecutor, pgliteExecutor, type SqlExecutor } from './sql-executor';

/** An open database: PostgreSQL through a pool, or the embedded PGlite in a folder. */
export interface DatabaseConnection {
  kind: 'postgresql' | 'embedded';
  /** Human description for start-up logs, without credentials. */
  description: string;
  adapter: DriverAdapter;
  /** The connection URL of a PostgreSQL server (for work outside the pool, such as an export's COPY); unset when embedded. */
  url?: string;
  /** Runs `fn` on one dedicated connection (migrations, advisory locks). */
  withExecutor<T>(fn: (db: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export const DATABASE_CONNECTION = Symbol('DATABASE_CONNECTION');

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

export function openPostgres(url: string, poolSize: number): DatabaseConnection {
  const pool = new Pool({ connectionString: url, max: poolSize });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return {
    kind: 'postgresql',
    description: `PostgreSQL ${redact(url)} (pool of ${poolSize})`,
    adapter: new PrismaPg(pool),
    url,
    async withExecutor(fn) {
      const client = await pool.connect();
      try {
        return await fn(pgExecutor(client));
      } finally {
        client.release();
      }
    },
    close: async () => {
      if (!pool.ended) await pool.end();
    },
  };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** PGlite is single-process: a second process opening the same folder would corrupt it. */
function lockFolder(path: string): () => void {
  const lock = `${path}.lock`;
  try {
    const holder = Number(readFileSync(lock, 'utf8'));
    if (holder && holder !== process.pid && isRunning(holder)) {
      throw new ConfigError(
        `The embedded database in ${path} is in use by process ${holder}. Stop that process first, or set DATABASE_URL.`,
      );
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
  }
  writeFileSync(lock, String(process.pid));
  return () => rmSync(lock, { force: true });
}

export async function openEmbedded(dir: string): Promise<DatabaseConnection> {
  const path = resolve(dir);
  mkdirSync(path, { recursive: true });
  const unlock = lockFolder(path);
  const db = await PGlite.create(path, { extensions: { pg_trgm, btree_gin } });
  return {
    kind: 'embedded',
    description: `embedded PostgreSQL (PGlite) in ${path}`,
    adapter: new PrismaPGlite(db),
    withExecutor: (fn) => fn(pgliteExecutor(db)),
    close: async () => {
      await db.close();
      unlock();
    },
  };
}

/**
 * Opens the configured database. The embedded one is migrated on the spot; PostgreSQL is only
 * checked, because its migrations are an operator's step (`npm run db:migrate`).
 */
export async function openDatabase(config: AppConfig): Promise<DatabaseConnection> {
  if (!config.databaseUrl) {
    const connection = await openEmbedded(config.pgliteDir);
    await connection.withExecutor((db) => migrate(db));
    return connection;
  }
  const connection = openPostgres(config.databaseUrl, config.databasePoolSize);
  try {
    const { pending } = await connection.withExecutor((db) => migrationStatus(db));
    if (pending.length > 0) {
      throw new MigrationError(
        `The database has ${pending.length} pending migration(s): ${pending.join(', ')}. Run \`npm run db:migrate\` and start again.`,
      );
    }
  } catch (error) {
    await connection.close();
    throw error;
  }
  return connection;
}

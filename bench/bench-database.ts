import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { generateToken } from '../src/auth/token';
import { migrate } from '../src/database/migrator';
import { pgExecutor } from '../src/database/sql-executor';

/** The server benchmarks use: BENCH_DATABASE_URL, TEST_DATABASE_URL, or the local PostgreSQL. */
export const BENCH_SERVER =
  process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';

/** A new user, admin of the workspace, with an API token (returned), written in SQL as the seeds are. */
export async function addBenchAdmin(db: Client, workspaceId: string, email: string, name: string): Promise<string> {
  const { token, hash } = generateToken();
  const {
    rows: [{ id: userId }],
  } = await db.query<{ id: string }>(
    `INSERT INTO users (id, email, name) VALUES (gen_random_uuid(), $1, $2) RETURNING id`,
    [email, name],
  );
  await db.query(
    `INSERT INTO memberships (id, workspace_id, user_id, role) VALUES (gen_random_uuid(), $1, $2, 'admin')`,
    [workspaceId, userId],
  );
  await db.query(
    `INSERT INTO api_tokens (id, user_id, label, token_hash) VALUES (gen_random_uuid(), $1, 'bench', $2)`,
    [userId, hash],
  );
  return token;
}

export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface BenchDatabase {
  url: string;
  drop(): Promise<void>;
}

/** The database at `url`, which `drop()` leaves in place, or else a new one (`createBenchDatabase`). */
export async function openBenchDatabase(url: string | undefined): Promise<BenchDatabase> {
  return url ? { url, drop: () => Promise.resolve() } : createBenchDatabase();
}

/** A freshly migrated throw-away database; `drop()` removes it (unless BENCH_KEEP=1). */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `audit_bench_${randomBytes(4).toString('hex')}`;
  await withClient(BENCH_SERVER, (c) => c.query(`CREATE DATABASE "${name}"`));
  const url = new URL(BENCH_SERVER);
  url.pathname = `/${name}`;
  await withClient(url.toString(), (c) => migrate(pgExecutor(c)));
  return {
    url: url.toString(),
    drop: async () => {
      if (process.env.BENCH_KEEP === '1') return console.log(`kept database ${name}`);
      await withClient(BENCH_SERVER, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Bytes per entry of the sealed log: its table (heap, TOAST and maps) and each index, summed over
 * the monthly partitions, divided by the entries it holds.
 */
export async function storageReport(db: Client): Promise<void> {
  const { rows } = await db.query<{ relation: string; bytes: string; entries: string }>(`
    WITH entries AS (SELECT count(*) AS n FROM audit_log_sealed)
    SELECT 'table (heap, TOAST, maps)' AS relation, sum(pg_table_size(relid)) AS bytes, (SELECT n FROM entries) AS entries
    FROM pg_partition_tree('audit_log_sealed') WHERE isleaf
    UNION ALL
    SELECT i.indexrelid::regclass::text, sum(pg_relation_size(t.relid)), (SELECT n FROM entries)
    FROM pg_index i CROSS JOIN LATERAL pg_partition_tree(i.indexrelid) t
    WHERE i.indrelid = 'audit_log_sealed'::regclass GROUP BY 1
    ORDER BY bytes DESC`);
  const entries = Number(rows[0].entries);
  const total = rows.reduce((sum, r) => sum + Number(r.bytes), 0);
  console.log(`\n| sealed log, ${entries.toLocaleString('en')} entries | MiB | bytes per entry |`);
  console.log('|---|---|---|');
  for (const r of [...rows, { relation: 'total', bytes: String(total) }]) {
    const bytes = Number(r.bytes);
    console.log(`| ${r.relation} | ${(bytes / 2 ** 20).toFixed(0)} | ${(bytes / entries).toFixed(1)} |`);
  }
}

export interface TimedExport {
  rows: number;
  seconds: number;
  /** This process's RSS (the server's, since curl reads in another process) before and at its peak. */
  before: number;
  peak: number;
}

/** One export read to its end by curl in another process, timed, with the server's memory sampled. */
export async function timeExport(url: string, token: string, format: string): Promise<TimedExport> {
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const start = process.hrtime.bigint();
  try {
    const { stdout } = await promisify(execFile)('sh', [
      '-c',
      `curl -sSf -H "Authorization: Bearer ${token}" "${url}" | wc -l`,
    ]);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    // NDJSON is a line per entry; a CSV has a header line, and no cell of the benches' seeds holds a newline.
    return { rows: Number(stdout.trim()) - (format === 'csv' ? 1 : 0), seconds, before, peak };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * `npm run bench:export`: the export as it was (keyset batches of json_build_object lines), the same
 * batches with today's concatenated lines (what the embedded database uses), and one COPY (what
 * PostgreSQL serves), side by side on the same data in one run.
 *
 * Seeds BENCH_EXPORT_ROWS entries (default 1,000,000, 30 s apart: a year) into one workspace of a
 * throw-away database, sealed (placeholder hashes: this database is for timing reads), plus a few
 * hundred unsealed ones; with BENCH_EXPORT_OTHERS=k (default 0), k entries of another workspace are
 * written between each two of its own, in time order, as a shared log holds them.
 * Then, for CSV and NDJSON, exports the whole workspace BENCH_EXPORT_RUNS times (default 2) each
 * way, in turn, read by curl in another process, and prints rows/s and the server process's RSS
 * (before → peak, sampled every 20 ms). BENCH_DATABASE_URL names the server (default: the local one).
 * BENCH_COLD=1 empties the operating system's page cache before each export (root only), so that
 * the log comes off the disk (PostgreSQL's shared buffers keep what they hold).
 */
import { Test } from '@nestjs/testing';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { AppModule } from '../src/app.module';
import { setupApp } from '../src/app.setup';
import { AuditLogsService, EXPORT_LINES } from '../src/audit/query/audit-logs.service';
import { Prisma } from '../src/generated/prisma/client';
import { EXPORT_LINES_BEFORE } from '../test/export-lines-before';
import { generateToken } from '../src/auth/token';
import { APP_CONFIG, loadConfig } from '../src/config/app-config';
import { createBenchDatabase, timeExport } from './bench-database';

const ROWS = Number(process.env.BENCH_EXPORT_ROWS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_EXPORT_RUNS ?? 2);
const OTHERS = Number(process.env.BENCH_EXPORT_OTHERS ?? 0);
const COLD = process.env.BENCH_COLD === '1';
/** Which exports to time (BENCH_EXPORT_VARIANTS, comma-separated): all three by default. */
const VARIANTS = (process.env.BENCH_EXPORT_VARIANTS ?? 'before,batches,copy').split(',') as (
  'before' | 'batches' | 'copy'
)[];
const CHUNK = 250_000;

async function seed(db: Client): Promise<{ workspaceId: string; token: string }> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'Export') RETURNING id`,
  );
  const workspaceId = rows[0].id;
  const { token, hash } = generateToken();
  await db.query(`
    INSERT INTO users (id, email, name) SELECT gen_random_uuid(), 'user' || u || '@export.test', 'User ' || u
    FROM generate_series(0, 2) u`);
  await db.query(
    `INSERT INTO memberships (id, workspace_id, user_id, role)
     SELECT gen_random_uuid(), $1, id, 'admin' FROM users WHERE email LIKE '%@export.test'`,
    [workspaceId],
  );
  await db.query(
    `INSERT INTO api_tokens (id, user_id, label, token_hash)
     SELECT gen_random_uuid(), id, 'bench', $1 FROM users WHERE email = 'user0@export.test'`,
    [hash],
  );
  await db.query(`SELECT audit_log_create_partitions(now() - interval '366 days', now())`);
  const { rows: others } = await db.query<{ id: string }>(
    `INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'Others') RETURNING id`,
  );
  const started = Date.now();
  for (let done = 0; done < ROWS; done += CHUNK) {
    const n = Math.min(CHUNK, ROWS - done);
    // Straight into the sealed log with its triggers off (the chain trigger would seal row by row),
    // oldest first and 30 s apart, as a log is written: its table is in the order of its time index;
    // every (OTHERS + 1)th slot is the exported workspace's, the others another workspace's.
    await db.query('BEGIN');
    await db.query('SET LOCAL session_replication_role = replica');
    await db.query(
      `INSERT INTO audit_log_sealed (id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name,
         actor_kind, actor_id, actor_name, actor_email, request_id, ip, user_agent, changes, seq, prev_hash, hash)
       SELECT gen_random_uuid(), CASE WHEN g % ($5::int + 1) = 0 THEN $1 ELSE $6 END::uuid,
              now() - ($4::int - $2::int - g::float8 / ($5::int + 1)) * interval '30 seconds',
              (ARRAY['created','updated','updated','deleted'])[1 + g % 4], (ARRAY['source','model','segment','destination'])[1 + g % 4],
              md5('r' || g % 2000)::uuid, (ARRAY['Revenue','Churn, weekly','=Leads','Orders "EU"'])[1 + g % 4] || ' ' || g % 2000,
              'user', u.id, u.name, u.email, md5(g::text), '10.0.0.1', 'Mozilla/5.0',
              jsonb_build_array(jsonb_build_object('field', 'definition.rules[0].value', 'before', g, 'after', g + 1),
                                jsonb_build_object('field', 'name', 'before', 'Old ' || g, 'after', 'New\\n' || g)),
              $2::bigint + g, '', 'bench-seed'
       FROM generate_series(1, $3::int * ($5::int + 1)) g
       CROSS JOIN LATERAL (SELECT id, name, email FROM users WHERE email = 'user' || (g % 3) || '@export.test') u`,
      [workspaceId, done, n, ROWS, OTHERS, others[0].id],
    );
    await db.query('COMMIT');
    process.stdout.write(
      `\r  seeded ${(done + n).toLocaleString('en')} / ${ROWS.toLocaleString('en')} entries` +
        (OTHERS > 0 ? ` (and ${((done + n) * OTHERS).toLocaleString('en')} of another workspace)` : ''),
    );
  }
  // A few unsealed entries, which the COPY export merges in.
  await db.query(
    `INSERT INTO audit_log_inbox (id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name,
       actor_kind, changes)
     SELECT gen_random_uuid(), $1, now() - random() * interval '365 days', 'updated', 'segment', gen_random_uuid(),
            'Unsealed ' || g, 'system', '[]'::jsonb FROM generate_series(1, 300) g`,
    [workspaceId],
  );
  await db.query('VACUUM ANALYZE');
  console.log(` in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return { workspaceId, token };
}

async function main(): Promise<void> {
  const database = await createBenchDatabase();
  const db = new Client({ connectionString: database.url });
  await db.connect();
  console.log(
    `bench:export — ${ROWS.toLocaleString('en')} entries in one workspace` +
      (OTHERS > 0 ? `, ${OTHERS} of another between each two` : '') +
      `, ${RUNS} runs each way${COLD ? ', page cache emptied before each' : ''}`,
  );
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(APP_CONFIG)
    .useValue({
      ...loadConfig({}),
      nodeEnv: 'test',
      databaseUrl: database.url,
      databasePoolSize: 4,
      auditSealIntervalMs: 0, // the unsealed entries stay unsealed, so that every run merges them
      auditRateLimit: 1_000_000,
      exportRateLimit: 1_000_000,
    })
    .compile();
  const app = setupApp(moduleRef.createNestApplication({ logger: ['error'] }));
  try {
    const { workspaceId, token } = await seed(db);
    await app.listen(0, '127.0.0.1');
    const url = `http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}/api/workspaces/${workspaceId}/audit-logs/export`;
    const service = app.get(AuditLogsService);
    const exportChunks = service.exportChunks.bind(service);
    const lines = { csv: EXPORT_LINES.csv.text, ndjson: EXPORT_LINES.ndjson.text };
    const variants = {
      before: { via: 'batches', lines: EXPORT_LINES_BEFORE, label: 'before: keyset batches, json_build_object' },
      batches: { via: 'batches', lines, label: 'keyset batches, concatenated lines' },
      copy: { via: 'copy', lines, label: 'COPY, concatenated lines' },
    } as const;
    const results: { format: string; via: string; rowsPerSecond: number[]; before: number[]; peak: number[] }[] = [];
    for (const format of ['csv', 'ndjson'] as const) {
      for (let i = 0; i < RUNS; i++) {
        for (const via of VARIANTS) {
          const variant = variants[via];
          if (COLD) {
            execFileSync('sync');
            writeFileSync('/proc/sys/vm/drop_caches', '3');
          }
          EXPORT_LINES[format] = Prisma.raw(variant.lines[format]);
          service.exportChunks = (ws, filter, fmt, chain, progress) =>
            exportChunks(ws, filter, fmt, chain, progress, variant.via);
          const { rows, seconds, before, peak } = await timeExport(`${url}?format=${format}`, token, format);
          let result = results.find((r) => r.format === format && r.via === via);
          if (!result) results.push((result = { format, via, rowsPerSecond: [], before: [], peak: [] }));
          result.rowsPerSecond.push(rows / seconds);
          result.before.push(before);
          result.peak.push(peak);
          console.log(
            `  ${format} via ${via}: ${rows.toLocaleString('en')} rows in ${seconds.toFixed(1)} s = ` +
              `${Math.round(rows / seconds).toLocaleString('en')} rows/s; RSS ${mib(before)} → peak ${mib(peak)} MiB`,
          );
        }
      }
    }
    console.log(`\n| export (${ROWS.toLocaleString('en')} rows) | rows/s (each run) | RSS before → peak (MiB) |`);
    console.log('| --- | --- | --- |');
    for (const r of results) {
      console.log(
        `| ${r.format}, ${variants[r.via as keyof typeof variants].label} | ${r.rowsPerSecond.map((v) => Math.round(v).toLocaleString('en')).join(' / ')} | ` +
          `${r.before.map((b, i) => `${mib(b)} → ${mib(r.peak[i])}`).join(', ')} |`,
      );
    }
    for (const format of ['csv', 'ndjson']) {
      const mean = (via: string) => {
        const r = results.find((x) => x.format === format && x.via === via);
        return r ? r.rowsPerSecond.reduce((a, b) => a + b, 0) / r.rowsPerSecond.length : undefined;
      };
      const ratios = (['before', 'batches'] as const).flatMap((via) => {
        const [copy, other] = [mean('copy'), mean(via)];
        return copy && other ? [`COPY / ${via} = ${(copy / other).toFixed(2)}×`] : [];
      });
      if (ratios.length > 0) console.log(`${format}: ${ratios.join(', ')} (mean rows/s)`);
    }
  } finally {
    await app.close();
    await db.end();
    await database.drop();
  }
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

/**
 * `npm run bench:verify`: full verification (GET …/audit-logs/verify) against incremental
 * verification from a signed digest (POST …/audit-logs/verify { digest }) on one workspace of
 * BENCH_VERIFY_ROWS entries (default 1,000,000), sealed into its hash chain as the service seals.
 *
 * Incremental verification is timed for a digest taken BENCH_VERIFY_SINCE entries (default 1,000
 * and 100,000) before today's head: it reads only the entries since the digest's seq.
 */
import { Test } from '@nestjs/testing';
import { Client } from 'pg';
import { AppModule } from '../src/app.module';
import { AuditDigestsService } from '../src/audit/digests/audit-digests.service';
import { AuditLogsService } from '../src/audit/query/audit-logs.service';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import { APP_CONFIG, loadConfig } from '../src/config/app-config';
import { createBenchDatabase, storageReport } from './bench-database';

const ROWS = Number(process.env.BENCH_VERIFY_ROWS ?? 1_000_000);
const SINCE = (process.env.BENCH_VERIFY_SINCE ?? '1000,100000').split(',').map(Number);
const RUNS = 3;
/** Resources the entries change, in turn: a workspace edits the same resources again and again. */
const RESOURCES = 2000;

/** Appends `n` entries through the inbox (as the capture triggers do), oldest first, over RESOURCES resources. */
async function append(db: Client, workspaceId: string, from: number, n: number): Promise<void> {
  await db.query(
    `SELECT audit_log_append(jsonb_agg(jsonb_build_object('id', gen_random_uuid(), 'workspace_id', $1::uuid,
       'occurred_at', now() - make_interval(secs => $3::int - g), 'action', 'updated', 'resource_type', 'segment',
       'resource_id', md5('bench-resource-' || g % ${RESOURCES})::uuid, 'resource_name', 'Segment ' || g % ${RESOURCES},
       'actor_name', 'Bench',
       'changes', jsonb_build_array(jsonb_build_object('field', 'name', 'before', g, 'after', g + 1)))))
     FROM generate_series($2::int + 1, $2::int + $4::int) g`,
    [workspaceId, from, ROWS + Math.max(...SINCE), n],
  );
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 1000 ? 3 : 1)} s`;

async function main(): Promise<void> {
  const database = await createBenchDatabase();
  const db = new Client({ connectionString: database.url });
  await db.connect();
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(APP_CONFIG)
    .useValue({
      ...loadConfig({}),
      nodeEnv: 'test',
      databaseUrl: database.url,
      databasePoolSize: 2,
      auditSealIntervalMs: 0,
    })
    .compile();
  const app = moduleRef.createNestApplication({ logger: ['error'] });
  await app.init();
  try {
    const workspaceId = (
      await db.query<{ id: string }>(
        `INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'Verify') RETURNING id`,
      )
    ).rows[0].id;
    const sealer = app.get(AuditSealerService);
    const digests = app.get(AuditDigestsService);
    const logs = app.get(AuditLogsService);
    const started = Date.now();
    // Seeded up to the earliest digest; each digest is taken when the log reaches its seq.
    const stops = [...new Set(SINCE.filter((s) => s < ROWS).map((s) => ROWS - s))].sort((a, b) => a - b);
    const taken: { since: number; digest: Awaited<ReturnType<AuditDigestsService['issue']>> }[] = [];
    let done = 0;
    for (const stop of [...stops, ROWS]) {
      while (done < stop) {
        const n = Math.min(100_000, stop - done);
        await append(db, workspaceId, done, n);
        await sealer.seal();
        done += n;
        // As autovacuum would (a server may run with it off): every seal walks past the inbox's dead rows.
        if (done % 1_000_000 === 0) await db.query('VACUUM audit_log_inbox');
        process.stdout.write(`\r  sealed ${done.toLocaleString('en')} chained entries`);
      }
      if (stop < ROWS) taken.push({ since: ROWS - stop, digest: await digests.issue(workspaceId) });
    }
    console.log(` in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // As autovacuum would: the sealer's deletes leave the inbox full of dead rows that every seal walks past.
    await db.query('VACUUM ANALYZE audit_log_sealed, audit_log_inbox');
    await storageReport(db);

    const time = async (fn: () => Promise<unknown>) => {
      const times: number[] = [];
      let result: unknown;
      for (let run = 0; run < RUNS; run++) {
        const start = performance.now();
        result = await fn();
        times.push(performance.now() - start);
      }
      return { times, result: result as { entries: number; intact: boolean; extendsDigest?: boolean } };
    };
    const tempWritten = async () =>
      Number(
        (
          await db.query<{ bytes: string }>(
            'SELECT temp_bytes AS bytes FROM pg_stat_database WHERE datname = current_database()',
          )
        ).rows[0].bytes,
      );
    const tempBefore = await tempWritten();
    const rows: string[][] = [];
    const full = await time(() => logs.verifyChain(workspaceId));
    rows.push([
      'full (GET …/verify)',
      full.result.entries.toLocaleString('en'),
      `intact=${full.result.intact}`,
      ...full.times.map(seconds),
    ]);
    for (const { since, digest } of taken.sort((a, b) => a.since - b.since)) {
      const incremental = await time(() => digests.verify(workspaceId, digest));
      rows.push([
        `from a digest ${since.toLocaleString('en')} entries back (POST …/verify)`,
        incremental.result.entries.toLocaleString('en'),
        `intact=${incremental.result.intact} extendsDigest=${incremental.result.extendsDigest}`,
        ...incremental.times.map(seconds),
      ]);
    }
    console.log(`\n${ROWS.toLocaleString('en')} entries in one workspace; ${RUNS} runs each:`);
    console.log('| verification | entries read | result | run 1 | run 2 | run 3 |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
    // A backend reports its statistics within 10 s of going idle.
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    const temp = (await tempWritten()) - tempBefore;
    console.log(`temporary files written by these verifications: ${(temp / 2 ** 20).toFixed(1)} MiB`);
  } finally {
    await app.close();
    await db.end();
    await database.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

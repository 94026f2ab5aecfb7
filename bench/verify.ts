/**
 * `npm run bench:verify`: how long GET …/audit-logs/verify takes on one workspace with
 * BENCH_VERIFY_ROWS entries (default 1,000,000), written through the chaining insert trigger.
 */
import { Test } from '@nestjs/testing';
import { Client } from 'pg';
import { AppModule } from '../src/app.module';
import { AuditLogsService } from '../src/audit/query/audit-logs.service';
import { APP_CONFIG, loadConfig } from '../src/config/app-config';
import { createBenchDatabase } from './bench-database';

const ROWS = Number(process.env.BENCH_VERIFY_ROWS ?? 1_000_000);

async function main(): Promise<void> {
  const database = await createBenchDatabase();
  const db = new Client({ connectionString: database.url });
  await db.connect();
  try {
    const workspaceId = (
      await db.query<{ id: string }>(
        `INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'Verify') RETURNING id`,
      )
    ).rows[0].id;
    const started = Date.now();
    for (let done = 0; done < ROWS; done += 100_000) {
      const n = Math.min(100_000, ROWS - done);
      await db.query(
        `INSERT INTO audit_logs (id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name, actor_name, changes)
         SELECT gen_random_uuid(), $1, now() - (g || ' seconds')::interval, 'updated', 'segment', gen_random_uuid(),
                'Segment ' || g, 'Bench', jsonb_build_array(jsonb_build_object('field', 'name', 'before', g, 'after', g + 1))
         FROM generate_series(1, $2::int) g`,
        [workspaceId, n],
      );
      process.stdout.write(`\r  seeded ${(done + n).toLocaleString('en')} chained entries`);
    }
    console.log(` in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await db.query('VACUUM ANALYZE audit_logs');

    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(APP_CONFIG)
      .useValue({ ...loadConfig({}), nodeEnv: 'test', databaseUrl: database.url, databasePoolSize: 2 })
      .compile();
    const app = moduleRef.createNestApplication({ logger: ['error'] });
    await app.init();
    try {
      const service = app.get(AuditLogsService);
      for (let run = 1; run <= 2; run++) {
        const start = Date.now();
        const result = await service.verifyChain(workspaceId);
        console.log(
          `verify run ${run}: ${result.entries.toLocaleString('en')} entries, intact=${result.intact}, ${((Date.now() - start) / 1000).toFixed(1)} s`,
        );
      }
    } finally {
      await app.close();
    }
  } finally {
    await db.end();
    await database.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

/**
 * `npm run bench:verify`: how long GET …/audit-logs/verify takes on one workspace with
 * BENCH_VERIFY_ROWS entries (default 1,000,000), written through the chaining insert trigger.
 */
import { Test } from '@nestjs/testing';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AppModule } from '../src/app.module';
import { AuditLogsService } from '../src/audit/query/audit-logs.service';
import { APP_CONFIG, loadConfig } from '../src/config/app-config';
import { migrate } from '../src/database/migrator';
import { pgExecutor } from '../src/database/sql-executor';

const server = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
const ROWS = Number(process.env.BENCH_VERIFY_ROWS ?? 1_000_000);

function dbUrl(name: string): string {
  const url = new URL(server);
  url.pathname = `/${name}`;
  return url.toString();
}

async function main(): Promise<void> {
  const name = `audit_bench_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const db = new Client({ connectionString: dbUrl(name) });
  await db.connect();
  try {
    await migrate(pgExecutor(db));
    const workspaceId = (await db.query<{ id: string }>(`INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'Verify') RETURNING id`)).rows[0].id;
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
      .useValue({ ...loadConfig({}), nodeEnv: 'test', databaseUrl: dbUrl(name), databasePoolSize: 2 })
      .compile();
    const app = moduleRef.createNestApplication({ logger: ['error'] });
    await app.init();
    try {
      const service = app.get(AuditLogsService);
      for (let run = 1; run <= 2; run++) {
        const start = Date.now();
        const result = await service.verifyChain(workspaceId);
        console.log(`verify run ${run}: ${result.entries.toLocaleString('en')} entries, intact=${result.intact}, ${((Date.now() - start) / 1000).toFixed(1)} s`);
      }
    } finally {
      await app.close();
    }
  } finally {
    await db.end();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

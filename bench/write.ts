/**
 * `npm run bench:write`: the cost of audit capture on the write path, measured side by side in one
 * run on a throw-away PostgreSQL database. Each round runs the plain and the audited variant back to
 * back (alternating which goes first), so drift in the machine's load hits both alike.
 *
 * The plain variant writes the same schema in a second database whose tables carry no capture
 * triggers, through the same kind of Prisma client and pool, so the ratio is what capture costs.
 *
 * BENCH_DATABASE_URL (default: TEST_DATABASE_URL or the local server) names the server to use;
 * BENCH_ITERATIONS (default 400) the single-row rounds; BENCH_BULK_ITERATIONS (default 15) the
 * 1,000-row rounds; BENCH_LARGE_ROWS (default 100,000) the rows of the one large updateMany; BENCH_ON_DATABASE=<url> runs on an existing migrated database instead of a new
 * one (a log kept by `BENCH_KEEP=1 npm run bench:query`, to measure writes with its indexes full),
 * which it leaves in place.
 */
import { Test } from '@nestjs/testing';
import { AppModule } from '../src/app.module';
import { APP_CONFIG, loadConfig } from '../src/config/app-config';
import { type AppPrismaClient, PRISMA } from '../src/database/prisma-client.factory';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool } from 'pg';
import { AUDITED_RESOURCES } from '../src/audit/capture/audited-resources';
import { PrismaClient } from '../src/generated/prisma/client';
import { runAsSystem, runWithActor } from '../src/request-context/run-with-actor';
import { WorkspacesService } from '../src/workspaces/workspaces.service';
import { BENCH_SERVER, createBenchDatabase, openBenchDatabase, percentile, withClient } from './bench-database';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 400);
const BULK_ITERATIONS = Number(process.env.BENCH_BULK_ITERATIONS ?? 15);
const BULK_ROWS = 1000;
const LARGE_ROWS = Number(process.env.BENCH_LARGE_ROWS ?? 100_000);

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

interface Row {
  operation: string;
  plain: number[];
  audited: number[];
}

async function main(): Promise<void> {
  const existing = process.env.BENCH_ON_DATABASE;
  const database = await openBenchDatabase(existing);
  if (existing) {
    const [{ n }] = await withClient(existing, (db) =>
      db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs').then((r) => r.rows),
    );
    console.log(
      `on ${new URL(existing).pathname.slice(1)}: ${Number(n).toLocaleString('en')} entries already in the log`,
    );
  }

  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(APP_CONFIG)
    .useValue({ ...loadConfig({}), nodeEnv: 'test', databaseUrl: database.url, databasePoolSize: 4 })
    .compile();
  const app = moduleRef.createNestApplication({ logger: ['error'] });
  await app.init();
  try {
    const audited = app.get<AppPrismaClient>(PRISMA);
    // The same schema without capture triggers: what the plain Prisma call costs.
    const bare = await createBenchDatabase();
    await withClient(bare.url, async (db) => {
      for (const { table } of AUDITED_RESOURCES) {
        for (const trigger of [
          'audit_stamp',
          'audit_keep_identity',
          'audit_capture_insert',
          'audit_capture_update',
          'audit_capture_delete',
        ])
          await db.query(`DROP TRIGGER IF EXISTS "${trigger}" ON "${table}"`);
      }
    });
    const barePool = new Pool({ connectionString: bare.url, max: 4 });
    const plain = new PrismaClient({ adapter: new PrismaPg(barePool) });
    const plainWorkspace = await plain.workspace.create({ data: { name: 'Bench' } });
    const { workspaceId, userId } = await runAsSystem('bench', () =>
      app.get(WorkspacesService).bootstrap('Bench', { email: 'bench@acme.test', name: 'Bench' }),
    );
    const actor = { kind: 'user' as const, id: userId, name: 'Bench', email: 'bench@acme.test' };
    const as = <T>(fn: () => Promise<T>) => runWithActor(actor, fn);
    const config = { host: 'warehouse.acme.test', port: 5432, password: 'bench-secret', options: { ssl: true } };
    let n = 0;
    const source = (client: 'plain' | 'audited') => ({
      workspaceId: client === 'plain' ? plainWorkspace.id : workspaceId,
      name: `${client}-${++n}`,
      type: 'postgresql',
      config,
    });

    const results: Row[] = [
      { operation: 'create (1 row)', plain: [], audited: [] },
      { operation: 'update (1 row)', plain: [], audited: [] },
      { operation: 'delete (1 row)', plain: [], audited: [] },
      { operation: `updateMany (${BULK_ROWS} rows)`, plain: [], audited: [] },
    ];
    const [create, update, remove, bulk] = results;
    const target = {
      plain: await plain.source.create({ data: source('plain') }),
      audited: await as(() => audited.source.create({ data: source('audited') })),
    };
    const warmup = Math.max(20, Math.floor(ITERATIONS / 10));
    for (let i = 0; i < ITERATIONS + warmup; i++) {
      const record = i >= warmup;
      const order = i % 2 === 0 ? (['plain', 'audited'] as const) : (['audited', 'plain'] as const);
      for (const which of order) {
        const created: { id: string }[] = [];
        const c = await time(async () =>
          created.push(
            which === 'plain'
              ? await plain.source.create({ data: source('plain') })
              : await as(() => audited.source.create({ data: source('audited') })),
          ),
        );
        const u = await time(() =>
          which === 'plain'
            ? plain.source.update({ where: { id: target.plain.id }, data: { type: `t${i}` } })
            : as(() => audited.source.update({ where: { id: target.audited.id }, data: { type: `t${i}` } })),
        );
        const d = await time(() =>
          which === 'plain'
            ? plain.source.delete({ where: { id: created[0].id } })
            : as(() => audited.source.delete({ where: { id: created[0].id } })),
        );
        if (record) {
          create[which].push(c);
          update[which].push(u);
          remove[which].push(d);
        }
      }
    }

    for (const which of ['plain', 'audited'] as const) {
      const data = Array.from({ length: BULK_ROWS }, (_, i) => ({ ...source(which), name: `bulk-${which}-${i}` }));
      if (which === 'plain') await plain.source.createMany({ data });
      else await as(() => audited.source.createMany({ data }));
    }
    for (let i = 0; i < BULK_ITERATIONS + 2; i++) {
      const order = i % 2 === 0 ? (['plain', 'audited'] as const) : (['audited', 'plain'] as const);
      for (const which of order) {
        const where = { name: { startsWith: `bulk-${which}-` } };
        const ms = await time(() =>
          which === 'plain'
            ? plain.source.updateMany({ where, data: { type: `bulk${i}` } })
            : as(() => audited.source.updateMany({ where, data: { type: `bulk${i}` } })),
        );
        if (i >= 2) bulk[which].push(ms);
      }
    }
    const large: Row = {
      operation: `updateMany (${LARGE_ROWS.toLocaleString('en')} rows, once)`,
      plain: [],
      audited: [],
    };
    for (const which of ['plain', 'audited'] as const) {
      for (let start = 0; start < LARGE_ROWS; start += 5000) {
        const data = Array.from({ length: Math.min(5000, LARGE_ROWS - start) }, (_, i) => ({
          ...source(which),
          name: `large-${which}-${start + i}`,
        }));
        if (which === 'plain') await plain.source.createMany({ data });
        else await as(() => audited.source.createMany({ data }));
      }
      const where = { name: { startsWith: `large-${which}-` } };
      large[which].push(
        await time(() =>
          which === 'plain'
            ? plain.source.updateMany({ where, data: { type: 'large' } })
            : as(() => audited.source.updateMany({ where, data: { type: 'large' } })),
        ),
      );
    }
    results.push(large);

    // 16 writers in one workspace, each updating its own source: throughput, audited vs plain.
    const WRITERS = 16;
    const PER_WRITER = Math.max(20, Math.floor(ITERATIONS / 4));
    const writers = {
      plain: await Promise.all(Array.from({ length: WRITERS }, () => plain.source.create({ data: source('plain') }))),
      audited: await Promise.all(
        Array.from({ length: WRITERS }, () => as(() => audited.source.create({ data: source('audited') }))),
      ),
    };
    const concurrent: Row = { operation: `${WRITERS} concurrent writers (ms per update)`, plain: [], audited: [] };
    for (let round = 0; round < 4; round++) {
      for (const which of round % 2 === 0 ? (['plain', 'audited'] as const) : (['audited', 'plain'] as const)) {
        const ms = await time(() =>
          Promise.all(
            writers[which].map(async (row, w) => {
              for (let i = 0; i < PER_WRITER; i++) {
                const data = { type: `c${round}-${w}-${i}` };
                if (which === 'plain') await plain.source.update({ where: { id: row.id }, data });
                else await as(() => audited.source.update({ where: { id: row.id }, data }));
              }
            }),
          ),
        );
        concurrent[which].push(ms / (WRITERS * PER_WRITER));
      }
    }
    results.push(concurrent);
    await plain.$disconnect();
    await barePool.end();
    await bare.drop();

    const f = (ms: number) => ms.toFixed(2);
    console.log(
      `\nbench:write — PostgreSQL ${BENCH_SERVER.replace(/:[^:@/]*@/, ':***@')}, ${ITERATIONS} rounds (${BULK_ITERATIONS} for bulk)\n`,
    );
    console.log(
      '| operation | plain p50 ms | audited p50 ms | ratio p50 | plain p95 ms | audited p95 ms | ratio p95 |',
    );
    console.log('|---|---|---|---|---|---|---|');
    for (const row of results) {
      const [p50, a50, p95, a95] = [
        percentile(row.plain, 50),
        percentile(row.audited, 50),
        percentile(row.plain, 95),
        percentile(row.audited, 95),
      ];
      console.log(
        `| ${row.operation} | ${f(p50)} | ${f(a50)} | ${(a50 / p50).toFixed(2)}× | ${f(p95)} | ${f(a95)} | ${(a95 / p95).toFixed(2)}× |`,
      );
    }
    const throughput = percentile(concurrent.plain, 50) / percentile(concurrent.audited, 50);
    console.log(
      `\n${WRITERS} concurrent writers in one workspace: audited throughput ${throughput.toFixed(2)}× plain (p50 of 4 rounds)`,
    );
    const [{ entries }] = await audited.$queryRaw<{ entries: bigint }[]>`SELECT count(*) AS entries FROM "audit_logs"`;
    console.log(`audit entries written: ${entries}`);
  } finally {
    await app.close();
    await database.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

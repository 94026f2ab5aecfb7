import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from './database';
import { createTestApp, createWorkspace, type TestWorkspace } from './test-app';
import { freePort } from './free-port';
import { ServiceProcess } from './service-process';

const INSTANCES = 3;

/**
 * Three instances of the service, each its own process, on one PostgreSQL database: writes through
 * all of them land in one log with no entry lost or duplicated, every chain sealed and intact while
 * their sealers run side by side, and a paging cursor from one instance works on the others.
 */
describe('Several instances on one database', () => {
  let database: TestDatabase;
  let ws: TestWorkspace;
  const servers: ServiceProcess[] = [];
  const keyFile = join(tmpdir(), `audit-instances-${process.pid}.pem`);

  beforeAll(async () => {
    database = await createTestDatabase();
    const setup = await createTestApp({}, {}, database.url);
    ws = await createWorkspace(setup.app);
    await setup.app.close();
    const secret = randomBytes(32).toString('hex');
    for (let i = 0; i < INSTANCES; i++) {
      const service = new ServiceProcess(
        {
          DATABASE_URL: database.url,
          AUDIT_CURSOR_SECRET: secret,
          AUDIT_SEAL_INTERVAL_MS: '200',
          AUDIT_RATE_LIMIT: '100000',
          AUDIT_SIGNING_KEY_FILE: keyFile,
        },
        await freePort(),
      );
      servers.push(service);
    }
    await Promise.all(servers.map((service) => service.start()));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map((service) => service.stop()));
    rmSync(keyFile, { force: true });
    await database.drop();
  });

  const call = async (i: number, path: string, init: { method?: string; body?: unknown } = {}) => {
    const res = await fetch(`${servers[i % INSTANCES].base}/api/workspaces/${ws.workspaceId}${path}`, {
      method: init.method ?? 'GET',
      headers: { Authorization: `Bearer ${ws.admin.token}`, 'Content-Type': 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('keeps one log: every write has its entry once, chains sealed and intact, cursors valid everywhere', async () => {
    const writers = 60;
    const ids = await Promise.all(
      Array.from({ length: writers }, async (_, n) => {
        const created = await call(n, '/sources', {
          method: 'POST',
          body: { name: `instance-${n}`, type: 'pg', config: { host: `h${n}` } },
        });
        expect(created.status).toBe(201);
        const id = created.body.id as string;
        const updated = await call(n + 1, `/sources/${id}`, { method: 'PATCH', body: { type: `v${n}` } });
        expect(updated.status).toBe(200);
        return id;
      }),
    );

    // Page through the whole log, each page from the next instance.
    const seen: string[] = [];
    let cursor: string | undefined;
    let page = 0;
    do {
      const res = await call(page++, `/audit-logs?limit=17${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...(res.body.items as { id: string }[]).map((e) => e.id));
      cursor = (res.body.nextCursor as string | null) ?? undefined;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);

    const db = new Client({ connectionString: database.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ resource_id: string; n: string }>(
        `SELECT resource_id, count(*) AS n FROM audit_logs WHERE workspace_id = $1 AND resource_id = ANY($2::uuid[])
         GROUP BY resource_id`,
        [ws.workspaceId, ids],
      );
      expect(rows).toHaveLength(writers);
      expect(rows.every((r) => Number(r.n) === 2)).toBe(true);
      const { rows: total } = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM audit_logs WHERE workspace_id = $1',
        [ws.workspaceId],
      );
      expect(seen).toHaveLength(Number(total[0].n));
    } finally {
      await db.end();
    }

    for (let i = 0; i < INSTANCES; i++) {
      const verified = await call(i, '/audit-logs/verify');
      expect(verified.body).toMatchObject({ intact: true, unsealed: 0 });
    }
  }, 120_000);
});

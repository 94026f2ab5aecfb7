import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AppModule } from '../src/app.module';
import { setupApp } from '../src/app.setup';
import { APP_CONFIG, loadConfig } from '../src/config/app-config';
import { DemoSeeder } from '../src/workspaces/demo-seeder';

const run = promisify(execFile);

/** The zero-setup default: the whole app on PGlite in a folder, without any database server. */
describe('the app on the embedded database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-pglite-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const boot = async () => {
    const config = { ...loadConfig({}), nodeEnv: 'test' as const, pgliteDir: join(dir, 'pglite') };
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(APP_CONFIG)
      .useValue(config)
      .compile();
    const app = setupApp(moduleRef.createNestApplication({ logger: ['error'] }));
    await app.init();
    return app;
  };

  it('serves health, seeds the demo, and keeps the data across a restart', async () => {
    let app = await boot();
    await request(app.getHttpServer()).get('/api/health').expect(200, { status: 'ok', database: 'up' });
    const demo = await app.get(DemoSeeder).seed();
    const auth = { Authorization: `Bearer ${demo.admin.token}` };
    const before = await request(app.getHttpServer())
      .get(`/api/workspaces/${demo.workspaceId}/segments`)
      .set(auth)
      .expect(200);
    expect(before.body.items.length).toBeGreaterThan(0);
    await app.close();

    app = await boot();
    const after = await request(app.getHttpServer())
      .get(`/api/workspaces/${demo.workspaceId}/segments`)
      .set(auth)
      .expect(200);
    expect(after.body.items).toEqual(before.body.items);

    // The capture triggers, the sealer and the chain work on PGlite as on PostgreSQL.
    const http = request(app.getHttpServer());
    const base = `/api/workspaces/${demo.workspaceId}`;
    const created = await http
      .post(`${base}/sources`)
      .set(auth)
      .send({ name: 'Embedded', type: 'pg', config: { host: 'h', password: 'embedded-secret' } })
      .expect(201);
    await http.patch(`${base}/sources/${created.body.id}`).set(auth).send({ type: 'mysql' }).expect(200);
    const log = await http.get(`${base}/audit-logs`).query({ resourceId: created.body.id }).set(auth).expect(200);
    expect(log.body.items.map((e: { action: string; actor: { kind: string } }) => [e.action, e.actor.kind])).toEqual([
      ['updated', 'user'],
      ['created', 'user'],
    ]);
    expect(JSON.stringify(log.body.items)).not.toContain('embedded-secret');
    // Name search, by its table window and, with a user filter, by the user's index and the names.
    const userId = (log.body.items[0] as { user: { id: string } }).user.id;
    for (const query of [{ resourceName: 'embedd' }, { resourceName: 'embedd', userId }]) {
      const named = await http.get(`${base}/audit-logs`).query(query).set(auth).expect(200);
      expect(named.body.items.map((e: { resourceId: string }) => e.resourceId)).toEqual([
        created.body.id,
        created.body.id,
      ]);
    }
    // A restored deletion re-creates the source with the creator and time of its `created` entry.
    await http.delete(`${base}/sources/${created.body.id}`).set(auth).expect(204);
    type Logged = { id: string; occurredAt: string; user: { id: string } };
    const history = await http.get(`${base}/audit-logs`).query({ resourceId: created.body.id }).set(auth).expect(200);
    const [deletion, , creation] = history.body.items as Logged[];
    const restored = await http.post(`${base}/audit-logs/${deletion.id}/restore`).set(auth).expect(200);
    expect(restored.body).toMatchObject({ createdBy: { id: creation.user.id }, createdAt: creation.occurredAt });
    expect((await http.get(`${base}/audit-logs/verify`).set(auth).expect(200)).body).toMatchObject({
      intact: true,
      unsealed: 0,
    });

    // The CLI on the folder the server has open says so, and works on it once the server is stopped.
    const token = () =>
      run('npm', ['run', '-s', 'cli', '--', 'token', '--email', 'alice@acme.test'], {
        cwd: join(__dirname, '..'),
        env: { ...process.env, NODE_OPTIONS: '', DATABASE_URL: '', PGLITE_DIR: join(dir, 'pglite') },
      }).then(
        ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
    const refused = await token();
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      `The embedded database in ${join(dir, 'pglite')} is in use by process ${process.pid}. Stop that process first, or set DATABASE_URL.`,
    );
    await app.close();
    const issued = await token();
    expect(issued.code).toBe(0);
    expect(JSON.parse(issued.stdout.trim())).toEqual({
      userId: expect.any(String),
      token: expect.stringMatching(/^alog_/),
    });
    // Two cold starts of PGlite and the demo seed: 16 s alone, past a minute on a machine under load.
  }, 180_000);
});

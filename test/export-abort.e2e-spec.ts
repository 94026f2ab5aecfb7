import { get } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { AuditLogsService } from '../src/audit/query/audit-logs.service';
import { addSegmentUpdates } from './fixtures';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

/**
 * A download abandoned half-way must not keep reading the database, nor hang the handler; it is
 * recorded in the log as an export that did not complete.
 */
describe('GET /audit-logs/export when the client goes away', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let db: Client;
  /** The export's own connection (a COPY on a connection of its own, named for it) on the server. */
  const exporting = () =>
    db
      .query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'audit-export' AND datname = current_database()`,
      )
      .then((r) => Number(r.rows[0].n));

  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app);
    db = new Client({ connectionString: t.database.url });
    await db.connect();
    await addSegmentUpdates(db, ws.workspaceId, 60000, 400);
    await t.app.listen(0, '127.0.0.1');
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  it("ends the export's query on the server once the connection closes, ends the handler, and keeps serving", async () => {
    const service = t.app.get(AuditLogsService);
    const original = service.exportChunks.bind(service);
    let ended = false;
    jest.spyOn(service, 'exportChunks').mockImplementation(async function* (...args) {
      try {
        yield* original(...args);
      } finally {
        ended = true;
      }
    });
    const { port } = (t.app.getHttpServer() as Server).address() as AddressInfo;
    await new Promise<void>((resolve, reject) => {
      const req = get(
        {
          host: '127.0.0.1',
          port,
          path: `/api/workspaces/${ws.workspaceId}/audit-logs/export?format=ndjson`,
          headers: { Authorization: `Bearer ${ws.admin.token}` },
        },
        (res) => {
          res.once('data', () => {
            void exporting().then((n) => {
              expect(n).toBe(1);
              req.destroy();
              resolve();
            }, reject);
          });
        },
      );
      req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve() : reject(error)));
    });
    const deadline = Date.now() + 10_000;
    while ((await exporting()) > 0 && Date.now() < deadline) await sleep(100);
    expect(await exporting()).toBe(0);
    while (!ended && Date.now() < deadline) await sleep(100);
    expect(ended).toBe(true);
    await t.http.get('/api/health').expect(200);
    // The export is recorded as cut off, with the entries it had sent.
    const recorded = await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs?action=exported`)
      .set(ws.admin.auth)
      .expect(200);
    expect(recorded.body.items).toHaveLength(1);
    const changes = new Map(
      (recorded.body.items[0].changes as { field: string; after: unknown }[]).map((c) => [c.field, c.after]),
    );
    expect(changes.get('completed')).toBe(false);
    expect(changes.get('format')).toBe('ndjson');
    expect(changes.get('rowCount')).toBeGreaterThan(0);
    expect(changes.get('rowCount')).toBeLessThan(60000);
  });
});

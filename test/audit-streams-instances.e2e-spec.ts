import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from './database';
import { signatureValid, StreamReceiver } from './stream-receiver';
import { createTestApp, createWorkspace, type TestWorkspace } from './test-app';
import { freePort } from './free-port';
import { ServiceProcess } from './service-process';
import { until } from './until';

const SECRET = 'stream-secret-for-the-instances-test';

/** `until` for probes of processes that may not answer yet: a failed probe counts as not yet. */
const untilAnswered = <T>(what: string, probe: () => Promise<T | undefined>, ms = 120_000) =>
  until(what, () => probe().catch(() => undefined), ms, 200);

/** The id a service process holds stream leases under, from its start-up log. */
const leaseOwner = (service: ServiceProcess) => /leases are held as ([0-9a-f-]{36})/.exec(service.output)?.[1];

/**
 * Streams delivered by the service running as separate processes on one database: across a restart
 * while the receiver is down, and with three instances sharing the streams.
 */
describe('Log streams across restarts and instances', () => {
  let database: TestDatabase;
  let db: Client;
  const keyFile = join(tmpdir(), `audit-streams-instances-${process.pid}.pem`);
  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: database.url,
    AUDIT_SIGNING_KEY_FILE: keyFile,
    AUDIT_STREAMS_KEY: randomKey,
    AUDIT_STREAMS_ALLOW_PRIVATE: 'true',
    AUDIT_SEAL_INTERVAL_MS: '200',
    AUDIT_STREAMS_POLL_MS: '200',
    AUDIT_STREAMS_TIMEOUT_MS: '2000',
    AUDIT_STREAMS_RETRY_MIN_MS: '200',
    AUDIT_STREAMS_RETRY_MAX_MS: '1000',
    AUDIT_RATE_LIMIT: '100000',
    ...extra,
  });
  const randomKey = randomBytes(32).toString('hex');
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    db = new Client({ connectionString: database.url });
    await db.connect();
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await db.end();
    rmSync(keyFile, { force: true });
    await database.drop();
  });

  async function workspace(): Promise<TestWorkspace> {
    const setup = await createTestApp({}, {}, database.url);
    try {
      return await createWorkspace(setup.app);
    } finally {
      await setup.app.close();
    }
  }

  /** `count` sources written straight into the database (no service needed): each gets its entry. */
  const writeSources = (workspaceId: string, count: number, prefix: string) =>
    db.query(
      `INSERT INTO sources (id, workspace_id, name, type, config)
       SELECT gen_random_uuid(), $1, $3 || g, 'pg', '{}' FROM generate_series(1, $2::int) g`,
      [workspaceId, count, prefix],
    );

  const logOf = async (workspaceId: string) =>
    (
      await db.query<{ id: string; seq: string | null; resource_type: string }>(
        'SELECT id, seq::text, resource_type FROM audit_logs WHERE workspace_id = $1 ORDER BY audit_logs.seq NULLS LAST',
        [workspaceId],
      )
    ).rows;

  const call = (service: ServiceProcess, ws: TestWorkspace, path: string, init: RequestInit = {}) =>
    fetch(`${service.base}/api/workspaces/${ws.workspaceId}/audit-streams${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${ws.admin.token}`, 'Content-Type': 'application/json' },
    });

  it('loses nothing while the receiver fails, times out, is down across a restart, and answers slowly', async () => {
    const ws = await workspace();
    const receiver = await StreamReceiver.start();
    receiver.answer = (n) => (n < 2 ? { status: 503 } : n === 2 ? 'hang' : { status: 200, delayMs: 100 });
    const service = new ServiceProcess(env({ AUDIT_STREAMS_BATCH: '10' }), await freePort());
    services.push(service);
    await service.start();
    await writeSources(ws.workspaceId, 25, 'before-');
    const created = await call(service, ws, '', {
      method: 'POST',
      body: JSON.stringify({ url: receiver.url('/restart'), secret: SECRET }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    await untilAnswered('the first entries delivered', async () => {
      const rows = await logOf(ws.workspaceId);
      const accepted = new Set(receiver.accepted());
      return rows.filter((r) => r.resource_type === 'source').length === 25 && rows.every((r) => accepted.has(r.id))
        ? true
        : undefined;
    });
    // The receiver goes down, then the service; entries are written while both are down.
    await receiver.close();
    await service.stop();
    await writeSources(ws.workspaceId, 30, 'while-down-');
    await service.start();
    const failing = await untilAnswered('the refused connection in the status', async () => {
      const res = await call(service, ws, `/${id}`);
      const body = (await res.json()) as { lastError: string | null; lagSeconds: number };
      return body.lastError ? body : undefined;
    });
    expect(failing.lastError).toMatch(/ECONNREFUSED|refused/);
    expect(failing.lagSeconds).toBeGreaterThan(0);
    await receiver.open(); // the same port
    await writeSources(ws.workspaceId, 15, 'after-');

    const log = await untilAnswered('every entry sealed and delivered', async () => {
      const rows = await logOf(ws.workspaceId);
      const accepted = new Set(receiver.accepted());
      const sources = rows.filter((r) => r.resource_type === 'source').length;
      return sources === 70 && rows.every((r) => r.seq !== null && accepted.has(r.id)) ? rows : undefined;
    });
    // Accepted batches are the log in seq order, each entry once: the restart resumed from the stored position.
    expect(receiver.accepted()).toEqual(log.map((r) => r.id));
    const seqOf = new Map(log.map((r) => [r.id, Number(r.seq)]));
    for (const request of receiver.requests) {
      expect(signatureValid(request.body, SECRET, request.signature)).toBe(true);
      const seqs = request.ids.map((entry) => seqOf.get(entry)!);
      seqs.forEach((seq, i) => i > 0 && expect(seq).toBe(seqs[i - 1] + 1));
    }
    expect(receiver.requests.slice(0, 3).map((r) => r.outcome)).toEqual([503, 503, 'aborted']);
    const status = (await (await call(service, ws, `/${id}`)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ lastDeliveredEntryId: log[log.length - 1].id, lastError: null, lagSeconds: 0 });
    await receiver.close();
    await service.stop();
  }, 300_000);

  it('three instances: one deliverer per stream, never two batches at once; a killed one is taken over', async () => {
    const ws = await workspace();
    const receiver = await StreamReceiver.start();
    receiver.answer = () => ({ status: 200, delayMs: 150 });
    const instances = await Promise.all(
      [0, 1, 2].map(async () => new ServiceProcess(env({ AUDIT_STREAMS_BATCH: '20' }), await freePort())),
    );
    services.push(...instances);
    await Promise.all(instances.map((s) => s.start()));
    await writeSources(ws.workspaceId, 200, 'shared-');
    const paths = ['/one', '/two', '/three'];
    for (const [i, path] of paths.entries()) {
      const res = await call(instances[i], ws, '', {
        method: 'POST',
        body: JSON.stringify({ url: receiver.url(path), secret: SECRET }),
      });
      expect(res.status).toBe(201);
    }
    // One instance dies mid-delivery, without handing back what it holds: its leases run out (14 s here).
    const holder = await untilAnswered('every stream under way, one instance holding a stream', async () => {
      if (!paths.every((p) => receiver.accepted(p).length > 0)) return undefined;
      const { rows } = await db.query<{ owner: string }>(
        'SELECT lease_owner::text AS owner FROM audit_stream_deliveries WHERE lease_owner IS NOT NULL LIMIT 1',
      );
      return instances.find((s) => rows.length > 0 && leaseOwner(s) === rows[0].owner);
    });
    await holder.stop('SIGKILL');
    await writeSources(ws.workspaceId, 100, 'more-');
    const log = await untilAnswered('every entry delivered to the three streams', async () => {
      const rows = await logOf(ws.workspaceId);
      const sources = rows.filter((r) => r.resource_type === 'source').length;
      return sources === 300 &&
        rows.every((r) => r.seq !== null) &&
        paths.every((p) => new Set(receiver.accepted(p)).size >= rows.length)
        ? rows
        : undefined;
    });
    for (const path of paths) {
      const accepted = receiver.accepted(path);
      // In order, each entry once, except one batch at most sent again by the instance that took over.
      expect([...new Set(accepted)]).toEqual(log.map((r) => r.id));
      expect(accepted.length - log.length).toBeLessThanOrEqual(20);
      const requests = receiver.requests.filter((r) => r.path === path).sort((a, b) => a.startedAt - b.startedAt);
      for (let i = 1; i < requests.length; i++) {
        // Each batch starts only after the previous one was answered (or its sender died).
        expect(requests[i].startedAt).toBeGreaterThanOrEqual(requests[i - 1].endedAt!);
      }
    }
    await receiver.close();
  }, 300_000);
});

import * as http from 'node:http';
import { Client } from 'pg';
import { AuditDigestsService } from '../src/audit/digests/audit-digests.service';
import type { Digest } from '../src/audit/digests/audit-digest';
import { AuditLogsService, VERIFY_BATCH } from '../src/audit/query/audit-logs.service';
import { AuditRetentionService } from '../src/audit/retention/audit-retention.service';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import { withAdminClient } from './database';
import { ResourceFactory } from './factories';
import { addSegmentUpdates } from './fixtures';
import { until } from './until';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

/**
 * Red team: the shared, one-at-a-time verification of a workspace's chain (`verifyChainFrom`:
 * `lane.tail`, `lane.waiting`, the `chainChecks` map, the process-wide check slots). "(fixed)": found
 * wrong here and seen to fail before its fix; "(holds)": answered correctly when probed; "(as
 * documented)": a wait the README describes.
 */
jest.setTimeout(180_000);

type Lane = { tail: Promise<void>; waiting: Map<number, Promise<unknown>> };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const timed = async <T>(p: Promise<T>): Promise<{ value: T; ms: number }> => {
  const start = Date.now();
  const value = await p;
  return { value, ms: Date.now() - start };
};

describe('Red team: shared chain checks', () => {
  let t: TestApp;
  let superuser: Client;
  const logs = () => t.app.get(AuditLogsService);
  const lanes = () => (logs() as unknown as { chainChecks: Map<string, Lane> }).chainChecks;
  const seal = () => t.app.get(AuditSealerService).seal();
  const spyChecks = () => jest.spyOn(logs() as unknown as { checkChainNow: () => Promise<unknown> }, 'checkChainNow');
  const waitForCalls = (spy: jest.SpyInstance, n: number) =>
    until(`${n} checks started`, () => (spy.mock.calls.length >= n ? true : undefined), 60_000, 5);

  beforeAll(async () => {
    t = await createTestApp();
    superuser = new Client({ connectionString: t.database.url });
    superuser.on('error', () => undefined);
    await superuser.connect();
  });
  afterAll(async () => {
    await superuser.end().catch(() => undefined);
    await t.close();
  });
  afterEach(() => {
    logs().verifyBatch = VERIFY_BATCH;
    jest.restoreAllMocks();
  });

  /** A workspace with `n` sealed entries; `digest0` issued before them (seq 0). */
  const busyWorkspace = async (n = 3000): Promise<{ ws: TestWorkspace; digest0: Digest }> => {
    const ws = await createWorkspace(t.app, 'Busy');
    const digest0 = await t.app.get(AuditDigestsService).issue(ws.workspaceId);
    await addSegmentUpdates(superuser, ws.workspaceId, n, 10);
    await seal();
    return { ws, digest0 };
  };
  /** Sent at once (a supertest request is only sent when awaited). */
  const get = (ws: TestWorkspace) =>
    t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`)
      .set(ws.admin.auth)
      .then((r) => r);
  const post = (ws: TestWorkspace, digest: Digest) =>
    t.http
      .post(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`)
      .set(ws.admin.auth)
      .send({ digest })
      .then((r) => r);

  it('(holds) a GET and a POST from a seq-0 digest arriving during a check share one check that covers what each saw, equal to an unshared check', async () => {
    const { ws, digest0 } = await busyWorkspace();
    // createWorkspace writes entries, so no signed digest is at seq 0: one at seq 0 with a signature that
    // does not verify is still checked from 0, and so shares the GET's check.
    const zero = { ...digest0, seq: 0, headHash: '' };
    logs().verifyBatch = 10;
    const checks = spyChecks();
    let firstDone = false;
    const first = get(ws).then((r) => ((firstDone = true), r.body as { entries: number }));
    await waitForCalls(checks, 1);
    const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    await api.create('sources'); // committed before the two requests are sent
    const shared = Promise.all([get(ws), post(ws, zero)]);
    await sleep(50);
    expect(firstDone).toBe(false);
    const [g, p] = (await shared).map((r) => r.body as Record<string, unknown>);
    const before = await first;
    expect(checks).toHaveBeenCalledTimes(2);
    const { extendsDigest, digestMismatch, ...chainOfPost } = p;
    expect(extendsDigest).toBe(false);
    expect(digestMismatch).toBeDefined();
    expect(chainOfPost).toEqual(g); // shared: the same answer
    expect(g).toMatchObject({ intact: true });
    expect(g.entries as number).toBeGreaterThan(before.entries); // covers the source created before they were sent
    const alone = (await get(ws)).body as { intact: boolean; entries: number };
    expect(alone.intact).toBe(true);
    expect(alone.entries).toBeGreaterThanOrEqual(g.entries as number);
    expect(lanes().size).toBe(0);
  });

  it('(holds) a check that throws fails only its own requests: the next check runs, and the map is emptied', async () => {
    const { ws } = await busyWorkspace(500);
    logs().verifyBatch = 10;
    const checks = spyChecks();
    checks.mockImplementationOnce(async () => {
      await sleep(300);
      throw new Error('boom');
    });
    const failed = get(ws);
    await waitForCalls(checks, 1);
    const queued = Promise.all([get(ws), get(ws)]);
    expect((await failed).status).toBe(500);
    const after = await queued;
    expect(after.map((r) => r.status)).toEqual([200, 200]);
    expect(after[0].body).toEqual(after[1].body);
    expect(checks).toHaveBeenCalledTimes(2);
    expect(lanes().size).toBe(0);
  });

  it('(holds) a check whose connection is terminated mid-check (57P01) answers 503, not 500; later checks of the workspace run', async () => {
    const { ws } = await busyWorkspace();
    logs().verifyBatch = 5;
    const checks = spyChecks();
    const killed = get(ws);
    await waitForCalls(checks, 1);
    const queued = get(ws);
    // Kill the backend of the running check's transaction (its batch statement; pg_stat_activity keeps only the first 1 kB of a query).
    let pids: number[] = [];
    for (let i = 0; i < 400 && pids.length === 0; i++) {
      const { rows } = await superuser.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND pid <> pg_backend_pid() AND query LIKE '%FILTER (WHERE "seq" >=%'`,
      );
      pids = rows.map((r) => r.pid);
      if (pids.length === 0) await sleep(10);
    }
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) await superuser.query('SELECT pg_terminate_backend($1)', [pid]);
    const res = await killed;
    const next = await queued;
    expect(next.status).toBe(200);
    expect(next.body.intact).toBe(true);
    expect(lanes().size).toBe(0);
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 503 });
  });

  it('(holds) the database refusing connections mid-check: every waiting request gets 503, none hangs; allowed again, verify answers and the map is empty', async () => {
    const { ws } = await busyWorkspace();
    logs().verifyBatch = 5;
    const checks = spyChecks();
    const running = get(ws);
    await waitForCalls(checks, 1);
    const waiting = Promise.all([get(ws), post(ws, (await t.app.get(AuditDigestsService).list(ws.workspaceId))[0])]);
    await sleep(100);
    await withAdminClient(async (c) => {
      await c.query(`ALTER DATABASE "${t.database.name}" ALLOW_CONNECTIONS false`);
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [t.database.name]);
    });
    try {
      const [r, w] = await Promise.all([running, waiting]);
      expect([r.status, ...w.map((x) => x.status)]).toEqual([503, 503, 503]);
    } finally {
      await withAdminClient((c) => c.query(`ALTER DATABASE "${t.database.name}" ALLOW_CONNECTIONS true`));
      superuser = new Client({ connectionString: t.database.url });
      superuser.on('error', () => undefined);
      await superuser.connect();
    }
    logs().verifyBatch = VERIFY_BATCH;
    let ok = 0;
    for (let i = 0; i < 50 && ok !== 200; i++) {
      ok = (await get(ws)).status;
      if (ok !== 200) await sleep(200);
    }
    expect(ok).toBe(200);
    expect(lanes().size).toBe(0);
  });

  it('(fixed) digests whose signature does not verify, each at another seq, queued one check each: now they share the full check with GET', async () => {
    const { ws, digest0 } = await busyWorkspace();
    logs().verifyBatch = 10;
    // One real check alone, for scale.
    const { ms: oneCheck } = await timed(get(ws));
    const checks = spyChecks();
    const forged = Array.from({ length: 8 }, (_, i) => ({ ...digest0, seq: i + 1, headHash: 'a'.repeat(64) }));
    const answers = Promise.all(forged.map((d) => post(ws, d)));
    await waitForCalls(checks, 1);
    await sleep(50);
    const lane = lanes().get(ws.workspaceId);
    const queuedSeqs = lane ? [...lane.waiting.keys()] : [];
    const { ms: getMs } = await timed(get(ws));
    const bodies = (await answers).map(
      (r) => r.body as { extendsDigest: boolean; digestMismatch?: { reason: string } },
    );
    for (const b of bodies) {
      expect(b.extendsDigest).toBe(false);
      expect(b.digestMismatch?.reason).toMatch(/signature does not verify/);
    }
    // Expected: a digest this service did not sign is answered without a chain check (or joins the one
    // check of the workspace), so the GET after them waits at most about one check.
    // The first forged request's check, then one that the seven others and the GET share.
    expect({
      checks: checks.mock.calls.length,
      queuedSeqs,
      getMs: getMs < 3 * oneCheck + 500 ? 'about two checks' : `${getMs} ms (one check: ${oneCheck} ms)`,
    }).toEqual({
      checks: 2,
      queuedSeqs: [0],
      getMs: 'about two checks',
    });
  });

  it("(as documented) verify's lock queues behind a retention DROP that waits for an export's COPY, for at most retention's lock_timeout", async () => {
    // A month old enough for retention to drop, in a workspace of its own.
    const old = await createWorkspace(t.app, 'Old');
    await superuser.query(
      `INSERT INTO audit_log_inbox (id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name, actor_kind, changes)
       VALUES (gen_random_uuid(), $1, date_trunc('month', now()) - interval '17 months' + interval '3 days', 'updated', 'segment',
               gen_random_uuid(), 'Ancient', 'system', '[]')`,
      [old.workspaceId],
    );
    await seal();
    // An export downloaded slowly: its COPY keeps its snapshot (and ACCESS SHARE on the log) open.
    const { ws } = await busyWorkspace(3000);
    await addSegmentUpdates(superuser, ws.workspaceId, 3000, 3000);
    const server = t.app.getHttpServer() as import('node:http').Server;
    if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const req = http.get(`http://127.0.0.1:${port}/api/workspaces/${ws.workspaceId}/audit-logs/export?format=ndjson`, {
      headers: ws.admin.auth,
    });
    const response = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    response.pause(); // read nothing more
    try {
      for (let i = 0; i < 200; i++) {
        const { rows } = await superuser.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%'`,
        );
        if (Number(rows[0].n) > 0) break;
        await sleep(20);
      }
      const retention = t.app.get(AuditRetentionService).applyRetention();
      // Retention's DROP TABLE is now waiting for ACCESS EXCLUSIVE.
      for (let i = 0; i < 200; i++) {
        const { rows } = await superuser.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'`,
        );
        if (Number(rows[0].n) > 0) break;
        await sleep(20);
      }
      const quiet = await createWorkspace(t.app, 'Quiet');
      await new ResourceFactory(t.http, quiet.workspaceId, quiet.admin.auth).create('segments');
      const { ms } = await timed(get(quiet));
      const run = await retention;
      // Retention gives up after its lock_timeout (10 s) and tries again next run; verify then reads.
      expect({ verifyMs: ms < 15_000 ? 'within retention lock_timeout' : `${ms} ms`, retention: run?.status }).toEqual({
        verifyMs: 'within retention lock_timeout',
        retention: run?.status,
      });
    } finally {
      req.destroy();
    }
  });

  it('(as documented) verify seals first, so it waits for a sealer of another instance holding the seal lock, then answers', async () => {
    const ws = await createWorkspace(t.app, 'Sealing elsewhere');
    await new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth).create('segments');
    await seal();
    const other = new Client({ connectionString: t.database.url });
    await other.connect();
    await other.query('BEGIN');
    await other.query('SELECT "audit_log_seal"(0, true)');
    const holdMs = 12_000;
    const release = sleep(holdMs).then(() => other.query('COMMIT'));
    try {
      const { value, ms } = await timed(get(ws));
      expect({ waitedForTheSealer: ms >= holdMs - 1000, status: value.status, intact: value.body.intact }).toEqual({
        waitedForTheSealer: true,
        status: 200,
        intact: true,
      });
    } finally {
      await release;
      await other.end();
    }
  });
  it('(fixed) checks of as many workspaces as the pool has connections starved every other route: now they take a quarter of the pool', async () => {
    const small = await createTestApp({ databasePoolSize: 2 });
    const su = new Client({ connectionString: small.database.url });
    await su.connect();
    try {
      const wss: TestWorkspace[] = [];
      for (let i = 0; i < 3; i++) {
        const w = await createWorkspace(small.app, `Pool ${i}`);
        await addSegmentUpdates(su, w.workspaceId, 3000, 10);
        wss.push(w);
      }
      await small.app.get(AuditSealerService).seal();
      const svc = small.app.get(AuditLogsService);
      svc.verifyBatch = 2;
      const verifyOf = (w: TestWorkspace) =>
        timed(small.http.get(`/api/workspaces/${w.workspaceId}/audit-logs/verify`).set(w.admin.auth));
      // How many checks run at once: the real one, counted around.
      const inner = svc as unknown as { sealAndCheck: (...args: unknown[]) => Promise<unknown> };
      const original = inner.sealAndCheck.bind(svc);
      let now = 0;
      let most = 0;
      const checks = jest.spyOn(inner, 'sealAndCheck').mockImplementation(async (...args: unknown[]) => {
        most = Math.max(most, ++now);
        try {
          return await original(...args);
        } finally {
          now--;
        }
      });
      const running = Promise.all([verifyOf(wss[0]), verifyOf(wss[1])]);
      await waitForCalls(checks, 1);
      const other = wss[2];
      const { ms: listMs } = await timed(
        small.http.get(`/api/workspaces/${other.workspaceId}/audit-logs?limit=1`).set(other.admin.auth),
      );
      const done = await running;
      expect(done.map((d) => d.value.status)).toEqual([200, 200]);
      expect({
        mostAtOnce: most,
        checks: checks.mock.calls.length,
        listMs: listMs < 1000 ? 'prompt' : `${listMs} ms`,
      }).toEqual({
        mostAtOnce: 1, // a quarter of a pool of 2, at least one
        checks: 2,
        listMs: 'prompt',
      });
    } finally {
      await su.end();
      await small.close();
    }
  });
});

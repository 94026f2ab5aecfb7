/**
 * `npm run bench:export-stall`: what 50 clients that open an export and then stop reading cost the
 * server, measured in one run on a throw-away PostgreSQL database.
 *
 * The server is the real entry point (`src/main.ts`, NODE_ENV=production) in a child process on a
 * loopback port; its RSS is read from /proc/<pid>/status: before (after one whole export warmed it
 * up), at its peak (every 100 ms while the clients run), 3 s after the last client closed and 30 s
 * later, then one more whole export shows the slots are free again. The clients run in another
 * child process (this file with the argument `clients`): each opens `…/audit-logs/export?format=ndjson`,
 * reads a 429 at once, and leaves a 200 unread for BENCH_STALL_SECONDS + 10 s before draining it, so
 * that it sees whether the server cut it off (the transfer ends without its last chunk) or finished.
 * The server's "Export cut off: the client took nothing" warnings are counted too.
 *
 * Two rounds, each on a fresh server process: the configured caps (AUDIT_EXPORTS_PER_WORKSPACE /
 * AUDIT_EXPORTS_PER_PROCESS, defaults 2 / 8), and no effective cap (both at the number of clients),
 * where only AUDIT_EXPORT_STALL_SECONDS bounds what the stalled exports hold.
 *
 * BENCH_DATABASE_URL (default: TEST_DATABASE_URL or the local server) names the server to use;
 * BENCH_ENTRIES (default 200,000) the entries in the log, spread over BENCH_WORKSPACES (default 10)
 * workspaces; BENCH_CLIENTS (default 50) the clients, spread evenly over the workspaces (one admin
 * token each, below the default export rate limit of 10 a minute); BENCH_STALL_SECONDS (default 5)
 * AUDIT_EXPORT_STALL_SECONDS for the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { addBenchAdmin, createBenchDatabase, withClient } from './bench-database';

const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 200_000);
const WORKSPACES = Number(process.env.BENCH_WORKSPACES ?? 10);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 50);
const STALL_SECONDS = Number(process.env.BENCH_STALL_SECONDS ?? 5);
const PER_WORKSPACE = Number(process.env.AUDIT_EXPORTS_PER_WORKSPACE ?? 2);
const PER_PROCESS = Number(process.env.AUDIT_EXPORTS_PER_PROCESS ?? 8);
/** A client holding a 200 unread this long is past the server's stall limit by a margin. */
const HOLD_MS = (STALL_SECONDS + 10) * 1000;
/** The signing key the server creates at start (it signs no digest here); removed at the end. */
const KEY_FILE = join(tmpdir(), `export-stall-bench-${process.pid}.pem`);
/** "after" is read 3 s after the last client closed, and again after this long idle. */
const IDLE_MS = 30_000;
/** Nothing in a round may take longer than this; the clients' process is killed past it. */
const ROUND_LIMIT_MS = 120_000 + HOLD_MS;

/** What one client saw. */
interface Outcome {
  status: number;
  /** For a 429: which limit answered, from its message. */
  limit?: 'workspace' | 'process' | 'rate';
  /** For a 200: 'end' = the whole export, 'aborted' = the transfer was cut off. */
  ending?: 'end' | 'aborted';
  bytes: number;
  ms: number;
}

interface Target {
  workspaceId: string;
  token: string;
}

// ---------------------------------------------------------------- clients (the child process)

function openExport(port: number, target: Target, holdMs: number): Promise<Outcome> {
  const started = Date.now();
  return new Promise<Outcome>((done) => {
    const req = get(
      {
        host: '127.0.0.1',
        port,
        agent: false,
        path: `/api/workspaces/${target.workspaceId}/audit-logs/export?format=ndjson`,
        headers: { Authorization: `Bearer ${target.token}` },
      },
      (res: IncomingMessage) => {
        let bytes = 0;
        let body = '';
        let settled = false;
        const finish = (ending?: Outcome['ending']) => {
          if (settled) return;
          settled = true;
          const status = res.statusCode ?? 0;
          const limit =
            status !== 429
              ? undefined
              : /for this workspace/.test(body)
                ? 'workspace'
                : /on this server/.test(body)
                  ? 'process'
                  : 'rate';
          done({ status, limit, ending: status === 200 ? ending : undefined, bytes, ms: Date.now() - started });
        };
        res.on('end', () => finish(res.complete ? 'end' : 'aborted'));
        res.on('aborted', () => finish('aborted'));
        res.on('error', () => finish('aborted'));
        res.on('close', () => finish(res.complete ? 'end' : 'aborted'));
        const read = () =>
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (res.statusCode !== 200 && body.length < 2000) body += chunk.toString();
          });
        if (res.statusCode === 200) {
          res.pause(); // a client that stops reading: the socket fills, then the server's buffers
          setTimeout(() => {
            read();
            res.resume();
          }, holdMs);
        } else {
          read();
        }
      },
    );
    req.on('error', () => done({ status: 0, bytes: 0, ms: Date.now() - started }));
  });
}

async function runClients(): Promise<void> {
  const { port, targets, holdMs } = JSON.parse(process.argv[3]) as { port: number; targets: Target[]; holdMs: number };
  const outcomes = await Promise.all(targets.map((target) => openExport(port, target, holdMs)));
  process.stdout.write(JSON.stringify(outcomes));
}

// ---------------------------------------------------------------- the run (the parent process)

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

interface Server {
  child: ChildProcess;
  port: number;
  log: () => string;
}

async function startServer(databaseUrl: string, perWorkspace: number, perProcess: number): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: resolve(__dirname, '..'),
    env: {
      ...process.env,
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      AUDIT_EXPORT_STALL_SECONDS: String(STALL_SECONDS),
      AUDIT_EXPORTS_PER_WORKSPACE: String(perWorkspace),
      AUDIT_EXPORTS_PER_PROCESS: String(perProcess),
      AUDIT_SIGNING_KEY_FILE: KEY_FILE,
      AUDIT_SEAL_INTERVAL_MS: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 120_000;
  while (!output.includes('listening on')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error(`the server did not start:\n${output}`);
    }
    await sleep(200);
  }
  return { child, port, log: () => output };
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null) return;
  server.child.kill('SIGTERM');
  const exited = once(server.child, 'exit');
  if ((await Promise.race([exited.then(() => 'exited'), sleep(10_000, 'late')])) === 'late') {
    server.child.kill('SIGKILL');
    await exited;
  }
}

/** Reads one whole export at full speed: the warm-up before "before", and the check that slots are free after. */
async function readWhole(port: number, target: Target): Promise<Outcome> {
  return openExport(port, target, 0);
}

interface Round {
  name: string;
  perWorkspace: number;
  perProcess: number;
  outcomes: Outcome[];
  cutOffLogged: number;
  before: number;
  peak: number;
  after: number;
  afterIdle: number;
  lastClosedS: number;
  afterCheck: Outcome;
}

async function round(
  name: string,
  databaseUrl: string,
  targets: Target[],
  perWorkspace: number,
  perProcess: number,
): Promise<Round> {
  const server = await startServer(databaseUrl, perWorkspace, perProcess);
  try {
    const warm = await readWhole(server.port, targets[0]);
    if (warm.status !== 200 || warm.ending !== 'end') throw new Error(`warm-up export: ${JSON.stringify(warm)}`);
    await sleep(2000);
    const before = rssMiB(server.child.pid!);
    let peak = before;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssMiB(server.child.pid!));
      } catch {
        /* the server exited: reported below */
      }
    }, 100);

    // One request per client, the workspaces taking turns, all at once from another process.
    const requests = Array.from({ length: CLIENTS }, (_, i) => targets[i % targets.length]);
    const started = Date.now();
    const clients = spawn(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        __filename,
        'clients',
        JSON.stringify({ port: server.port, targets: requests, holdMs: HOLD_MS }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    clients.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => clients.kill('SIGKILL'), ROUND_LIMIT_MS);
    const [code] = (await once(clients, 'exit')) as [number | null];
    clearTimeout(killer);
    const lastClosedS = (Date.now() - started) / 1000;
    if (code !== 0) throw new Error(`the clients' process exited with ${code}`);
    const outcomes = JSON.parse(out) as Outcome[];

    await sleep(3000);
    clearInterval(sampler);
    const after = rssMiB(server.child.pid!);
    await sleep(IDLE_MS - 3000);
    const afterIdle = rssMiB(server.child.pid!);
    const afterCheck = await readWhole(server.port, targets[1 % targets.length]);
    const cutOffLogged = server.log().split('Export cut off: the client took nothing').length - 1;
    return {
      name,
      perWorkspace,
      perProcess,
      outcomes,
      cutOffLogged,
      before,
      peak,
      after,
      afterIdle,
      lastClosedS,
      afterCheck,
    };
  } finally {
    await stopServer(server);
  }
}

async function main(): Promise<void> {
  const database = await createBenchDatabase();
  try {
    const targets: Target[] = [];
    await withClient(database.url, async (db) => {
      for (let w = 0; w < WORKSPACES; w++) {
        const {
          rows: [{ id: workspaceId }],
        } = await db.query<{ id: string }>(
          `INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), $1) RETURNING id`,
          [`Bench ${w + 1}`],
        );
        const token = await addBenchAdmin(db, workspaceId, `bench-${w + 1}@acme.test`, `Bench ${w + 1}`);
        targets.push({ workspaceId, token });
      }
      // The entries where the capture writes them, then sealed as the owner (see test/fixtures.ts).
      const t0 = Date.now();
      await db.query(
        `INSERT INTO audit_log_inbox (id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name, actor_kind, changes)
         SELECT gen_random_uuid(), ($1::uuid[])[1 + g % cardinality($1::uuid[])], now() - (g || ' seconds')::interval,
                'updated', 'segment', gen_random_uuid(), 'Segment ' || g, 'system',
                jsonb_build_array(jsonb_build_object('field', 'definition', 'after', repeat('x', 300)))
         FROM generate_series(1, ${ENTRIES}) g`,
        [targets.map((t) => t.workspaceId)],
      );
      await db.query('SELECT audit_log_seal(2147483647, true)');
      await db.query('VACUUM ANALYZE');
      console.log(
        `${ENTRIES.toLocaleString('en')} entries over ${WORKSPACES} workspaces, sealed in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    });

    const rounds = [
      await round(`caps ${PER_WORKSPACE} / ${PER_PROCESS}`, database.url, targets, PER_WORKSPACE, PER_PROCESS),
      await round(`no cap (${CLIENTS} / ${CLIENTS})`, database.url, targets, CLIENTS, CLIENTS),
    ];

    const bytesPerExport = rounds[0].afterCheck.bytes;
    console.log(
      `\n${CLIENTS} clients, ${CLIENTS / WORKSPACES} per workspace, each export ≈ ${(bytesPerExport / 2 ** 20).toFixed(1)} MiB of NDJSON; ` +
        `AUDIT_EXPORT_STALL_SECONDS=${STALL_SECONDS}; a 200 is left unread for ${HOLD_MS / 1000} s, then drained\n`,
    );
    const count = (r: Round, f: (o: Outcome) => boolean) => r.outcomes.filter(f).length;
    const rows = rounds.map((r) => ({
      'exports at once (workspace / process)': r.name,
      'got 200': count(r, (o) => o.status === 200),
      '429 workspace cap': count(r, (o) => o.limit === 'workspace'),
      '429 process cap': count(r, (o) => o.limit === 'process'),
      '429 rate limit': count(r, (o) => o.limit === 'rate'),
      other: count(r, (o) => o.status !== 200 && o.status !== 429),
      'cut off (client saw)': count(r, (o) => o.ending === 'aborted'),
      'cut off (server log)': r.cutOffLogged,
      'whole export': count(r, (o) => o.ending === 'end'),
      'RSS before MiB': r.before.toFixed(0),
      'RSS peak MiB': r.peak.toFixed(0),
      'RSS after +3 s MiB': r.after.toFixed(0),
      [`RSS after +${IDLE_MS / 1000} s MiB`]: r.afterIdle.toFixed(0),
      'all closed s': r.lastClosedS.toFixed(1),
      'export after': `${r.afterCheck.status} ${r.afterCheck.ending ?? ''}`.trim(),
    }));
    console.table(rows);
  } finally {
    rmSync(KEY_FILE, { force: true });
    await database.drop();
  }
}

if (process.argv[2] === 'clients') {
  runClients().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}

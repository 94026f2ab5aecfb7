/**
 * `npm run bench:stream`: how fast a log stream delivers, and how far behind it stays under load.
 *
 * 1. Backlog: BENCH_STREAM_ROWS (default 1,000,000) entries of one workspace are appended through
 *    the inbox and sealed, as the capture triggers and the sealer do; then a stream is created over
 *    the API of the service (src/main.ts, its own process, NODE_ENV=production) to a receiver in this
 *    process, which checks every batch's signature and order. Timed: first batch to last entry.
 *    Beside it, the NDJSON export of the same entries over HTTP (the same rows read and rendered).
 * 2. Load: BENCH_STREAM_WRITERS (default 4) connections update sources in a loop for
 *    BENCH_STREAM_LOAD_SECONDS (default 30); the stream's lag is sampled from its status twice a
 *    second, and the receiver measures each entry's end-to-end delay (received − occurredAt).
 *
 * Run it under `nice -n 19` on a shared machine. BENCH_STREAM_BATCH sets AUDIT_STREAMS_BATCH (500).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { addBenchAdmin, createBenchDatabase, percentile } from './bench-database';
import { freePort } from '../test/free-port';

const ROWS = Number(process.env.BENCH_STREAM_ROWS ?? 1_000_000);
const WRITERS = Number(process.env.BENCH_STREAM_WRITERS ?? 4);
const LOAD_SECONDS = Number(process.env.BENCH_STREAM_LOAD_SECONDS ?? 30);
const BATCH = process.env.BENCH_STREAM_BATCH ?? '500';
const SECRET = 'bench-stream-secret-0123456789';
const ROOT = join(__dirname, '..');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts what arrives; refuses (and the bench fails) on a bad signature or an entry out of order. */
class Receiver {
  entries = 0;
  batches = 0;
  bytes = 0;
  firstAt = 0;
  lastAt = 0;
  lastId = '';
  /** End-to-end delay of each entry received while `measuring`, in ms. */
  delays: number[] = [];
  measuring = false;
  errors: string[] = [];
  /** Entries received more than once (a retried batch). */
  duplicates = 0;
  sizes: number[] = [];
  private readonly seen = new Set<string>();
  get unique(): number {
    return this.seen.size;
  }
  private lastOccurred = '';
  readonly server = createHttpServer((req, res) => this.handle(req, res));

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const expected = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
      if (req.headers['x-audit-signature'] !== expected) this.errors.push('a batch with a bad signature');
      const now = Date.now();
      if (!this.firstAt) this.firstAt = now;
      const lines = body.toString('utf8').split('\n');
      for (const line of lines) {
        if (!line) continue;
        const entry = JSON.parse(line) as { id: string; occurredAt: string };
        if (entry.occurredAt < this.lastOccurred && !this.measuring) this.errors.push(`${entry.id} out of order`);
        this.lastOccurred = entry.occurredAt;
        this.lastId = entry.id;
        if (this.seen.has(entry.id)) this.duplicates++;
        else this.seen.add(entry.id);
        this.entries++;
        if (this.measuring) this.delays.push(now - Date.parse(entry.occurredAt));
      }
      this.batches++;
      if (!this.measuring) this.sizes.push(lines.length - 1);
      this.bytes += body.length;
      this.lastAt = now;
      res.writeHead(200).end();
    });
  }
}

async function until(what: string, ready: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms / 1000} s`);
    await sleep(100);
  }
}

async function main(): Promise<void> {
  const database = await createBenchDatabase();
  const db = new Client({ connectionString: database.url });
  await db.connect();
  const keyDir = mkdtempSync(join(tmpdir(), 'bench-stream-'));
  let service: ChildProcess | undefined;
  const receiver = new Receiver();
  try {
    const workspaceId = randomUUID();
    await db.query(`INSERT INTO workspaces (id, name) VALUES ($1, 'Stream bench')`, [workspaceId]);
    const token = await addBenchAdmin(db, workspaceId, 'bench@acme.test', 'Bench');

    const seedStart = Date.now();
    for (let done = 0; done < ROWS;) {
      const n = Math.min(100_000, ROWS - done);
      await db.query(
        `SELECT audit_log_append(jsonb_agg(jsonb_build_object('id', gen_random_uuid(), 'workspace_id', $1::uuid,
           'occurred_at', now() - make_interval(secs => ($3::int - g) / 100.0), 'action', 'updated',
           'resource_type', 'segment', 'resource_id', gen_random_uuid(), 'resource_name', 'Segment ' || g,
           'actor_name', 'Bench', 'changes', jsonb_build_array(jsonb_build_object('field', 'definition.rules[0].value',
           'before', g, 'after', g + 1)))))
         FROM generate_series($2::int + 1, $2::int + $4::int) g`,
        [workspaceId, done, ROWS, n],
      );
      while ((await db.query<{ n: number }>('SELECT audit_log_seal(100000, true) AS n')).rows[0].n > 0);
      done += n;
      process.stdout.write(`\r  seeded and sealed ${done.toLocaleString('en')} entries`);
    }
    console.log(` in ${((Date.now() - seedStart) / 1000).toFixed(0)} s`);
    await db.query('VACUUM ANALYZE audit_log_sealed, audit_log_inbox');
    // Sources for the writer load (written now, so that their entries are part of the backlog).
    await db.query(
      `INSERT INTO sources (id, workspace_id, name, type, config)
       SELECT gen_random_uuid(), $1, 'load ' || g, 'pg', jsonb_build_object('n', 0) FROM generate_series(1, $2::int) g`,
      [workspaceId, WRITERS],
    );

    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', () => resolve()));
    const receiverPort = (receiver.server.address() as { port: number }).port;
    const port = await freePort();
    service = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        PORT: String(port),
        DATABASE_URL: database.url,
        AUDIT_STREAMS_ALLOW_PRIVATE: 'true',
        AUDIT_STREAMS_BATCH: BATCH,
        AUDIT_SIGNING_KEY_FILE: join(keyDir, 'signing.pem'),
        AUDIT_STREAMS_KEY_FILE: join(keyDir, 'streams.key'),
        AUDIT_RATE_LIMIT: '100000',
        AUDIT_EXPORT_RATE_LIMIT: '100000',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const base = `http://127.0.0.1:${port}/api/workspaces/${workspaceId}`;
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    await until(
      'the service answering',
      async () => (await fetch(`http://127.0.0.1:${port}/api/health`).catch(() => undefined))?.status === 200,
      120_000,
    );

    // The same entries as one NDJSON export, for comparison: the same rows read and rendered as AuditEntry lines.
    const exportStart = performance.now();
    const exported = await fetch(`${base}/audit-logs/export?format=ndjson`, { headers });
    let exportedLines = 0;
    for await (const chunk of exported.body as unknown as AsyncIterable<Uint8Array>) {
      for (const byte of chunk) if (byte === 10) exportedLines++;
    }
    const exportMs = performance.now() - exportStart;

    const total = Number(
      (await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs WHERE workspace_id = $1', [workspaceId]))
        .rows[0].n,
    );
    const created = await fetch(`${base}/audit-streams`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ url: `http://127.0.0.1:${receiverPort}/bench`, secret: SECRET }),
    });
    if (created.status !== 201) throw new Error(`POST audit-streams → ${created.status} ${await created.text()}`);
    const stream = (await created.json()) as { id: string };
    const backlogStart = Date.now();
    let lastPrint = 0;
    await until(
      'the backlog delivered',
      () => {
        if (Date.now() - lastPrint > 5000) {
          lastPrint = Date.now();
          process.stdout.write(
            `\r  delivered ${receiver.entries.toLocaleString('en')} of ${total.toLocaleString('en')}`,
          );
        }
        return receiver.unique >= total;
      },
      3_600_000,
    );
    const backlogMs = receiver.lastAt - backlogStart;
    const streamRate = total / (backlogMs / 1000);
    const exportRate = exportedLines / (exportMs / 1000);
    console.log('');

    // Writer load: each writer updates its own source in a loop; every update is one entry.
    receiver.measuring = true;
    const lags: number[] = [];
    let writes = 0;
    const stopAt = Date.now() + LOAD_SECONDS * 1000;
    const writers = Array.from({ length: WRITERS }, async (_, i) => {
      const writer = new Client({ connectionString: database.url });
      await writer.connect();
      try {
        while (Date.now() < stopAt) {
          await writer.query(
            `UPDATE sources SET config = jsonb_build_object('n', (config->>'n')::int + 1) WHERE workspace_id = $1 AND name = $2`,
            [workspaceId, `load ${i + 1}`],
          );
          writes++;
        }
      } finally {
        await writer.end();
      }
    });
    const sampler = (async () => {
      while (Date.now() < stopAt) {
        const res = await fetch(`${base}/audit-streams/${stream.id}`, { headers });
        lags.push(((await res.json()) as { lagSeconds: number }).lagSeconds);
        await sleep(500);
      }
    })();
    await Promise.all([...writers, sampler]);
    const expected = total + writes;
    await until('the load delivered', () => receiver.unique >= expected, 600_000);
    const drainedMs = receiver.lastAt - stopAt;

    if (receiver.errors.length > 0) throw new Error(`receiver: ${receiver.errors.slice(0, 5).join('; ')}`);
    const fmt = (n: number) => Math.round(n).toLocaleString('en');
    console.log(
      `\nBacklog of ${fmt(total)} entries, batches of ${BATCH} (one run; ${fmt(receiver.duplicates)} entries received twice; ` +
        `batch sizes p50 ${percentile(receiver.sizes, 50)}, min ${Math.min(...receiver.sizes)}):`,
    );
    console.log('| reading the log as NDJSON | entries | time | entries/s | vs export |');
    console.log('| --- | --- | --- | --- | --- |');
    console.log(
      `| export over HTTP (GET …/export?format=ndjson) | ${fmt(exportedLines)} | ${(exportMs / 1000).toFixed(1)} s | ${fmt(exportRate)} | 1.00× |`,
    );
    console.log(
      `| stream delivery (${fmt(receiver.sizes.length)} signed batches) | ${fmt(total)} | ${(backlogMs / 1000).toFixed(1)} s | ${fmt(streamRate)} | ${(streamRate / exportRate).toFixed(2)}× |`,
    );
    const sorted = (values: number[]) => [percentile(values, 50), percentile(values, 95), Math.max(...values)];
    const [d50, d95, dmax] = sorted(receiver.delays);
    const [l50, l95, lmax] = sorted(lags);
    console.log(
      `\nUnder load: ${WRITERS} writers, ${LOAD_SECONDS} s, ${fmt(writes)} entries (${fmt(writes / LOAD_SECONDS)}/s):`,
    );
    console.log('| measure | p50 | p95 | max |');
    console.log('| --- | --- | --- | --- |');
    console.log(
      `| end-to-end delay per entry (received − occurredAt) | ${(d50 / 1000).toFixed(2)} s | ${(d95 / 1000).toFixed(2)} s | ${(dmax / 1000).toFixed(2)} s |`,
    );
    console.log(
      `| lagSeconds in the status (sampled every 0.5 s) | ${l50.toFixed(2)} s | ${l95.toFixed(2)} s | ${lmax.toFixed(2)} s |`,
    );
    console.log(`last entry received ${(drainedMs / 1000).toFixed(2)} s after the writers stopped`);
  } finally {
    if (service && service.exitCode === null) {
      const exited = new Promise((resolve) => service!.once('exit', resolve));
      service.kill('SIGTERM');
      await exited;
    }
    receiver.server.close();
    await db.end();
    rmSync(keyDir, { recursive: true, force: true });
    await database.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AuditSealerService, INBOX_NOT_VACUUMED } from '../src/audit/seal/audit-sealer.service';
import { createTestDatabase, type TestDatabase } from './database';
import { freePort } from './free-port';
import { until } from './until';
import { createTestApp } from './test-app';

const ROOT = join(__dirname, '..');

/** The sealer's start-up check that autovacuum looks after the inbox. */
describe('Autovacuum of the inbox', () => {
  let database: TestDatabase;
  let owner: Client;

  beforeAll(async () => {
    database = await createTestDatabase();
    owner = new Client({ connectionString: database.url });
    await owner.connect();
  });
  afterAll(async () => {
    await owner.end();
    await database.drop();
  });

  it('warns at start-up when the inbox has autovacuum switched off', async () => {
    await owner.query('ALTER TABLE audit_log_inbox SET (autovacuum_enabled = false)');
    const dir = mkdtempSync(join(tmpdir(), 'inbox-vacuum-'));
    // The service as production runs it, in a process of its own, with its own start-up log.
    const child = spawn(join(ROOT, 'node_modules', '.bin', 'ts-node'), ['--transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        NODE_ENV: 'production',
        PORT: String(await freePort()),
        DATABASE_URL: database.url,
        AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'),
        AUDIT_STREAMS_KEY: randomBytes(32).toString('hex'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await until('the warning or an exit', () =>
        output.includes(INBOX_NOT_VACUUMED) || child.exitCode !== null ? true : undefined,
      );
      const warnings = output.split('\n').filter((line) => line.includes(INBOX_NOT_VACUUMED));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/WARN/);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      await owner.query('ALTER TABLE audit_log_inbox RESET (autovacuum_enabled)');
    }
  });

  it("follows the server's autovacuum and track_counts when the table does not opt out", async () => {
    const { rows } = await owner.query<{ on: boolean }>(
      `SELECT current_setting('autovacuum')::boolean AND current_setting('track_counts')::boolean AS on`,
    );
    const t = await createTestApp({}, {}, database.url);
    try {
      expect(await t.app.get(AuditSealerService).inboxVacuumed()).toBe(rows[0].on);
    } finally {
      await t.close();
    }
    // track_counts off for the service's sessions: autovacuum has no counts to act on.
    const url = new URL(database.url);
    url.searchParams.set('options', '-c track_counts=off');
    const blind = await createTestApp({}, {}, url.toString());
    try {
      expect(await blind.app.get(AuditSealerService).inboxVacuumed()).toBe(false);
    } finally {
      await blind.close();
    }
  });
});

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from './database';
import { freePort } from './free-port';
import { ServiceProcess } from './service-process';

const run = promisify(execFile);
const ROOT = join(__dirname, '..');

/** The CLI as a user runs it: `npm run cli -- …`, one JSON line on stdout. */
async function cli(databaseUrl: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('npm', ['run', '-s', 'cli', '--', ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl, NODE_OPTIONS: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run cli', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  it('bootstraps a workspace and adds a member, printing the JSON lines of the contract', async () => {
    const boot = await cli(
      database.url,
      'bootstrap',
      '--workspace',
      'Acme',
      '--email',
      'alice@acme.test',
      '--name',
      'Alice',
    );
    expect(boot.code).toBe(0);
    const created = JSON.parse(boot.stdout.trim()) as { workspaceId: string; userId: string; token: string };
    expect(Object.keys(created).sort()).toEqual(['token', 'userId', 'workspaceId']);
    expect(created.token.length).toBeGreaterThanOrEqual(43);

    const added = await cli(
      database.url,
      'add-user',
      '--workspace',
      created.workspaceId,
      '--email',
      'bob@acme.test',
      '--name',
      'Bob',
      '--role',
      'member',
    );
    expect(added.code).toBe(0);
    const bob = JSON.parse(added.stdout.trim()) as { userId: string; token: string };
    expect(Object.keys(bob).sort()).toEqual(['token', 'userId']);

    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ email: string; role: string }>(
        `SELECT u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 ORDER BY u.email`,
        [created.workspaceId],
      );
      expect(rows).toEqual([
        { email: 'alice@acme.test', role: 'admin' },
        { email: 'bob@acme.test', role: 'member' },
      ]);
      // Each command's changes are recorded as a system action naming the command; no token in any.
      const token = await cli(database.url, 'token', '--email', 'bob@acme.test');
      expect(token.code).toBe(0);
      const { rows: recorded } = await client.query<Record<string, string>>(
        `SELECT action, resource_type, resource_id::text, actor_kind, actor_name, changes::text FROM audit_logs
         WHERE workspace_id = $1 ORDER BY occurred_at, id`,
        [created.workspaceId],
      );
      expect(recorded.map((r) => [r.resource_type, r.action, r.actor_kind, r.actor_name])).toEqual([
        ['workspace', 'created', 'system', 'cli bootstrap'],
        ['member', 'created', 'system', 'cli bootstrap'],
        ['api_token', 'created', 'system', 'cli bootstrap'],
        ['member', 'created', 'system', 'cli add-user'],
        ['api_token', 'created', 'system', 'cli add-user'],
        ['api_token', 'created', 'system', 'cli token'],
      ]);
      expect(recorded[3].resource_id).toBe(bob.userId);
      const text = JSON.stringify(recorded);
      for (const secret of [created.token, bob.token, JSON.parse(token.stdout.trim()).token as string]) {
        expect(text).not.toContain(secret);
      }
    } finally {
      await client.end();
    }
  });

  it('runs the retention job on demand, recorded as a system run, and honours the off switch', async () => {
    const ran = await cli(database.url, 'retention');
    expect(ran.code).toBe(0);
    const summary = JSON.parse(ran.stdout.trim()) as { runId: string; status: string; entriesRemoved: number };
    expect(summary).toMatchObject({ status: 'succeeded', entriesRemoved: 0, droppedPartitions: [] });
    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT status, actor FROM audit_retention_runs WHERE id = $1`, [
        summary.runId,
      ]);
      expect(rows).toEqual([{ status: 'succeeded', actor: 'system' }]);
    } finally {
      await client.end();
    }
    const off = await run('npm', ['run', '-s', 'cli', '--', 'retention'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: database.url, NODE_OPTIONS: '', AUDIT_RETENTION: 'off' },
    });
    expect(JSON.parse(off.stdout.trim())).toEqual({ skipped: 'retention is off (AUDIT_RETENTION=off)' });
  });

  it('seeds nothing on PostgreSQL unless asked: the service starts empty, db:seed creates the demo and prints its tokens', async () => {
    const empty = await createTestDatabase();
    const client = new Client({ connectionString: empty.url });
    await client.connect();
    const keys = mkdtempSync(join(tmpdir(), 'audit-cli-'));
    const service = new ServiceProcess(
      {
        DATABASE_URL: empty.url,
        AUDIT_SIGNING_KEY_FILE: join(keys, 'signing-key.pem'),
        AUDIT_STREAMS_KEY_FILE: join(keys, 'streams-key'),
      },
      await freePort(),
    );
    try {
      await service.start();
      await service.stop();
      expect(service.output).toContain('Tokens are shown only when they are made');
      expect(service.output).not.toContain('Demo workspace');
      expect((await client.query('SELECT id FROM workspaces')).rows).toEqual([]);

      const seeded = await run('npm', ['run', '-s', 'db:seed'], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: empty.url, NODE_OPTIONS: '' },
      });
      const demo = JSON.parse(seeded.stdout.trim()) as {
        workspaceId: string;
        admin: { email: string; token: string };
        member: { email: string; token: string };
      };
      expect(demo).toEqual({
        workspaceId: expect.any(String),
        admin: { email: 'alice@acme.test', token: expect.stringMatching(/^alog_/) },
        member: { email: 'bob@acme.test', token: expect.stringMatching(/^alog_/) },
      });
      const { rows } = await client.query<{ name: string; email: string; role: string }>(
        `SELECT w.name, u.email, m.role FROM workspaces w JOIN memberships m ON m.workspace_id = w.id
         JOIN users u ON u.id = m.user_id ORDER BY u.email`,
      );
      expect(rows).toEqual([
        { name: 'Acme', email: 'alice@acme.test', role: 'admin' },
        { name: 'Acme', email: 'bob@acme.test', role: 'member' },
      ]);
    } finally {
      await service.stop();
      await client.end();
      await empty.drop();
      rmSync(keys, { recursive: true, force: true });
    }
  }, 180_000);

  it('explains a bad call on stderr and exits 1', async () => {
    const unknown = await cli(database.url, 'frobnicate');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/Unknown command "frobnicate"[\s\S]*Usage:/);
    const badWorkspace = await cli(
      database.url,
      'add-user',
      '--workspace',
      'nope',
      '--email',
      'c@acme.test',
      '--name',
      'C',
      '--role',
      'member',
    );
    expect(badWorkspace.code).toBe(1);
    expect(badWorkspace.stderr).toMatch(/--workspace must be a workspace id/);
    const badRole = await cli(
      database.url,
      'add-user',
      '--workspace',
      '3b241101-e2bb-4255-8caf-4136c566a962',
      '--email',
      'c@acme.test',
      '--name',
      'C',
      '--role',
      'owner',
    );
    expect(badRole.stderr).toMatch(/--role must be admin or member/);
  });
});

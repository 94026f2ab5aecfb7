import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { createTestDatabase, databaseUrl, type TestDatabase } from './database';

const ROOT = join(__dirname, '..');

/** The server as `npm run start:prod` runs it, from source: exit code and what it printed. */
function start(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      join(ROOT, 'node_modules', '.bin', 'ts-node'),
      ['--transpile-only', 'src/main.ts'],
      { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '', NODE_ENV: 'production', ...env }, timeout: 90_000 },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

/** One line on stderr naming the cause and the fix; no stack trace, no error object. */
const expectOneLine = (stderr: string, message: RegExp) => {
  const lines = stderr.split('\n').filter((line) => line.trim() !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^Cannot start: /);
  expect(lines[0]).toMatch(message);
};

describe('Start-up failures', () => {
  it('database unreachable: one line, exit 1', async () => {
    const result = await start({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/audit', PORT: '65000' });
    expect(result.code).toBe(1);
    expectOneLine(
      result.stderr,
      /no PostgreSQL answers at 127\.0\.0\.1:1 .*Start PostgreSQL, or fix the host and port in DATABASE_URL/,
    );
  });

  it('with LOG_LEVEL=debug, the full error before that line', async () => {
    const result = await start({
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/audit',
      PORT: '65000',
      LOG_LEVEL: 'debug',
    });
    expect(result.code).toBe(1);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/^Cannot start: no PostgreSQL answers at 127\.0\.0\.1:1 /);
    expect(lines.slice(0, -1).join('\n')).toMatch(/ECONNREFUSED[\s\S]*\n\s+at /);
  });

  it('a setting out of its range: one line naming the variable and the range, exit 1', async () => {
    // An unreachable database, so that a value wrongly accepted ends in a different line, not a running server.
    const result = await start({
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/audit',
      PORT: '65000',
      AUDIT_STREAMS_BATCH_BYTES: '1023',
    });
    expect(result.code).toBe(1);
    expectOneLine(
      result.stderr,
      /^Cannot start: AUDIT_STREAMS_BATCH_BYTES="1023" is invalid: expected a whole number from 1024 to 104857600\.$/,
    );
  });

  it('database missing: one line, exit 1', async () => {
    const result = await start({ DATABASE_URL: databaseUrl('audit_no_such_database'), PORT: '65000' });
    expect(result.code).toBe(1);
    expectOneLine(result.stderr, /database "audit_no_such_database" does not exist .*createdb .*npm run db:migrate/);
  });

  describe('port in use', () => {
    let database: TestDatabase;
    let busy: Server;
    let port: number;
    beforeAll(async () => {
      database = await createTestDatabase();
      busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, resolve));
      port = (busy.address() as { port: number }).port;
    });
    afterAll(async () => {
      busy.close();
      await database.drop();
    });

    it('one line, exit 1', async () => {
      const result = await start({ DATABASE_URL: database.url, PORT: String(port) });
      expect(result.code).toBe(1);
      expectOneLine(result.stderr, new RegExp(`port ${port} is already in use.*set PORT to a free port`));
    });
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** What `npm start` prints on the embedded database: a short start, then the page, the tokens and a curl line. */
describe('npm start on the embedded database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-start-'));
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a progress line, no framework chatter, and ends with the page, the tokens and a working curl line', async () => {
    const port = await freePort();
    // What `npm start` runs (nest start builds, then node dist/main), from source to keep the test quick.
    child = spawn(join(ROOT, 'node_modules', '.bin', 'ts-node'), ['--transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', DATABASE_URL: '', PGLITE_DIR: join(dir, 'pglite'), PORT: String(port) },
    });
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (/^Try: curl .*$/m.test(stdout)) resolve();
      });
      child!.once('exit', (code) => reject(new Error(`exited ${code}: ${stdout}\n${stderr}`)));
    });
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Starting the embedded database in .*pglite/);
    expect(stdout).not.toMatch(/\[Nest\]/); // framework logs stay at warn level
    expect(lines.length).toBeLessThan(20);
    const last = lines.slice(-4);
    expect(last[0]).toBe(`The Audit Logs page: http://localhost:${port}/  (paste the admin's token)`);
    expect(last[1]).toMatch(/^ {2}admin {2}alice@acme\.test {2}token alog_\S+$/);
    expect(last[2]).toMatch(/^ {2}member bob@acme\.test {2}token alog_\S+$/);
    const curl = /^Try: curl -H "Authorization: Bearer (\S+)" (\S+)$/.exec(last[3]);
    expect(curl).not.toBeNull();
    const res = await fetch(curl![2], { headers: { Authorization: `Bearer ${curl![1]}` } });
    expect(res.status).toBe(200);
    expect(stderr).toBe('');
  }, 180_000);
});

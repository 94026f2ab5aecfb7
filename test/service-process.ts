import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { until } from './until';

const ROOT = join(__dirname, '..');

/**
 * The service as its own process (src/main.ts from source), as it runs in production: its own port,
 * its own start-up, everything it prints kept in `output`.
 */
export class ServiceProcess {
  private child?: ChildProcess;
  output = '';
  readonly base: string;

  constructor(
    private readonly env: Record<string, string>,
    private readonly port: number,
  ) {
    this.base = `http://127.0.0.1:${port}`;
  }

  /**
   * Starts it and waits until it says it listens and its health check answers (or throws naming what
   * it printed). The line matters on a busy machine: the port was free when chosen, and another
   * server taking it meanwhile would answer the health check for a service that failed to bind.
   */
  async start(): Promise<void> {
    const child = spawn(join(ROOT, 'node_modules', '.bin', 'ts-node'), ['--transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        NODE_ENV: 'production',
        LOG_LEVEL: 'log',
        PORT: String(this.port),
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    await until(
      `${this.base} answering`,
      async () => {
        if (child.exitCode !== null) throw new Error(`the service exited (${child.exitCode}): ${this.output}`);
        if (!this.output.includes(`listening on http://localhost:${this.port} `)) return undefined;
        return (await fetch(`${this.base}/api/health`).catch(() => undefined))?.status === 200 ? true : undefined;
      },
      120_000,
      200,
    );
  }

  /** SIGTERM, as an orchestrator stops it (or SIGKILL, as a crash), and wait for the exit. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }
}

import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { freePort } from './free-port';

const run = promisify(execFile);

/** PostgreSQL's own binaries (Debian's layout), or PG_BIN. */
export const PG_BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';

/** A PostgreSQL primary and its streaming hot standby, each on a port of its own, in a temporary folder. */
export interface ReplicaCluster {
  primaryUrl: string;
  standbyUrl: string;
  /** Runs SQL on the standby as a superuser (pause or resume its replay, read pg_stat_activity). */
  standby<T>(fn: (client: Client) => Promise<T>): Promise<T>;
  primary<T>(fn: (client: Client) => Promise<T>): Promise<T>;
  /** What each server's log holds so far (every statement it ran). */
  standbyLog(): string;
  primaryLog(): string;
  stopStandby(): Promise<void>;
  close(): Promise<void>;
}

/** initdb and postgres refuse to run as root: as root, the binaries run as the `postgres` OS user. */
function command(binary: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, binary);
  return userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

async function pg(binary: string, args: string[]): Promise<void> {
  const [file, argv] = command(binary, args);
  await run(file, argv, { timeout: 120_000 });
}

async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Starts a primary (initdb, wal_level=replica, trust on loopback) with an empty database `audit`,
 * and a hot standby made from it with `pg_basebackup -R -X stream`, PostgreSQL's own streaming
 * replication. `close()` stops both and removes the folder.
 */
export async function startReplicaCluster(): Promise<ReplicaCluster> {
  const root = mkdtempSync(join(tmpdir(), 'audit-replica-'));
  if (userInfo().uid === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: group } = await run('id', ['-g', 'postgres']);
    chownSync(root, Number(stdout.trim()), Number(group.trim()));
  }
  chmodSync(root, 0o700);
  const primaryDir = join(root, 'primary');
  const standbyDir = join(root, 'standby');
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  const started: string[] = [];
  const stop = async (dir: string) => {
    if (!started.includes(dir)) return;
    started.splice(started.indexOf(dir), 1);
    await pg('pg_ctl', ['-D', dir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
  };
  const close = async () => {
    await stop(standbyDir);
    await stop(primaryDir);
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await pg('initdb', ['-D', primaryDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    // Small and fast: nothing here needs to survive a crash.
    appendFileSync(
      join(primaryDir, 'postgresql.conf'),
      [
        `port = ${primaryPort}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${root}'`,
        'wal_level = replica',
        'max_wal_senders = 4',
        'fsync = off',
        'full_page_writes = off',
        'shared_buffers = 32MB',
        'max_connections = 60',
        // Every statement in the server's log, audit tag included: the test reads which server ran what.
        'log_statement = all',
        // A standby query that outlives the primary's vacuum of the inbox would otherwise be cancelled.
        'hot_standby_feedback = on',
        '',
      ].join('\n'),
    );
    await pg('pg_ctl', ['-D', primaryDir, '-l', join(root, 'primary.log'), '-w', 'start']);
    started.push(primaryDir);
    const primaryUrl = `postgresql://postgres@127.0.0.1:${primaryPort}/audit`;
    await withClient(`postgresql://postgres@127.0.0.1:${primaryPort}/postgres`, (c) =>
      c.query('CREATE DATABASE audit'),
    );
    await pg('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      standbyDir,
      '-R',
      '-X',
      'stream',
      // An immediate checkpoint: the default spread one waits most of checkpoint_timeout.
      '--checkpoint=fast',
      '--no-sync',
    ]);
    writeFileSync(join(standbyDir, 'postgresql.auto.conf'), `port = ${standbyPort}\n`, { flag: 'a' });
    await pg('pg_ctl', ['-D', standbyDir, '-l', join(root, 'standby.log'), '-w', 'start']);
    started.push(standbyDir);
    const standbyUrl = `postgresql://postgres@127.0.0.1:${standbyPort}/audit`;
    return {
      primaryUrl,
      standbyUrl,
      standby: (fn) => withClient(standbyUrl, fn),
      primary: (fn) => withClient(primaryUrl, fn),
      standbyLog: () => readFileSync(join(root, 'standby.log'), 'utf8'),
      primaryLog: () => readFileSync(join(root, 'primary.log'), 'utf8'),
      stopStandby: () => stop(standbyDir),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

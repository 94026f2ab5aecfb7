import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDatabaseUnavailable } from '../common/database-unavailable';
import { DATABASE_CONNECTION, type DatabaseConnection } from './database-connection';
import { type AppPrismaClient, PRISMA } from './prisma-client.factory';

/** The streaming replica's client and connection (DATABASE_REPLICA_URL), or null without one. */
export const REPLICA_PRISMA = Symbol('REPLICA_PRISMA');
export const REPLICA_CONNECTION = Symbol('REPLICA_CONNECTION');

/** How long a read that must see the primary's latest state waits for the replica before it reads the primary. */
export const REPLICA_CATCH_UP_MS = 1000;
const CATCH_UP_POLL_MS = 10;

/** Which database answered a read. */
export type ReadSource = 'replica' | 'primary';

/**
 * Where the audit log's reads go: the streaming replica when DATABASE_REPLICA_URL is set, the primary
 * otherwise. Writes, the sealer, digests and retention never come here: they use PRISMA.
 *
 * A replica replays the primary's log a little behind it, always as a consistent earlier state. A read
 * that can accept that (a page of the list, an export) runs there; a read that must include what was
 * just committed on the primary (an entry looked up by id that the replica does not have yet, a
 * verification right after its seal) waits for the replica or reads the primary. When the replica
 * cannot be reached at all, reads go to the primary, so that its outage costs load, not the audit view.
 */
@Injectable()
export class ReadDatabase {
  private readonly logger = new Logger('ReadReplica');
  private replicaDownLogged = false;

  constructor(
    @Inject(PRISMA) readonly primary: AppPrismaClient,
    @Inject(DATABASE_CONNECTION) private readonly primaryConnection: DatabaseConnection,
    @Inject(REPLICA_PRISMA) private readonly replica: AppPrismaClient | null,
    @Inject(REPLICA_CONNECTION) private readonly replicaConnection: DatabaseConnection | null,
  ) {}

  /** Runs `fn` on the replica (on the primary without one, or when the replica cannot be reached). */
  async read<T>(fn: (db: AppPrismaClient, source: ReadSource) => Promise<T>): Promise<T> {
    if (!this.replica) return fn(this.primary, 'primary');
    try {
      const result = await fn(this.replica, 'replica');
      this.replicaDownLogged = false;
      return result;
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      this.replicaUnavailable(error);
      return fn(this.primary, 'primary');
    }
  }

  /**
   * Runs `fn` on the replica once it has replayed everything the primary had written when this was
   * called; on the primary when the replica is not there within REPLICA_CATCH_UP_MS (or is down).
   */
  async readCaughtUp<T>(fn: (db: AppPrismaClient, source: ReadSource) => Promise<T>): Promise<T> {
    return (await this.caughtUp()) ? this.read(fn) : fn(this.primary, 'primary');
  }

  /**
   * The URLs an export's COPY may read from, in order: the replica (when caught up, if `caughtUp`),
   * then the primary. Empty on the embedded database, which has no COPY to a client.
   */
  async copySources(options: { caughtUp?: boolean } = {}): Promise<{ url: string; source: ReadSource }[]> {
    const primary = this.primaryConnection.url ? [{ url: this.primaryConnection.url, source: 'primary' as const }] : [];
    const replicaUrl = this.replicaConnection?.url;
    if (!replicaUrl || (options.caughtUp && !(await this.caughtUp()))) return primary;
    return [{ url: replicaUrl, source: 'replica' }, ...primary];
  }

  /** Logs (once per outage) that the replica could not be reached and its reads went to the primary. */
  replicaUnavailable(error: unknown): void {
    if (this.replicaDownLogged) return;
    this.replicaDownLogged = true;
    this.logger.warn(`The replica cannot be reached; reading from the primary: ${(error as Error).message}`);
  }

  /** True once the replica has replayed the primary's current WAL position, within REPLICA_CATCH_UP_MS. */
  private async caughtUp(): Promise<boolean> {
    if (!this.replica) return true;
    const [{ lsn }] = await this.primary.$queryRaw<{ lsn: string }[]>`SELECT pg_current_wal_lsn()::text AS lsn`;
    const deadline = Date.now() + REPLICA_CATCH_UP_MS;
    try {
      for (;;) {
        const [{ replayed }] = await this.replica.$queryRaw<{ replayed: boolean | null }[]>`
          SELECT pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn AS replayed`;
        if (replayed) return true;
        if (Date.now() >= deadline) return false;
        await sleep(CATCH_UP_POLL_MS);
      }
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      this.replicaUnavailable(error);
      return false;
    }
  }
}

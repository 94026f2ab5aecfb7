import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { DATABASE_CONNECTION, type DatabaseConnection } from '../../database/database-connection';
import { type AppPrismaClient, PRISMA } from '../../database/prisma-client.factory';

/** Entries one sealing transaction moves: bounded, so that a large backlog never holds one long transaction. */
const SEAL_BATCH = 5000;

export const INBOX_NOT_VACUUMED =
  'Autovacuum does not run on audit_log_inbox (the server has autovacuum or track_counts off, or the table ' +
  'has autovacuum_enabled = false): each sealed entry leaves a dead row there, and sealing slows as they pile ' +
  'up (from about 8,300 to 3,000 entries/s over four million). Turn autovacuum on, or have the owner of the ' +
  'log run VACUUM audit_log_inbox regularly.';

/**
 * Moves committed entries from the write path's inbox into the partitioned, indexed, hash-chained
 * log (`audit_log_seal`, in the database), on a timer and on demand. Writers never wait for it; the
 * database lets one sealer work at a time, whatever the number of service instances.
 */
@Injectable()
export class AuditSealerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AuditSealerService.name);
  private timer?: NodeJS.Timeout;
  /** Seal runs of this instance, one after the other. */
  private queue: Promise<number> = Promise.resolve(0);
  /** The queue when nothing is waiting in it. */
  private idle: Promise<number> | undefined = this.queue;

  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(DATABASE_CONNECTION) private readonly connection: DatabaseConnection,
  ) {}

  onApplicationBootstrap(): void {
    if (this.connection.kind === 'postgresql') {
      void this.inboxVacuumed().then(
        (vacuumed) => {
          if (!vacuumed) this.logger.warn(INBOX_NOT_VACUUMED);
        },
        () => undefined,
      );
    }
    if (this.config.auditSealIntervalMs === 0) return;
    this.timer = setInterval(() => {
      // A timer round that finds another sealer at work leaves the entries to it.
      if (this.queue === this.idle) {
        this.enqueue(false).catch((error: Error) => this.logger.warn(`Sealing the audit log failed: ${error.message}`));
      }
    }, this.config.auditSealIntervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.queue.catch(() => undefined);
  }

  /**
   * Whether PostgreSQL's autovacuum looks after the inbox: the server runs it (`autovacuum` and
   * `track_counts` on) and the table does not opt out. The migration has it vacuumed every 5,000
   * dead rows; without that, every sealed entry leaves a dead row that each later seal walks past.
   */
  async inboxVacuumed(): Promise<boolean> {
    const [{ vacuumed }] = await this.prisma.$queryRaw<{ vacuumed: boolean }[]>`
      SELECT current_setting('autovacuum')::boolean AND current_setting('track_counts')::boolean
             AND coalesce((SELECT option_value::boolean FROM pg_class c, pg_options_to_table(c.reloptions)
                           WHERE c.oid = 'audit_log_inbox'::regclass AND option_name = 'autovacuum_enabled'), true)
             AS vacuumed`;
    return vacuumed;
  }

  /**
   * Seals every entry committed before the call, waiting for a sealer of another instance if one is
   * at work; returns how many this call sealed.
   */
  seal(): Promise<number> {
    return this.enqueue(true);
  }

  private enqueue(wait: boolean): Promise<number> {
    const run = this.queue.catch(() => 0).then(() => this.sealAll(wait));
    const settled = run.catch(() => 0);
    this.queue = settled;
    this.idle = undefined;
    void settled.then(() => {
      if (this.queue === settled) this.idle = settled;
    });
    return run;
  }

  private async sealAll(wait: boolean): Promise<number> {
    let total = 0;
    for (;;) {
      const [{ sealed }] = await this.prisma.$queryRaw<{ sealed: number }[]>`
        SELECT "audit_log_seal"(${SEAL_BATCH}::int, ${wait}) AS sealed`;
      if (sealed < 0) return total;
      total += sealed;
      if (sealed < SEAL_BATCH) return total;
    }
  }
}

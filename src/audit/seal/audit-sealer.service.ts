import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { type AppPrismaClient, PRISMA } from '../../database/prisma-client.factory';

/** Entries one sealing transaction moves: bounded, so that a large backlog never holds one long transaction. */
const SEAL_BATCH = 5000;

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
  ) {}

  onApplicationBootstrap(): void {
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

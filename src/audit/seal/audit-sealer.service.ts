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
  private running?: Promise<number>;

  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.auditSealIntervalMs === 0) return;
    this.timer = setInterval(() => {
      this.seal().catch((error: Error) => this.logger.warn(`Sealing the audit log failed: ${error.message}`));
    }, this.config.auditSealIntervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /**
   * Seals every entry committed so far; returns how many it sealed. When another sealer holds the
   * database's sealing lock, it returns what it sealed until then: the other one carries on.
   */
  seal(): Promise<number> {
    this.running ??= this.sealAll().finally(() => (this.running = undefined));
    return this.running;
  }

  private async sealAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const [{ sealed }] = await this.prisma.$queryRaw<{ sealed: number }[]>`
        SELECT "audit_log_seal"(${SEAL_BATCH}::int) AS sealed`;
      if (sealed < 0) return total;
      total += sealed;
      if (sealed < SEAL_BATCH) return total;
    }
  }
}

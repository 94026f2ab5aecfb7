import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { type AppPrismaClient, PRISMA } from '../database/prisma-client.factory';

/** Refreshing `lastUsedAt` on every request would turn each read into a write. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * Keeps each token's `lastUsedAt` to within a minute, off the request's path: the write is started
 * after the token is accepted and never awaited by the request, at most once a minute per token
 * (here, and in the statement itself for other instances). `last_used_at` is a column the capture
 * never audits, so this write records no entry.
 */
@Injectable()
export class TokenUsageService implements OnApplicationShutdown {
  private readonly logger = new Logger('TokenUsage');
  private readonly pending = new Map<string, Promise<void>>();

  constructor(@Inject(PRISMA) private readonly prisma: AppPrismaClient) {}

  /** Notes a use of the token whose last recorded use was `lastUsedAt`. */
  used(tokenId: string, lastUsedAt: Date | null): void {
    if (lastUsedAt && Date.now() - lastUsedAt.getTime() < LAST_USED_RESOLUTION_MS) return;
    if (this.pending.has(tokenId)) return;
    const write = this.prisma.$executeRaw`
      UPDATE "api_tokens" SET "last_used_at" = now()
      WHERE "id" = ${tokenId}::uuid
        AND ("last_used_at" IS NULL OR "last_used_at" < now() - ${`${LAST_USED_RESOLUTION_MS} milliseconds`}::interval)`
      .then(
        () => undefined,
        (error: Error) => this.logger.warn(`Could not record the use of token ${tokenId}: ${error.message}`),
      )
      .finally(() => this.pending.delete(tokenId));
    this.pending.set(tokenId, write);
  }

  /** Lets the writes in flight finish before the database connection closes. */
  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.pending.values());
  }
}

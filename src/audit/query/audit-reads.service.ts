import { Inject, Injectable, Logger } from '@nestjs/common';
import { type AppPrismaClient, PRISMA } from '../../database/prisma-client.factory';
import type { Prisma } from '../../generated/prisma/client';
import type { AuditLogFilterDto } from './audit-log-query.dto';
import type { ChainVerification } from './audit-logs.service';

/** The filters of a query as they were given (unset ones left out). */
export function filtersUsed(filter: AuditLogFilterDto): Record<string, unknown> {
  const { userId, resourceType, action, requestId, resourceName, resourceId, from, to } = filter;
  return Object.fromEntries(
    Object.entries({ userId, resourceType, action, requestId, resourceName, resourceId, from, to }).filter(
      ([, value]) => value !== undefined,
    ),
  );
}

/**
 * Reads of the log that the log records about itself: exports and verifications. Each is one row
 * appended to `audit_log_reads` (the application may only insert there, hence `createMany`, which reads
 * nothing back), from which the database's
 * capture writes the `audit_log` entry, with the request's actor, like every other entry.
 */
@Injectable()
export class AuditReadsService {
  private readonly logger = new Logger('AuditReads');

  constructor(@Inject(PRISMA) private readonly prisma: AppPrismaClient) {}

  /**
   * An export that sent its first byte: `completed` false when it was cut off (client gone, stalled,
   * database failure), with the entries it had sent by then. A failure to record is logged, not
   * thrown: the response has already gone out.
   */
  async exported(
    workspaceId: string,
    details: { format: 'csv' | 'ndjson'; filters: AuditLogFilterDto; rowCount: number; completed: boolean },
  ): Promise<void> {
    try {
      await this.prisma.auditLogRead.createMany({
        data: {
          workspaceId,
          action: 'exported',
          format: details.format,
          filters: filtersUsed(details.filters) as Prisma.InputJsonObject,
          rowCount: details.rowCount,
          completed: details.completed,
        },
      });
    } catch (error) {
      this.logger.warn(`Could not record the export of workspace ${workspaceId}: ${(error as Error).message}`);
    }
  }

  /**
   * Whether the token of a running export may still read the workspace's log: not revoked, and its
   * user still an admin there. Read on the primary, where revocations and role changes are written.
   */
  async mayStillRead(tokenId: string, workspaceId: string): Promise<boolean> {
    const [row] = await this.prisma.$queryRaw<{ allowed: boolean }[]>`
      SELECT EXISTS (
        SELECT 1 FROM "api_tokens" t JOIN "memberships" m ON m."user_id" = t."user_id"
        WHERE t."id" = ${tokenId}::uuid AND t."revoked_at" IS NULL
          AND m."workspace_id" = ${workspaceId}::uuid AND m."role" = 'admin'
      ) AS allowed`;
    return row.allowed;
  }

  /** A verification's outcome: intact, entries checked, the first entry that breaks the chain. */
  async verified(workspaceId: string, outcome: ChainVerification & { extendsDigest?: boolean }): Promise<void> {
    const result: Record<string, unknown> = { intact: outcome.intact, entries: outcome.entries };
    if (outcome.firstBroken) result.firstBroken = outcome.firstBroken;
    if (outcome.extendsDigest !== undefined) result.extendsDigest = outcome.extendsDigest;
    await this.prisma.auditLogRead.createMany({
      data: { workspaceId, action: 'verified', result: result as Prisma.InputJsonObject },
    });
  }
}

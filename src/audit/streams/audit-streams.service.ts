import { BadRequestException, ConflictException, Inject, Injectable, NotFoundException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { type AppPrismaClient, PRISMA } from '../../database/prisma-client.factory';
import { Prisma } from '../../generated/prisma/client';
import {
  parseStreamUrl,
  refuseTextSecrets,
  resolvePublic,
  STREAM_RESOLVER,
  StreamDestinationError,
  type StreamResolver,
} from './stream-destination';
import { StreamSecretCipher } from './stream-secret-cipher';

/** Streams one workspace may have: each reads the whole log, so they are not free. */
export const MAX_STREAMS_PER_WORKSPACE = 10;

/** A stream as the API shows it; its secret is write-only. */
export interface AuditStreamStatus {
  id: string;
  url: string;
  createdAt: Date;
  /** The newest entry the destination accepted, and when; null until the first delivery. */
  lastDeliveredEntryId: string | null;
  lastDeliveredAt: Date | null;
  /** Age of the oldest entry of the workspace not yet delivered, in seconds (ms precision); 0 when caught up. */
  lagSeconds: number;
  /** Why the last attempt failed; null once a delivery succeeds. */
  lastError: string | null;
}

interface StatusRow {
  id: string;
  url: string;
  created_at: Date;
  last_entry_id: string | null;
  last_delivered_at: Date | null;
  last_error: string | null;
  lag_ms: number | null;
}

/** Creating, listing, reading and deleting a workspace's log streams; delivery is AuditStreamDeliverer's. */
@Injectable()
export class AuditStreamsService {
  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(STREAM_RESOLVER) private readonly resolver: StreamResolver,
    private readonly cipher: StreamSecretCipher,
  ) {}

  async create(workspaceId: string, rawUrl: string, secret: string): Promise<AuditStreamStatus> {
    let url: URL;
    try {
      url = parseStreamUrl(rawUrl, this.config.auditStreamsAllowPrivate);
      refuseTextSecrets(url);
      await resolvePublic(url, this.resolver, this.config.auditStreamsAllowPrivate);
    } catch (error) {
      if (error instanceof StreamDestinationError) throw new BadRequestException(error.message);
      throw error;
    }
    const id = randomUUID();
    // Counted and added under a lock of the workspace's streams, so that streams added at once
    // cannot pass the limit together.
    await this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`audit_streams ${workspaceId}`}, 0))::text`;
      const count = await tx.auditStream.count({ where: { workspaceId } });
      if (count >= MAX_STREAMS_PER_WORKSPACE) {
        throw new ConflictException(
          `A workspace has at most ${MAX_STREAMS_PER_WORKSPACE} log streams; delete one before adding another.`,
        );
      }
      // The capture records it as the workspace's change (the registry), and stamps its creator.
      await tx.auditStream.create({
        data: { id, workspaceId, url: url.href, secret: this.cipher.encrypt(secret, id), delivery: { create: {} } },
      });
    });
    return this.get(workspaceId, id);
  }

  async list(workspaceId: string): Promise<AuditStreamStatus[]> {
    return (await this.status(workspaceId)).map(toStatus);
  }

  async get(workspaceId: string, id: string): Promise<AuditStreamStatus> {
    const [row] = await this.status(workspaceId, id);
    if (!row) throw new NotFoundException(`Log stream ${id} not found in this workspace.`);
    return toStatus(row);
  }

  async remove(workspaceId: string, id: string): Promise<void> {
    // Its delivery state goes with it (ON DELETE CASCADE); a deliverer holding it stops at its next step.
    const { count } = await this.prisma.auditStream.deleteMany({ where: { id, workspaceId } });
    if (count === 0) throw new NotFoundException(`Log stream ${id} not found in this workspace.`);
  }

  /**
   * The lag is measured from the oldest entry not yet delivered: the next one in the sealed log after
   * the stream's position, or a committed entry still waiting to be sealed, whichever is older.
   */
  private status(workspaceId: string, id?: string): Promise<StatusRow[]> {
    const one = id ? Prisma.sql`AND s."id" = ${id}::uuid` : Prisma.empty;
    return this.prisma.$queryRaw<StatusRow[]>`
      SELECT s."id", s."url", s."created_at", d."last_entry_id", d."last_delivered_at", d."last_error",
             (extract(epoch FROM now() - least(
                (SELECT l."occurred_at" FROM "audit_log_sealed" l
                 WHERE l."workspace_id" = s."workspace_id" AND l."seq" > d."last_seq" ORDER BY l."seq" LIMIT 1),
                (SELECT min(i."occurred_at") FROM "audit_log_inbox" i WHERE i."workspace_id" = s."workspace_id")
             )) * 1000)::float8 AS "lag_ms"
      FROM "audit_streams" s JOIN "audit_stream_deliveries" d ON d."stream_id" = s."id"
      WHERE s."workspace_id" = ${workspaceId}::uuid ${one}
      ORDER BY s."created_at" DESC, s."id" DESC`;
  }
}

function toStatus(row: StatusRow): AuditStreamStatus {
  return {
    id: row.id,
    url: row.url,
    createdAt: row.created_at,
    lastDeliveredEntryId: row.last_entry_id,
    lastDeliveredAt: row.last_delivered_at,
    lagSeconds: row.lag_ms === null ? 0 : Math.max(0, Math.round(row.lag_ms)) / 1000,
    lastError: row.last_error,
  };
}

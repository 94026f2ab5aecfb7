import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { createHmac, randomUUID } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { type AppPrismaClient, PRISMA } from '../../database/prisma-client.factory';
import { Prisma } from '../../generated/prisma/client';
import { AUDIT_LOG_ROW_COLUMNS, type AuditLogRow, toAuditEntry } from '../query/audit-entry';
import { parseStreamUrl, resolvePublic, STREAM_RESOLVER, type StreamResolver } from './stream-destination';
import { StreamSecretCipher } from './stream-secret-cipher';

const COLUMNS = Prisma.raw(AUDIT_LOG_ROW_COLUMNS);
/** What a failure message keeps of the destination's answer. */
const ANSWER_EXCERPT = 200;

interface StreamState {
  workspace_id: string;
  url: string;
  secret: string;
  last_seq: string;
  failures: number;
}

/** An entry of the sealed log with its place in the workspace's chain (`seq`, as text: it is a bigint). */
export type SealedRow = AuditLogRow & { position: string };

/** One batch ready to send: its NDJSON body and the last entry in it. */
export interface Batch {
  body: Buffer;
  entries: number;
  lastSeq: string;
  lastEntryId: string;
}

/** Why an attempt failed, in words an admin can act on (never the secret). */
class DeliveryError extends Error {
  override name = 'DeliveryError';
}

/**
 * NDJSON lines of entries in `seq` order, each an AuditEntry exactly as the API returns it
 * (`toAuditEntry`), until `maxEntries` or until the body passes `maxBytes` (one entry at least).
 */
export function buildBatch(rows: SealedRow[], maxBytes: number): Batch | undefined {
  const lines: Buffer[] = [];
  let bytes = 0;
  let last: SealedRow | undefined;
  for (const row of rows) {
    const line = Buffer.from(`${JSON.stringify(toAuditEntry(row))}\n`);
    if (lines.length > 0 && bytes + line.length > maxBytes) break;
    lines.push(line);
    bytes += line.length;
    last = row;
  }
  if (!last) return undefined;
  return { body: Buffer.concat(lines, bytes), entries: lines.length, lastSeq: last.position, lastEntryId: last.id };
}

/** `sha256=<hex>`: the HMAC-SHA256 of the exact body with the stream's secret. */
export function signBatch(body: Buffer, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Exponential backoff with jitter: from `min` doubling per failure up to `max`, then 50–100 % of it. */
export function backoffMs(failures: number, min: number, max: number): number {
  const ceiling = Math.min(max, min * 2 ** Math.min(failures, 30));
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}

/**
 * Delivers every log stream: each instance polls for streams with sealed entries past their position,
 * takes a lease on each (row lock with SKIP LOCKED, then an expiry in the row, so that one instance
 * at a time delivers a stream and a dead instance's streams are taken over), and sends batches in
 * `seq` order, moving the stored position only after a 2xx. A failure keeps the position and sets
 * when to try again. Positions live in `audit_stream_deliveries`, which is not audited.
 */
@Injectable()
export class AuditStreamDeliverer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('AuditStreams');
  /** This process's name on the leases it holds. */
  private readonly owner = randomUUID();
  private readonly active = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();
  private readonly agents = {
    'http:': new http.Agent({ keepAlive: true }),
    'https:': new https.Agent({ keepAlive: true }),
  };
  private timer?: NodeJS.Timeout;
  private polling = false;

  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(STREAM_RESOLVER) private readonly resolver: StreamResolver,
    private readonly cipher: StreamSecretCipher,
  ) {}

  /**
   * How long a lease lasts unrenewed: a renewed lease always outlives the request that follows it
   * (bounded by the timeout), so another instance can take the stream only from a process that has
   * stopped delivering.
   */
  private get leaseMs(): number {
    return 2 * this.config.auditStreamsTimeoutMs + 10_000;
  }

  onApplicationBootstrap(): void {
    this.logger.log(`Delivering log streams; this instance's leases are held as ${this.owner}.`);
    this.timer = setInterval(() => void this.poll(), this.config.auditStreamsPollMs);
    this.timer.unref();
  }

  /** Before the database connection closes (`onApplicationShutdown`), so that the leases can be handed back. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.stopping.abort();
    await Promise.allSettled(this.active.values());
    // Hand the streams over at once rather than after the lease expires.
    await this.prisma.$executeRaw`
      UPDATE "audit_stream_deliveries" SET "lease_owner" = NULL, "lease_until" = NULL
      WHERE "lease_owner" = ${this.owner}::uuid`.catch(() => undefined);
    for (const agent of Object.values(this.agents)) agent.destroy();
  }

  /** Takes the due streams no other instance holds, up to this process's share, and starts each. */
  async poll(): Promise<void> {
    if (this.polling || this.stopping.signal.aborted) return;
    this.polling = true;
    try {
      const room = this.config.auditStreamsPerProcess - this.active.size;
      if (room <= 0) return;
      const claimed = await this.prisma.$queryRaw<{ stream_id: string }[]>`
        UPDATE "audit_stream_deliveries" d
        SET "lease_owner" = ${this.owner}::uuid, "lease_until" = now() + ${this.leaseMs} * interval '1 millisecond'
        FROM (SELECT d2."stream_id" FROM "audit_stream_deliveries" d2
              JOIN "audit_streams" s ON s."id" = d2."stream_id"
              JOIN "audit_chain_heads" h ON h."workspace_id" = s."workspace_id"
              WHERE d2."next_attempt_at" <= now() AND (d2."lease_until" IS NULL OR d2."lease_until" < now())
                AND h."seq" > d2."last_seq"
              ORDER BY d2."next_attempt_at" LIMIT ${room}
              FOR UPDATE OF d2 SKIP LOCKED) due
        WHERE d."stream_id" = due."stream_id"
        RETURNING d."stream_id"`;
      for (const { stream_id: id } of claimed) {
        const run: Promise<void> = this.deliver(id)
          .catch((error: Error) => this.logger.warn(`Log stream ${id}: ${error.message}`))
          .finally(() => {
            if (this.active.get(id) === run) this.active.delete(id);
          });
        this.active.set(id, run);
      }
    } catch (error) {
      if (!this.stopping.signal.aborted)
        this.logger.warn(`Looking for log streams to deliver failed: ${(error as Error).message}`);
    } finally {
      this.polling = false;
    }
  }

  /**
   * Sends batches while the stream has entries and this process holds it. The next batch is read
   * while the current one is on its way (and dropped if that one fails); each stored move of the
   * position renews the lease, just before the next batch is sent.
   */
  private async deliver(id: string): Promise<void> {
    const [state] = await this.prisma.$queryRaw<StreamState[]>`
      UPDATE "audit_stream_deliveries" d SET "lease_until" = now() + ${this.leaseMs} * interval '1 millisecond'
      FROM "audit_streams" s
      WHERE d."stream_id" = ${id}::uuid AND d."lease_owner" = ${this.owner}::uuid AND s."id" = d."stream_id"
      RETURNING s."workspace_id", s."url", s."secret", d."last_seq"::text, d."failures"`;
    if (!state) return; // deleted, or no longer ours
    let failures = state.failures;
    let next = this.read(state.workspace_id, state.last_seq);
    while (!this.stopping.signal.aborted) {
      const { batch, more, error } = await next;
      if (error) throw error;
      if (!batch) return this.release(id);
      next = more ? this.read(state.workspace_id, batch.lastSeq) : Promise.resolve({ more: false });
      try {
        await this.send(id, state, batch);
      } catch (error) {
        if (this.stopping.signal.aborted) return;
        return this.failed(id, failures, (error as Error).message);
      }
      const moved = await this.prisma.$executeRaw`
        UPDATE "audit_stream_deliveries"
        SET "last_seq" = ${batch.lastSeq}::bigint, "last_entry_id" = ${batch.lastEntryId}::uuid,
            "last_delivered_at" = now(), "last_error" = NULL, "failures" = 0, "next_attempt_at" = now(),
            "lease_owner" = CASE WHEN ${more} THEN "lease_owner" END,
            "lease_until" = CASE WHEN ${more} THEN now() + ${this.leaseMs} * interval '1 millisecond' END
        WHERE "stream_id" = ${id}::uuid AND "lease_owner" = ${this.owner}::uuid`;
      if (failures > 0) this.logger.log(`Log stream ${id} delivers again.`);
      failures = 0;
      if (moved === 0 || !more) return;
    }
  }

  /**
   * The batch after `afterSeq`, and whether more may follow it (a full batch, or one cut by the byte
   * cap); when none may, the stream is caught up and its lease is handed back with the position.
   * It never rejects (a read that fails is reported with `error`): it runs unawaited for a while.
   */
  private async read(workspaceId: string, afterSeq: string): Promise<{ batch?: Batch; more: boolean; error?: Error }> {
    try {
      const rows = await this.prisma.$queryRaw<SealedRow[]>`
        SELECT "seq"::text AS "position", ${COLUMNS} FROM "audit_log_sealed"
        WHERE "workspace_id" = ${workspaceId}::uuid AND "seq" > ${afterSeq}::bigint
        ORDER BY "seq" LIMIT ${this.config.auditStreamsBatch}`;
      const batch = buildBatch(rows, this.config.auditStreamsBatchBytes);
      const more = !!batch && (rows.length === this.config.auditStreamsBatch || batch.entries < rows.length);
      return { batch, more };
    } catch (error) {
      return { more: false, error: error as Error };
    }
  }

  private async release(id: string): Promise<void> {
    await this.prisma.$executeRaw`
      UPDATE "audit_stream_deliveries" SET "lease_owner" = NULL, "lease_until" = NULL
      WHERE "stream_id" = ${id}::uuid AND "lease_owner" = ${this.owner}::uuid`;
  }

  private async failed(id: string, failures: number, reason: string): Promise<void> {
    const delay = backoffMs(failures, this.config.auditStreamsRetryMinMs, this.config.auditStreamsRetryMaxMs);
    const message = `${reason} (attempt ${failures + 1}; retrying in ${(delay / 1000).toFixed(1)} s)`;
    if (failures === 0) this.logger.warn(`Log stream ${id}: ${message}`);
    await this.prisma.$executeRaw`
      UPDATE "audit_stream_deliveries"
      SET "last_error" = ${message}, "last_error_at" = now(), "failures" = "failures" + 1,
          "next_attempt_at" = now() + ${delay} * interval '1 millisecond', "lease_owner" = NULL, "lease_until" = NULL
      WHERE "stream_id" = ${id}::uuid AND "lease_owner" = ${this.owner}::uuid`;
  }

  /**
   * POSTs the batch. The host is resolved and checked here, before each connection, and the
   * connection goes to the address checked (a custom `lookup`), so a name rebound to an internal
   * address after the stream was created is refused, not contacted.
   */
  private async send(id: string, state: StreamState, batch: Batch): Promise<void> {
    let secret: string;
    try {
      secret = this.cipher.decrypt(state.secret, id);
    } catch (error) {
      throw new DeliveryError((error as Error).message);
    }
    const allowPrivate = this.config.auditStreamsAllowPrivate;
    const url = parseStreamUrl(state.url, allowPrivate);
    const addresses = await resolvePublic(url, this.resolver, allowPrivate);
    const timeout = this.config.auditStreamsTimeoutMs;
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(timeout)]);
    const protocol = url.protocol as 'http:' | 'https:';
    await new Promise<void>((resolve, reject) => {
      const request = (protocol === 'https:' ? https : http).request(
        url,
        {
          method: 'POST',
          agent: this.agents[protocol],
          signal,
          lookup: pinnedLookup(addresses),
          headers: {
            'Content-Type': 'application/x-ndjson',
            'Content-Length': batch.body.length,
            'User-Agent': 'audit-log-service',
            'X-Audit-Signature': signBatch(batch.body, secret),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          response.on('data', (chunk: Buffer) => {
            if (kept < ANSWER_EXCERPT) chunks.push(chunk);
            kept += chunk.length;
          });
          response.on('error', reject);
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve();
            const excerpt = Buffer.concat(chunks).toString('utf8').slice(0, ANSWER_EXCERPT).replace(/\s+/g, ' ').trim();
            reject(new DeliveryError(`the destination answered ${status}${excerpt ? `: ${excerpt}` : ''}`));
          });
        },
      );
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (signal.aborted && !this.stopping.signal.aborted) {
          reject(new DeliveryError(`no answer within ${timeout} ms`));
        } else {
          reject(new DeliveryError(`cannot reach the destination: ${error.code ?? ''} ${error.message}`.trim()));
        }
      });
      request.end(batch.body);
    });
  }
}

/** A `lookup` for http(s).request that answers with addresses already resolved and checked. */
function pinnedLookup(addresses: LookupAddress[]) {
  return (
    _host: string,
    options: { all?: boolean },
    callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    if (options.all) callback(null, addresses);
    else callback(null, addresses[0].address, addresses[0].family);
  };
}

import {
  BadRequestException,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { type AppPrismaClient, PRISMA } from '../../database/prisma-client.factory';
import { instantRange } from '../query/audit-log-query.dto';
import { AuditLogsService, type ChainVerification } from '../query/audit-logs.service';
import { AuditSealerService } from '../seal/audit-sealer.service';
import { type Digest, digestHash, digestSignatureValid, keyIdOf, signDigest } from './audit-digest';
import { AuditSigningKeyService } from './audit-signing-key.service';

const DIGEST_JOB = 'audit-digests';
/** Held (transaction-scoped) by whoever issues digests, in any instance: one issuer at a time. */
const DIGEST_LOCK = 7460013;
/** The digests list answers at most this many, newest first. */
export const MAX_DIGESTS = 1000;

interface DigestRow {
  workspace_id: string;
  seq: bigint;
  head_hash: string;
  issued_at: Date;
  previous_digest_hash: string | null;
  key_id: string;
  signature: string;
}

function toDigest(row: DigestRow): Digest {
  return {
    workspaceId: row.workspace_id,
    seq: Number(row.seq),
    headHash: row.head_hash,
    issuedAt: row.issued_at.toISOString(),
    previousDigestHash: row.previous_digest_hash,
    keyId: row.key_id,
    signature: row.signature,
  };
}

/** Where a log stopped matching what was signed. */
export interface DigestMismatch {
  reason: string;
  /** The earliest chain position known to differ from a signed hash, and its entry (null when gone). */
  seq: number;
  id: string | null;
  /**
   * The latest position that still has its signed hash (another digest of the workspace), 0 when
   * none: the first entry that was changed lies after it, at `seq` at the latest.
   */
  lastMatchingSeq: number;
}

export type DigestVerification = ChainVerification & { extendsDigest: boolean; digestMismatch?: DigestMismatch };

/**
 * Signed digests of each workspace's hash chain: issued on a schedule for every workspace whose
 * head moved since its last digest, and on demand; and verification of today's log against one.
 */
@Injectable()
export class AuditDigestsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AuditDigests');

  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
    private readonly sealer: AuditSealerService,
    private readonly keys: AuditSigningKeyService,
    private readonly auditLogs: AuditLogsService,
  ) {}

  private scheduled?: Promise<void>;

  onApplicationBootstrap(): void {
    const job = CronJob.from({
      cronTime: this.config.auditDigestSchedule,
      timeZone: 'UTC',
      onTick: () => {
        this.scheduled = this.issueScheduled();
      },
      start: true,
    });
    this.scheduler.addCronJob(DIGEST_JOB, job);
  }

  /** Waits for a scheduled run in flight, so that it does not outlive the database connection. */
  async onApplicationShutdown(): Promise<void> {
    if (this.scheduler.doesExist('cron', DIGEST_JOB)) this.scheduler.deleteCronJob(DIGEST_JOB);
    await this.scheduled;
  }

  /** The scheduled run; failures are logged, never thrown into the scheduler. */
  async issueScheduled(): Promise<void> {
    try {
      const issued = await this.issueForMovedHeads();
      if (issued.length) this.logger.log(`signed ${issued.length} audit digests`);
    } catch (error) {
      this.logger.error(`issuing audit digests failed: ${(error as Error).message}`);
    }
  }

  /** Seals, then signs a digest for every workspace whose chain head moved since its last digest. */
  async issueForMovedHeads(): Promise<Digest[]> {
    await this.sealer.seal();
    return this.underLock(async (tx) => {
      const moved = await tx.$queryRaw<{ workspace_id: string }[]>`
        SELECT h."workspace_id" FROM "audit_chain_heads" h
        WHERE h."seq" > 0 AND NOT EXISTS (
          SELECT 1 FROM (SELECT d."seq", d."head_hash" FROM "audit_digests" d WHERE d."workspace_id" = h."workspace_id"
                         ORDER BY d."issued_at" DESC LIMIT 1) last
          WHERE last."seq" = h."seq" AND last."head_hash" = h."hash")
        ORDER BY h."workspace_id"`;
      const issued: Digest[] = [];
      for (const { workspace_id } of moved) issued.push(await this.issueLocked(tx, workspace_id));
      return issued;
    });
  }

  /** Seals what is committed, then signs the workspace's chain head now. */
  async issue(workspaceId: string): Promise<Digest> {
    await this.sealer.seal();
    return this.underLock((tx) => this.issueLocked(tx, workspaceId));
  }

  private underLock<T>(fn: (tx: AppPrismaClient) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT pg_advisory_xact_lock(${DIGEST_LOCK}::bigint)::text AS locked`;
        return fn(tx as unknown as AppPrismaClient);
      },
      { maxWait: 30_000, timeout: 120_000 },
    );
  }

  private async issueLocked(tx: AppPrismaClient, workspaceId: string): Promise<Digest> {
    const [head] = await tx.$queryRaw<{ seq: bigint; hash: string }[]>`
      SELECT "seq", "hash" FROM "audit_chain_heads" WHERE "workspace_id" = ${workspaceId}::uuid`;
    const [previous] = await tx.$queryRaw<DigestRow[]>`
      SELECT * FROM "audit_digests" WHERE "workspace_id" = ${workspaceId}::uuid ORDER BY "issued_at" DESC LIMIT 1`;
    // Strictly later than the previous digest, so that issue order is time order.
    const now = Date.now();
    const issuedAt = new Date(previous ? Math.max(now, previous.issued_at.getTime() + 1) : now);
    const key = this.keys.current();
    const digest = signDigest(
      {
        workspaceId,
        seq: Number(head?.seq ?? 0n),
        headHash: head?.hash ?? '',
        issuedAt: issuedAt.toISOString(),
        previousDigestHash: previous ? digestHash(toDigest(previous)) : null,
      },
      key.privateKey,
    );
    await tx.$executeRaw`
      INSERT INTO "audit_digests" ("workspace_id", "seq", "head_hash", "issued_at", "previous_digest_hash", "key_id", "signature", "digest_hash")
      VALUES (${workspaceId}::uuid, ${digest.seq}::bigint, ${digest.headHash}, ${issuedAt}::timestamptz, ${digest.previousDigestHash},
              ${digest.keyId}, ${digest.signature}, ${digestHash(digest)})`;
    return digest;
  }

  /** The workspace's digests issued in [from, to), newest first, at most MAX_DIGESTS. */
  async list(workspaceId: string, from?: string, to?: string): Promise<Digest[]> {
    const { since = null, until = null } = instantRange(from, to);
    const rows = await this.prisma.$queryRaw<DigestRow[]>`
      SELECT * FROM "audit_digests" WHERE "workspace_id" = ${workspaceId}::uuid
        AND (${since}::timestamptz IS NULL OR "issued_at" >= ${since}::timestamptz)
        AND (${until}::timestamptz IS NULL OR "issued_at" < ${until}::timestamptz)
      ORDER BY "issued_at" DESC LIMIT ${MAX_DIGESTS}`;
    return rows.map(toDigest);
  }

  /** Whether a published key signed the digest; the reason when not. */
  async signatureProblem(digest: Digest): Promise<string | undefined> {
    const publicKey = await this.keys.publicKey(digest.keyId);
    if (!publicKey || keyIdOf(publicKey) !== digest.keyId) return `no published key has the id ${digest.keyId}`;
    if (!digestSignatureValid(digest, publicKey)) {
      return `the signature does not verify with the published key ${digest.keyId}: the digest is not one this service signed`;
    }
    return undefined;
  }

  /**
   * Today's log against a digest, in O(entries after the digest's seq): the signature, then the
   * entry at the digest's seq (it must still be there, hash to its recorded hash, and that hash must
   * be the signed one), then the chain from there to today's head.
   */
  async verify(workspaceId: string, digest: Digest): Promise<DigestVerification> {
    if (digest.workspaceId !== workspaceId) {
      throw new BadRequestException(`digest.workspaceId is ${digest.workspaceId}, not this workspace (${workspaceId})`);
    }
    const signature = await this.signatureProblem(digest);
    // A digest this service did not sign names no position worth a check of its own: the answer is
    // the whole chain's check, which such requests share with GET …/verify.
    const chain = await this.auditLogs.verifyChainFrom(workspaceId, signature ? 0 : digest.seq);
    if (signature) {
      return {
        ...chain,
        extendsDigest: false,
        digestMismatch: { reason: signature, seq: digest.seq, id: null, lastMatchingSeq: 0 },
      };
    }
    const at = chain.anchor;
    const { anchor: _anchor, ...body } = chain;
    void _anchor;
    if (digest.seq === 0) return { ...body, extendsDigest: body.intact };
    let problem: string | undefined;
    if (!at) problem = `the log no longer holds an entry at seq ${digest.seq}: it was removed or the chain was rewound`;
    else if (!at.contentOk)
      problem = `the entry at seq ${digest.seq} was altered after the digest: it no longer hashes to its recorded hash`;
    else if (at.hash !== digest.headHash)
      problem = `the entry at seq ${digest.seq} no longer has the hash the digest signed: the log was rewritten at or before it`;
    if (problem) {
      return {
        ...body,
        extendsDigest: false,
        digestMismatch: await this.locate(workspaceId, digest, problem, at?.id ?? null),
      };
    }
    return { ...body, extendsDigest: body.intact };
  }

  /**
   * Narrows down where a rewrite began with the workspace's other signed digests before this one:
   * the latest that the log still matches, and the earliest after it that it does not.
   */
  private async locate(
    workspaceId: string,
    digest: Digest,
    reason: string,
    id: string | null,
  ): Promise<DigestMismatch> {
    const earlier = await this.prisma.$queryRaw<(DigestRow & { id: string | null; matches: boolean })[]>`
      SELECT d.*, a."id", coalesce(a."hash" = d."head_hash" AND a."hash" = "audit_log_digest"(a."prev_hash", a), false) AS matches
      FROM "audit_digests" d
      LEFT JOIN "audit_log_sealed" a ON a."workspace_id" = d."workspace_id" AND a."seq" = d."seq"
      WHERE d."workspace_id" = ${workspaceId}::uuid AND d."seq" > 0 AND d."seq" < ${digest.seq}::bigint
      ORDER BY d."seq" DESC, d."issued_at" DESC`;
    let first: DigestMismatch = { reason, seq: digest.seq, id, lastMatchingSeq: 0 };
    const narrowed = (lastMatchingSeq: number): DigestMismatch => ({
      ...first,
      reason: `${reason}; the first changed entry is after seq ${lastMatchingSeq} and at or before seq ${first.seq} (the earliest signed position that differs)`,
      lastMatchingSeq,
    });
    for (const row of earlier) {
      const signed = toDigest(row);
      if (signed.seq >= first.seq) continue; // a position already known to differ
      if ((await this.signatureProblem(signed)) !== undefined) continue; // a row this service did not sign proves nothing
      if (row.matches) return narrowed(signed.seq);
      first = { ...first, seq: signed.seq, id: row.id };
    }
    return narrowed(0);
  }
}

import { BadRequestException, Inject, Injectable, NotFoundException } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { type AppPrismaClient, PRISMA } from '../../database/prisma-client.factory';
import { Prisma } from '../../generated/prisma/client';
import {
  actionNameSql,
  AUDIT_ACTIONS,
  type AuditAction,
  AUDITED_TYPES,
  type AuditedType,
} from '../capture/audited-resources';
import { AuditSealerService } from '../seal/audit-sealer.service';
import { AuditCursorCodec, type CursorPosition } from './audit-cursor';
import { AUDIT_LOG_ROW_COLUMNS, type AuditEntry, type AuditLogRow, CSV_COLUMNS, toAuditEntry } from './audit-entry';
import type { AuditLogFilterDto } from './audit-log-query.dto';

export interface AuditLogPage {
  items: AuditEntry[];
  nextCursor: string | null;
}

export interface ChainVerification {
  intact: boolean;
  /** Entries checked, in chain order. */
  entries: number;
  headHash: string | null;
  /** Committed entries the sealer has not yet given a place in the chain. */
  unsealed: number;
  /** The first entry where the chain breaks, and why; absent when intact. */
  firstBroken?: { id: string | null; seq: number; reason: string };
}

export interface FilterChoices {
  users: { id: string; name: string; email: string }[];
  resourceTypes: AuditedType[];
  actions: AuditAction[];
}

const COLUMNS = Prisma.raw(AUDIT_LOG_ROW_COLUMNS);

const EXPORT_BATCH = 5000;
/** A name search first looks for its page among this many times `take` newest entries. */
const NAME_WINDOW = 20;
/** Past this many resources with a matching name, a search reads the trigram index instead. */
const MAX_NAMED_RESOURCES = 200;

/** "Segment updated", computed by PostgreSQL from the same registry as `actionName()`. */
const ACTION_NAME = Prisma.raw(actionNameSql());
const ISO_TIME = Prisma.raw(`to_char("occurred_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);
/** The actor's kind and name, as `actorOf()` derives them. */
const ACTOR_KIND = `coalesce("actor_kind", CASE WHEN "actor_id" IS NULL THEN 'system' ELSE 'user' END)`;
const ACTOR_NAME = `coalesce("actor_name", ${ACTOR_KIND})`;

/** One AuditEntry as JSON text, shaped exactly as `toAuditEntry` shapes it. */
const NDJSON_SELECT = Prisma.sql`"id", "occurred_at", json_build_object(
  'id', "id", 'occurredAt', ${ISO_TIME}, 'action', "action", 'actionName', ${ACTION_NAME},
  'resourceType', "resource_type", 'resourceId', "resource_id", 'resourceName', "resource_name",
  'user', CASE WHEN "actor_id" IS NULL THEN NULL
          ELSE json_build_object('id', "actor_id", 'name', "actor_name", 'email', "actor_email") END,
  'actor', json_build_object('kind', ${Prisma.raw(ACTOR_KIND)}, 'name', ${Prisma.raw(ACTOR_NAME)}),
  'requestId', "request_id", 'changes', "changes")::text AS "line"`;

/**
 * NDJSON with `chain=true`: each AuditEntry line gains `chain`, what an offline verifier needs to
 * recompute the entry's chain hash (see src/audit/digests/chain-hash.ts): its place in the chain
 * (`seq`, `prevHash`, `hash`; null while unsealed) and the stored fields that AuditEntry shows
 * differently or not at all.
 */
const NDJSON_CHAIN_SELECT = Prisma.sql`"id", "occurred_at", json_build_object(
  'id', "id", 'occurredAt', ${ISO_TIME}, 'action', "action", 'actionName', ${ACTION_NAME},
  'resourceType', "resource_type", 'resourceId', "resource_id", 'resourceName', "resource_name",
  'user', CASE WHEN "actor_id" IS NULL THEN NULL
          ELSE json_build_object('id', "actor_id", 'name', "actor_name", 'email', "actor_email") END,
  'actor', json_build_object('kind', ${Prisma.raw(ACTOR_KIND)}, 'name', ${Prisma.raw(ACTOR_NAME)}),
  'requestId', "request_id", 'changes', "changes",
  'chain', json_build_object('seq', "seq", 'prevHash', "prev_hash", 'hash', "hash", 'workspaceId', "workspace_id",
    'actorKind', "actor_kind", 'actorId', "actor_id", 'actorName', "actor_name", 'actorEmail', "actor_email",
    'ip', "ip", 'userAgent', "user_agent"))::text AS "line"`;

/**
 * One CSV cell, rendered by PostgreSQL as csv-stringify renders it with `escape_formulas`: a leading
 * = + - @ tab or CR gets a ' in front (formula injection), then RFC 4180 quoting. In SQL so that
 * export rows reach the response as text, without being decoded and re-encoded per row.
 */
function csvCell(expression: string): string {
  const guarded = `(CASE WHEN ${expression} ~ '^[=+@\\t\\r-]' THEN '''' || ${expression} ELSE ${expression} END)`;
  return `(CASE WHEN ${guarded} ~ '[",\\r\\n]' THEN '"' || replace(${guarded}, '"', '""') || '"' ELSE ${guarded} END)`;
}

/** The contract's CSV columns (CSV_COLUMNS), one line per entry. */
const CSV_SELECT = Prisma.raw(
  `"id", "occurred_at", concat_ws(',', ${[
    `to_char("occurred_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
    ACTION_NAME.text,
    '"resource_type"',
    '"resource_name"',
    `coalesce("actor_name", '')`,
    `coalesce("actor_email", '')`,
    '"resource_id"::text',
    `coalesce("request_id", '')`,
    '"id"::text',
    '"action"',
    ACTOR_KIND,
    ACTOR_NAME,
    '"changes"::text',
  ]
    .map(csvCell)
    .join(', ')}) AS "line"`,
);

interface ExportRow {
  id: string;
  occurred_at: Date;
  line: string;
}

/**
 * `column = value` for one value, `= ANY(values)` for several: with a single value the planner
 * reads the (workspace, column, occurred_at) index in order and stops after a page (0.2 ms
 * instead of 6 ms for one user over 200,000 entries, 8 ms instead of 70 ms with every filter).
 */
function oneOf(column: 'actor_id' | 'resource_type' | 'action', values: string[], type: 'uuid' | 'text'): Prisma.Sql {
  return values.length === 1
    ? Prisma.sql`${Prisma.raw(`"${column}"`)} = ${values[0]}::${Prisma.raw(type)}`
    : Prisma.sql`${Prisma.raw(`"${column}"`)} = ANY(${values}::${Prisma.raw(`${type}[]`)})`;
}

const DAY_MS = 86_400_000;

/** The time a UUIDv7 carries (its first 48 bits, Unix milliseconds), or undefined for another version. */
export function uuidv7Time(id: string): Date | undefined {
  const hex = id.replace(/-/g, '');
  if (hex.length !== 32 || hex[12] !== '7') return undefined;
  return new Date(parseInt(hex.slice(0, 12), 16));
}

/** `%`, `_` and `\` in a searched name match themselves. */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Reads the log: keyset pages newest first, one entry, filter choices, export batches. */
@Injectable()
export class AuditLogsService {
  private readonly cursors: AuditCursorCodec;

  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly sealer: AuditSealerService,
  ) {
    this.cursors = new AuditCursorCodec(config.cursorSecret);
  }

  async list(workspaceId: string, filter: AuditLogFilterDto, limit = 50, cursor?: string): Promise<AuditLogPage> {
    const after = cursor ? this.cursors.decode(workspaceId, cursor) : undefined;
    const rows = await this.page(workspaceId, filter, limit + 1, after);
    const items = rows.slice(0, limit).map(toAuditEntry);
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return {
      items,
      nextCursor: last ? this.cursors.encode(workspaceId, { occurredAt: last.occurred_at, id: last.id }) : null,
    };
  }

  async get(workspaceId: string, id: string): Promise<AuditEntry> {
    // An entry's id is a UUIDv7 of its time: look only in the month(s) around it. Other ids (entries
    // imported with their own) are looked up in every month.
    const at = uuidv7Time(id);
    const within = at
      ? Prisma.sql` AND "occurred_at" >= ${new Date(at.getTime() - DAY_MS)}::timestamptz AND "occurred_at" < ${new Date(at.getTime() + DAY_MS)}::timestamptz`
      : Prisma.empty;
    const [row] = await this.prisma.$queryRaw<AuditLogRow[]>`
      SELECT ${COLUMNS} FROM "audit_logs" WHERE "workspace_id" = ${workspaceId}::uuid AND "id" = ${id}::uuid${within}`;
    if (!row) throw new NotFoundException(`Audit entry ${id} not found.`);
    return toAuditEntry(row);
  }

  /**
   * The whole filtered log as export text, newest first, a batch of rows at a time: memory stays
   * flat whatever the total. PostgreSQL renders each NDJSON or CSV line, so the rows are not
   * decoded into objects only to be encoded again.
   */
  async *exportChunks(
    workspaceId: string,
    filter: AuditLogFilterDto,
    format: 'csv' | 'ndjson',
    chain = false,
    /** Counts the entries yielded so far. */
    progress: { rows: number } = { rows: 0 },
  ): AsyncGenerator<string> {
    const columns = format === 'csv' ? CSV_SELECT : chain ? NDJSON_CHAIN_SELECT : NDJSON_SELECT;
    // An export meant for offline verification covers as much as is committed.
    if (chain) await this.sealer.seal();
    let after: CursorPosition | undefined;
    // The CSV header goes out with the first batch, so that a query that fails fails before any byte.
    let header = format === 'csv' ? `${CSV_COLUMNS.join(',')}\n` : '';
    for (;;) {
      const rows = await this.page<ExportRow>(workspaceId, filter, EXPORT_BATCH, after, columns);
      if (rows.length === 0) {
        if (header) yield header;
        return;
      }
      const text = header + rows.map((row) => `${row.line}\n`).join('');
      progress.rows += rows.length;
      yield text;
      header = '';
      if (rows.length < EXPORT_BATCH) return;
      const last = rows[rows.length - 1];
      after = { occurredAt: last.occurred_at, id: last.id };
    }
  }

  /**
   * Recomputes every hash of the workspace's chain in one pass in the database and reports the
   * first entry whose content, link or position does not match, or a head that no entry ends.
   * Entries removed by retention are accounted for by the anchors it recorded where it cut.
   */
  async verifyChain(workspaceId: string): Promise<ChainVerification> {
    const { anchor: _anchor, ...result } = await this.verifyChainFrom(workspaceId, 0);
    void _anchor;
    return result;
  }

  /**
   * The chain from position `fromSeq` to the head, reading only those entries (the (workspace_id,
   * seq) index): the entry at `fromSeq` is the anchor, trusted for its hash (the caller compares it
   * with a signed one) and reported with whether its content still hashes to it; every later entry
   * is checked as `verifyChain` checks them. `fromSeq` 0 checks the whole chain.
   */
  async verifyChainFrom(
    workspaceId: string,
    fromSeq: number,
  ): Promise<ChainVerification & { anchor?: { id: string; hash: string; contentOk: boolean } }> {
    await this.sealer.seal();
    const [result] = await this.prisma.$queryRaw<
      {
        entries: bigint;
        last_seq: bigint | null;
        last_hash: string | null;
        anchor: { id: string; hash: string; contentOk: boolean } | null;
        broken_id: string | null;
        broken_seq: bigint | null;
        reason: string | null;
      }[]
    >`
      WITH chain AS (
        SELECT a."id", a."seq", a."hash", a."prev_hash",
               a."hash" = "audit_log_digest"(a."prev_hash", a) AS content_ok,
               lag(a."seq") OVER w AS prev_seq, lag(a."hash") OVER w AS prev_hash_kept
        FROM "audit_log_sealed" a WHERE a."workspace_id" = ${workspaceId}::uuid AND a."seq" >= ${fromSeq}::bigint
        WINDOW w AS (ORDER BY a."seq")
      ),
      -- The hash this entry must link to: the entry before it, or, where retention removed that
      -- one, the anchor retention recorded for it; '' for the first entry of the chain.
      linked AS (
        SELECT c.*, CASE WHEN c.prev_seq = c."seq" - 1 THEN c.prev_hash_kept
                         WHEN x."seq" IS NOT NULL THEN x."hash"
                         WHEN c."seq" = 1 AND c.prev_seq IS NULL THEN '' END AS expected_prev
        FROM chain c LEFT JOIN "audit_chain_anchors" x
          ON x."workspace_id" = ${workspaceId}::uuid AND x."seq" = c."seq" - 1
      ),
      first_broken AS (
        SELECT "id", "seq",
               CASE WHEN prev_seq = "seq" THEN 'another entry has the same position in the chain'
                    WHEN expected_prev IS NULL THEN 'an entry before this one is missing'
                    WHEN NOT content_ok THEN 'the entry was altered after it was written'
                    ELSE 'the entry does not link to the one before it' END AS reason
        FROM linked
        WHERE "seq" > ${fromSeq}::bigint AND (prev_seq = "seq" OR expected_prev IS NULL OR NOT content_ok OR "prev_hash" <> expected_prev)
        ORDER BY "seq" LIMIT 1
      ),
      last AS (
        SELECT "seq", "hash" FROM (
          SELECT "seq", "hash" FROM chain
          UNION ALL
          SELECT "seq", "hash" FROM "audit_chain_anchors" WHERE "workspace_id" = ${workspaceId}::uuid
            AND "seq" >= ${fromSeq}::bigint
        ) ends ORDER BY "seq" DESC LIMIT 1
      )
      SELECT (SELECT count(*) FROM chain) AS entries,
             (SELECT json_build_object('id', "id", 'hash', "hash", 'contentOk', content_ok) FROM chain
              WHERE "seq" = ${fromSeq}::bigint AND ${fromSeq}::bigint > 0 LIMIT 1) AS anchor,
             (SELECT "seq" FROM last) AS last_seq, (SELECT "hash" FROM last) AS last_hash,
             b."id" AS broken_id, b."seq" AS broken_seq, b.reason
      FROM (SELECT 1) one LEFT JOIN first_broken b ON true`;
    const [head] = await this.prisma.$queryRaw<{ seq: bigint; hash: string }[]>`
      SELECT "seq", "hash" FROM "audit_chain_heads" WHERE "workspace_id" = ${workspaceId}::uuid`;
    const [{ unsealed: pending }] = await this.prisma.$queryRaw<{ unsealed: bigint }[]>`
      SELECT count(*) AS unsealed FROM "audit_log_inbox" WHERE "workspace_id" = ${workspaceId}::uuid`;
    const entries = Number(result.entries);
    const unsealed = Number(pending);
    const anchor = result.anchor ? { anchor: result.anchor } : {};
    if (result.broken_seq !== null) {
      return {
        intact: false,
        entries,
        headHash: head?.hash ?? null,
        unsealed,
        firstBroken: { id: result.broken_id, seq: Number(result.broken_seq), reason: result.reason! },
        ...anchor,
      };
    }
    if ((head?.seq ?? 0n) !== (result.last_seq ?? 0n) || (head && head.hash !== result.last_hash)) {
      return {
        intact: false,
        entries,
        headHash: head?.hash ?? null,
        unsealed,
        firstBroken: {
          id: null,
          seq: Number(result.last_seq ?? 0n) + 1,
          reason: 'entries at the end of the chain are missing',
        },
        ...anchor,
      };
    }
    return { intact: true, entries, headHash: head?.hash ?? null, unsealed, ...anchor };
  }

  async workspaceName(workspaceId: string): Promise<string> {
    const workspace = await this.prisma.workspace.findUniqueOrThrow({
      where: { id: workspaceId },
      select: { name: true },
    });
    return workspace.name;
  }

  async filterChoices(workspaceId: string): Promise<FilterChoices> {
    // A skip scan over the (workspace, actor) index: one probe per distinct actor, not per entry.
    const users = await this.prisma.$queryRaw<{ id: string; name: string; email: string }[]>`
      WITH RECURSIVE actors(actor_id) AS (
        (SELECT "actor_id" FROM "audit_logs" WHERE "workspace_id" = ${workspaceId}::uuid AND "actor_id" IS NOT NULL
         ORDER BY "actor_id" LIMIT 1)
        UNION ALL
        SELECT (SELECT l."actor_id" FROM "audit_logs" l
                WHERE l."workspace_id" = ${workspaceId}::uuid AND l."actor_id" > a.actor_id
                ORDER BY l."actor_id" LIMIT 1)
        FROM actors a WHERE a.actor_id IS NOT NULL
      )
      SELECT u."id", u."name", u."email" FROM "users" u
      WHERE u."id" IN (SELECT actor_id FROM actors WHERE actor_id IS NOT NULL)
         OR u."id" IN (SELECT "user_id" FROM "memberships" WHERE "workspace_id" = ${workspaceId}::uuid)
      ORDER BY lower(u."name"), u."email"`;
    return { users, resourceTypes: [...AUDITED_TYPES], actions: [...AUDIT_ACTIONS] };
  }

  private async page<Row = AuditLogRow>(
    workspaceId: string,
    filter: AuditLogFilterDto,
    take: number,
    after?: CursorPosition,
    columns: Prisma.Sql = COLUMNS,
  ): Promise<Row[]> {
    const where = this.where(workspaceId, filter);
    if (after) {
      // The plain bound on occurred_at is implied by the row comparison; it is there so that
      // PostgreSQL skips the months after the cursor (it prunes partitions on plain comparisons only).
      where.push(
        Prisma.sql`("occurred_at", "id") < (${after.occurredAt}::timestamptz, ${after.id}::uuid)`,
        Prisma.sql`"occurred_at" <= ${after.occurredAt}::timestamptz`,
      );
    }
    const predicate = Prisma.join(where, ' AND ');
    const name = filter.resourceName;
    if (!name || name.length < 3) {
      // Terms under 3 characters have no trigrams: the time index, filtered, is the only way.
      const nameMatch = name ? Prisma.sql` AND "resource_name" ILIKE ${likePattern(name)}` : Prisma.empty;
      return this.prisma.$queryRaw<Row[]>`
        SELECT ${columns} FROM "audit_logs" WHERE ${predicate}${nameMatch}
        ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}`;
    }
    // PostgreSQL estimates ILIKE '%…%' with a constant, so it cannot choose between walking the time
    // index (right for a common name) and collecting matches through the trigram index (right for a
    // rare one, where the walk reads the whole workspace). Try the newest entries first; if they do
    // not fill the page, look the name up among the resources (below).
    const nameMatch = Prisma.sql`"resource_name" ILIKE ${likePattern(name)}`;
    const recent = await this.prisma.$queryRaw<Row[]>`
      SELECT ${columns} FROM (
        SELECT * FROM "audit_logs" WHERE ${predicate} ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take * NAME_WINDOW}
      ) recent WHERE ${nameMatch} ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}`;
    if (recent.length === take) return recent;
    // A rare name: find the resources that ever had a matching name, then read each one's entries
    // newest first through its (workspace, resource, time) index, and merge.
    const typeMatch = filter.resourceType?.length
      ? Prisma.sql` AND ${oneOf('resource_type', filter.resourceType, 'text')}`
      : Prisma.empty;
    const resources = await this.prisma.$queryRaw<{ resource_id: string }[]>`
      SELECT "resource_id" FROM "audit_resource_names"
      WHERE "workspace_id" = ${workspaceId}::uuid AND ${nameMatch}${typeMatch}
      UNION
      SELECT "resource_id" FROM "audit_log_inbox"
      WHERE "workspace_id" = ${workspaceId}::uuid AND ${nameMatch}${typeMatch}
      LIMIT ${MAX_NAMED_RESOURCES + 1}`;
    if (resources.length === 0) return [];
    if (resources.length <= MAX_NAMED_RESOURCES) {
      // The same test as ILIKE '%…%' (which lowercases both sides), written so that PostgreSQL does
      // not estimate it to match almost nothing: with that estimate it sorts a resource's whole
      // history instead of reading its newest entries in index order (0.5 s instead of 12 ms for a
      // resource with 8,600 entries).
      const sameMatch = Prisma.sql`strpos(lower("resource_name"), lower(${name})) > 0`;
      return this.prisma.$queryRaw<Row[]>`
        SELECT ${columns} FROM unnest(${resources.map((r) => r.resource_id)}::uuid[]) AS named("named_resource_id")
        CROSS JOIN LATERAL (
          SELECT * FROM "audit_logs" WHERE ${predicate} AND "resource_id" = named."named_resource_id" AND ${sameMatch}
          ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}
        ) entries
        ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}`;
    }
    // Too many resources to visit one by one: collect the matches through the trigram index.
    return this.prisma.$queryRaw<Row[]>`
      WITH matches AS MATERIALIZED (SELECT * FROM "audit_logs" WHERE ${predicate} AND ${nameMatch})
      SELECT ${columns} FROM matches ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}`;
  }

  /** One predicate per filter that is set, except the name (see `page`). */
  private where(workspaceId: string, filter: AuditLogFilterDto): Prisma.Sql[] {
    const from = filter.from ? new Date(filter.from) : undefined;
    const to = filter.to ? new Date(filter.to) : undefined;
    if (from && to && from > to) {
      throw new BadRequestException(`from (${filter.from}) must not be after to (${filter.to})`);
    }
    const where = [Prisma.sql`"workspace_id" = ${workspaceId}::uuid`];
    if (filter.userId?.length) where.push(oneOf('actor_id', filter.userId, 'uuid'));
    if (filter.resourceType?.length) where.push(oneOf('resource_type', filter.resourceType, 'text'));
    if (filter.action?.length) where.push(oneOf('action', filter.action, 'text'));
    if (filter.requestId) where.push(Prisma.sql`"request_id" = ${filter.requestId}`);
    if (filter.resourceId) where.push(Prisma.sql`"resource_id" = ${filter.resourceId}::uuid`);
    if (from) where.push(Prisma.sql`"occurred_at" >= ${from}::timestamptz`);
    if (to) where.push(Prisma.sql`"occurred_at" < ${to}::timestamptz`);
    return where;
  }
}

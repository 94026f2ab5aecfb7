import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import pLimit from 'p-limit';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { isDatabaseUnavailable } from '../../common/database-unavailable';
import { type CopySession, inlineSql, withCopySession } from '../../database/copy-out';
import type { AppPrismaClient } from '../../database/prisma-client.factory';
import { ReadDatabase } from '../../database/read-database';
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
import { type AuditLogFilterDto, instantRange } from './audit-log-query.dto';

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
/** Unsealed entries an export holds in memory to merge them into the sealed log it streams. */
const INBOX_IN_MEMORY = 10_000;
/** Chain positions `verify` checks per statement: about a second of hashing on one core. */
export const VERIFY_BATCH = 100_000;
const MIN_BIGINT = -(2n ** 63n);
const MAX_BIGINT = 2n ** 63n - 1n;
/** How long `verify` waits for a connection, and how long its snapshot may stay open. */
const VERIFY_MAX_WAIT_MS = 30_000;
const VERIFY_TIMEOUT_MS = 60 * 60_000;
/** A verification from a position: the chain's outcome, and the entry at that position (the anchor). */
type ChainCheck = ChainVerification & { anchor?: { id: string; hash: string; contentOk: boolean } };
/** One workspace's chain checks in this process: the last one queued, and the one waiting per starting position. */
type ChainLane = { tail: Promise<void>; waiting: Map<number, Promise<ChainCheck>> };
/** What `verify` can find wrong with an entry, in the order it is checked. */
const FAULT = { outside: 0, duplicate: 1, missingBefore: 2, altered: 3, unlinked: 4 } as const;
const FAULT_REASONS = [
  'the entry is outside the chain (its positions start at 1)',
  'another entry has the same position in the chain',
  'an entry before this one is missing',
  'the entry was altered after it was written',
  'the entry does not link to the one before it',
];
/** A name search first looks for its page among this many times `take` newest entries. */
const NAME_WINDOW = 20;
/** Past this many resources with a matching name, a search reads the trigram index instead. */
const MAX_NAMED_RESOURCES = 200;

/**
 * The resources of a workspace that may have an entry whose name `nameMatch` finds: those that ever
 * had a matching name as `audit_resource_names` keeps it (sealed entries), and the others.
 * The entries are then tested on the names they hold.
 */
function namedResources(workspaceId: string, nameMatch: Prisma.Sql): Prisma.Sql {
  // Not filtered by type: a name is kept once per resource, with the type of the entry that first
  // had it, and one resource's entries may carry several types (a workspace and its log's reads).
  return Prisma.sql`
    SELECT "resource_id" FROM "audit_resource_names" WHERE "workspace_id" = ${workspaceId}::uuid AND ${nameMatch}
    UNION ALL
    ${unkeptNamedResources(workspaceId, nameMatch)}`;
}

/**
 * The candidates `audit_resource_names` cannot show by its kept names: resources whose name is longer
 * than it keeps (a match may lie past the cut), and those of entries not sealed yet. Both are few.
 */
function unkeptNamedResources(workspaceId: string, nameMatch: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`
    SELECT "audit_resource_names_cut" FROM "audit_resource_names_cut"(${workspaceId}::uuid)
    UNION ALL
    SELECT "resource_id" FROM "audit_log_inbox" WHERE "workspace_id" = ${workspaceId}::uuid AND ${nameMatch}`;
}

/** "Segment updated", computed by PostgreSQL from the same registry as `actionName()`. */
const ACTION_NAME = Prisma.raw(actionNameSql());
const ISO_TIME = Prisma.raw(`to_char("occurred_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);
/** The actor's kind and name, as `actorOf()` derives them. */
const ACTOR_KIND = `coalesce("actor_kind", CASE WHEN "actor_id" IS NULL THEN 'system' ELSE 'user' END)`;
const ACTOR_NAME = `coalesce("actor_name", ${ACTOR_KIND})`;

/**
 * JSON text built by concatenation, byte for byte what `json_build_object(…)::text` writes (`{"k" : v,
 * "k2" : v2}`) at a fraction of its cost per row: strings through `to_json`, which escapes them as
 * `json_build_object` does; uuids and times, which never need escaping, quoted as they are; SQL NULL
 * as `null`. The export spends most of its time here, once per entry.
 */
const json = {
  object: (fields: [string, string][]) =>
    `concat('{', ${fields.map(([key, value], i) => `'${i ? ', ' : ''}${JSON.stringify(key)} : ', ${value}`).join(', ')}, '}')`,
  string: (expression: string) => `coalesce(to_json(${expression})::text, 'null')`,
  /** A uuid, a time rendered by to_char, or a word a CHECK allows: nothing in them needs escaping. */
  plain: (expression: string) => `coalesce('"' || ${expression} || '"', 'null')`,
  /** A number or a jsonb value: its text is its JSON. */
  raw: (expression: string) => `coalesce(${expression}::text, 'null')`,
};

/** The fields of an AuditEntry, in `toAuditEntry`'s order, as JSON text. */
const ENTRY_FIELDS: [string, string][] = [
  ['id', json.plain('"id"')],
  ['occurredAt', json.plain(ISO_TIME.text)],
  // Words the log's CHECKs allow (created, updated…; user, system, database) need no escaping.
  ['action', json.plain('"action"')],
  ['actionName', json.string(ACTION_NAME.text)],
  ['resourceType', json.string('"resource_type"')],
  ['resourceId', json.plain('"resource_id"')],
  ['resourceName', json.string('"resource_name"')],
  [
    'user',
    `CASE WHEN "actor_id" IS NULL THEN 'null' ELSE ${json.object([
      ['id', json.plain('"actor_id"')],
      ['name', json.string('"actor_name"')],
      ['email', json.string('"actor_email"')],
    ])} END`,
  ],
  [
    'actor',
    json.object([
      ['kind', json.plain(ACTOR_KIND)],
      ['name', json.string(ACTOR_NAME)],
    ]),
  ],
  ['requestId', json.string('"request_id"')],
  ['changes', json.raw('"changes"')],
];

/** One AuditEntry as JSON text, shaped exactly as `toAuditEntry` shapes it. */
const NDJSON_LINE = Prisma.raw(json.object(ENTRY_FIELDS));

/**
 * NDJSON with `chain=true`: each AuditEntry line gains `chain`, what an offline verifier needs to
 * recompute the entry's chain hash (see src/audit/digests/chain-hash.ts): its place in the chain
 * (`seq`, `prevHash`, `hash`; null while unsealed) and the stored fields that AuditEntry shows
 * differently or not at all.
 */
const NDJSON_CHAIN_LINE = Prisma.raw(
  json.object([
    ...ENTRY_FIELDS,
    [
      'chain',
      json.object([
        ['seq', json.raw('"seq"')],
        ['prevHash', json.string('"prev_hash"')],
        ['hash', json.string('"hash"')],
        ['workspaceId', json.plain('"workspace_id"')],
        ['actorKind', json.string('"actor_kind"')],
        ['actorId', json.plain('"actor_id"')],
        ['actorName', json.string('"actor_name"')],
        ['actorEmail', json.string('"actor_email"')],
        ['ip', json.string('"ip"')],
        ['userAgent', json.string('"user_agent"')],
      ]),
    ],
  ]),
);

/**
 * One CSV cell, rendered by PostgreSQL as csv-stringify renders it with `escape_formulas`: a leading
 * = + - @ tab or CR gets a ' in front (formula injection), then RFC 4180 quoting. In SQL so that
 * export rows reach the response as text, without being decoded and re-encoded per row. Most cells
 * need neither: a few `strpos` (cheaper than a regular expression per cell) let them through as they are.
 */
function csvCell(expression: string): string {
  const guarded = `(CASE WHEN ${expression} ~ '^[=+@\\t\\r-]' THEN '''' || ${expression} ELSE ${expression} END)`;
  const quoted = `(CASE WHEN ${guarded} ~ '[",\\r\\n]' THEN '"' || replace(${guarded}, '"', '""') || '"' ELSE ${guarded} END)`;
  const special = [
    `left(${expression}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r')`,
    ...[`'"'`, `','`, `E'\\n'`, `E'\\r'`].map((c) => `strpos(${expression}, ${c}) > 0`),
  ];
  return `(CASE WHEN ${special.join(' OR ')} THEN ${quoted} ELSE ${expression} END)`;
}

/** `cell` of `expression`, computed once per row (a sub-select), not once per test the cell makes. */
function once(expression: string, cell: (value: string) => string): string {
  return `(SELECT ${cell('"value"')} FROM (SELECT ${expression} AS "value" OFFSET 0) once)`;
}

/**
 * The entry's `user.name` and `user.email`, empty when no user acted: `actor_name` also names the
 * system job or the database role of an entry without a user, which only actorName shows.
 */
const ofUser = (column: string) => `(CASE WHEN "actor_id" IS NULL THEN '' ELSE coalesce(${column}, '') END)`;

/**
 * The contract's CSV columns (CSV_COLUMNS), one line per entry. A time, a uuid, an action or an actor
 * kind (the database's CHECKs allow a few words only) needs neither guard nor quotes; the action name
 * (which may look into the diff) and the diff's text are computed once per row.
 */
const CSV_LINE = Prisma.raw(
  `concat_ws(',', ${[
    ISO_TIME.text,
    once(ACTION_NAME.text, csvCell),
    csvCell('"resource_type"'),
    csvCell('"resource_name"'),
    csvCell(ofUser('"actor_name"')),
    csvCell(ofUser('"actor_email"')),
    '"resource_id"::text',
    csvCell(`coalesce("request_id", '')`),
    '"id"::text',
    '"action"',
    ACTOR_KIND,
    csvCell(ACTOR_NAME),
    once('"changes"::text', csvCell),
  ].join(', ')})`,
);

/** The SQL of one export line per format (exported for the test that pins its bytes). */
export const EXPORT_LINES = { csv: CSV_LINE, ndjson: NDJSON_LINE, chain: NDJSON_CHAIN_LINE };

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
    private readonly reads: ReadDatabase,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly sealer: AuditSealerService,
  ) {
    this.cursors = new AuditCursorCodec(config.cursorSecret);
    this.checkSlot = pLimit(Math.max(1, Math.floor(config.databasePoolSize / 4)));
  }

  /** Entries read by one statement of `verifyChainFrom`. */
  verifyBatch = VERIFY_BATCH;
  /** Chain checks this process runs at once, across workspaces: a quarter of the pool, at least one. */
  private readonly checkSlot: pLimit.Limit;
  private readonly chainChecks = new Map<string, ChainLane>();

  async list(workspaceId: string, filter: AuditLogFilterDto, limit = 50, cursor?: string): Promise<AuditLogPage> {
    const after = cursor ? this.cursors.decode(workspaceId, cursor) : undefined;
    const rows = await this.reads.read((db) => this.page(db, workspaceId, filter, limit + 1, after));
    const items = rows.slice(0, limit).map(toAuditEntry);
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return {
      items,
      nextCursor: last ? this.cursors.encode(workspaceId, { occurredAt: last.occurred_at, id: last.id }) : null,
    };
  }

  async get(workspaceId: string, id: string): Promise<AuditEntry> {
    // Every entry's id is a UUIDv7 of its time (the capture assigns them): look only in the months
    // around it. An id of another version, or one more than a day ahead of now, is no entry of this
    // log: it is answered without a query.
    const at = uuidv7Time(id);
    if (!at || at.getTime() > Date.now() + DAY_MS) throw new NotFoundException(`Audit entry ${id} not found.`);
    const within = Prisma.sql` AND "occurred_at" >= ${new Date(at.getTime() - DAY_MS)}::timestamptz AND "occurred_at" < ${new Date(at.getTime() + DAY_MS)}::timestamptz`;
    const find = (db: AppPrismaClient) => db.$queryRaw<AuditLogRow[]>`
      SELECT ${COLUMNS} FROM "audit_logs" WHERE "workspace_id" = ${workspaceId}::uuid AND "id" = ${id}::uuid${within}`;
    // An entry committed a moment ago may not have reached the replica yet: one the replica does not
    // have is looked up on the primary before it is a 404.
    const [row] = await this.reads.read(async (db, source) => {
      const found = await find(db);
      return found.length > 0 || source === 'primary' ? found : find(this.reads.primary);
    });
    if (!row) throw new NotFoundException(`Audit entry ${id} not found.`);
    return toAuditEntry(row);
  }

  /**
   * The whole filtered log as export text, newest first, rendered line by line by PostgreSQL. On
   * PostgreSQL it is one `COPY` streamed from the server (the replica when there is one); on the
   * embedded database, keyset batches of EXPORT_BATCH rows. Either way memory stays flat whatever the
   * total, and a query that fails fails before the first chunk. `via: 'batches'` takes the embedded
   * database's way on PostgreSQL too (to compare the two).
   */
  async *exportChunks(
    workspaceId: string,
    filter: AuditLogFilterDto,
    format: 'csv' | 'ndjson',
    chain = false,
    /** Counts the entries yielded so far. */
    progress: { rows: number } = { rows: 0 },
    via: 'copy' | 'batches' = 'copy',
  ): AsyncGenerator<string | Buffer> {
    const line = EXPORT_LINES[format === 'csv' ? 'csv' : chain ? 'chain' : 'ndjson'];
    const header = format === 'csv' ? `${CSV_COLUMNS.join(',')}\n` : '';
    // An export meant for offline verification covers as much as is committed.
    if (chain) await this.sealer.seal();
    const sources = via === 'copy' ? await this.reads.copySources({ caughtUp: chain }) : [];
    if (sources.length > 0 && !(yield* this.copyExport(sources, workspaceId, filter, line, header, progress))) return;
    yield* this.batchExport(workspaceId, filter, line, header, progress);
  }

  /**
   * The export as one `COPY (SELECT line …) TO STDOUT` on a connection of its own: PostgreSQL renders
   * and sends every line (the same SQL as the batches), Node passes the bytes on. The first source
   * that can be reached serves it (the replica, else the primary). Undefined when the inbox holds more
   * than INBOX_IN_MEMORY matching entries (the sealer is off or far behind): the caller uses batches.
   */
  private async *copyExport(
    sources: { url: string }[],
    workspaceId: string,
    filter: AuditLogFilterDto,
    line: Prisma.Sql,
    header: string,
    progress: { rows: number },
  ): AsyncGenerator<string | Buffer, 'too many unsealed' | undefined> {
    const where = this.where(workspaceId, filter);
    if (filter.resourceName) where.push(Prisma.sql`"resource_name" ILIKE ${likePattern(filter.resourceName)}`);
    const predicate = Prisma.join(where, ' AND ');
    for (const [i, { url }] of sources.entries()) {
      const chunks = withCopySession(url, (session) => this.copyLines(session, predicate, line, progress));
      let first: IteratorResult<Buffer, 'too many unsealed' | undefined>;
      try {
        first = await chunks.next();
      } catch (error) {
        if (i === sources.length - 1 || !isDatabaseUnavailable(error)) throw error;
        this.reads.replicaUnavailable(error);
        continue;
      }
      try {
        if (first.done) {
          if (first.value) return first.value;
          if (header) yield header;
          return;
        }
        // The CSV header goes out with the first lines, so that a query that fails fails before any byte.
        yield header ? Buffer.concat([Buffer.from(header), first.value]) : first.value;
        for (;;) {
          const next = await chunks.next();
          if (next.done) return;
          yield next.value;
        }
      } finally {
        await chunks.return(undefined);
      }
    }
  }

  /**
   * The lines of one export, newest first, in one snapshot: the sealed log streamed by COPY in the
   * order of its (workspace, time) index, merged with the inbox's few unsealed entries, read first.
   * Kept apart because PostgreSQL 15 can read a partitioned table in index order but not a UNION with
   * the unindexed inbox: over the `audit_logs` view it sorts the whole workspace before the first row.
   */
  private async *copyLines(
    session: CopySession,
    predicate: Prisma.Sql,
    line: Prisma.Sql,
    progress: { rows: number },
  ): AsyncGenerator<Buffer, 'too many unsealed' | undefined> {
    const { client } = session;
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // Every ordered plan of the sealed log reads an index in order; forbidding a sort rules out the
    // others. JIT would compile the line expressions for each export, which costs more than it saves.
    await client.query('SET LOCAL enable_sort = off');
    await client.query('SET LOCAL jit = off');
    const unsealed = Prisma.sql`
      SELECT timestamptz_send("occurred_at") AS "time", uuid_send("id") AS "id", ${line} || chr(10) AS "line"
      FROM (SELECT *, NULL::bigint AS "seq", NULL::text AS "prev_hash", NULL::text AS "hash" FROM "audit_log_inbox") i
      WHERE ${predicate} ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${INBOX_IN_MEMORY + 1}`;
    const { rows: inbox } = await client.query<{ time: Buffer; id: Buffer; line: string }>(inlineSql(unsealed));
    if (inbox.length > INBOX_IN_MEMORY) return 'too many unsealed';
    const sealed = inlineSql(Prisma.sql`
      SELECT "occurred_at", "id", ${line} || chr(10) FROM "audit_log_sealed"
      WHERE ${predicate} ORDER BY "occurred_at" DESC, "id" DESC`);
    let next = 0;
    /** True when the unsealed entry `next` comes before (is newer than) the sealed row of `time` and `id`. */
    const newer = (time: Buffer, id: Buffer) => {
      const order = inbox[next].time.readBigInt64BE() - time.readBigInt64BE();
      return order > 0n || (order === 0n && Buffer.compare(inbox[next].id, id) > 0);
    };
    for await (const rows of session.copyRows(sealed)) {
      const lines: Buffer[] = [];
      for (const [time, id, text] of rows) {
        while (next < inbox.length && newer(time, id)) lines.push(Buffer.from(inbox[next++].line));
        lines.push(text);
      }
      progress.rows += lines.length;
      yield Buffer.concat(lines);
    }
    const rest = inbox.slice(next).map((entry) => entry.line);
    await client.query('COMMIT');
    progress.rows += rest.length;
    if (rest.length > 0) yield Buffer.from(rest.join(''));
  }

  /** The export in keyset batches of EXPORT_BATCH rows (the embedded database, which has no COPY to a client). */
  private async *batchExport(
    workspaceId: string,
    filter: AuditLogFilterDto,
    line: Prisma.Sql,
    header: string,
    progress: { rows: number },
  ): AsyncGenerator<string> {
    const columns = Prisma.sql`"id", "occurred_at", ${line} AS "line"`;
    let after: CursorPosition | undefined;
    for (;;) {
      const rows = await this.reads.read((db) =>
        this.page<ExportRow>(db, workspaceId, filter, EXPORT_BATCH, after, columns),
      );
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
   * Recomputes every hash of the workspace's chain in the database and reports the first entry whose
   * content, link or position does not match, or a head that no entry ends. Entries removed by
   * retention are accounted for by the anchors it recorded where it cut.
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
   *
   * The entries are read `verifyBatch` positions at a time, each batch one streaming statement (an
   * index scan in seq order, a window for the link to the entry before, an aggregate), so a chain
   * of any length is checked in bounded memory and no temporary file. The batches share one
   * REPEATABLE READ snapshot: a seal or a retention run committed meanwhile cannot make the head
   * disagree with the chain.
   */
  verifyChainFrom(workspaceId: string, fromSeq: number): Promise<ChainCheck> {
    // One check of a workspace's chain at a time in this process, and at most one waiting per
    // starting position, which every request for it that arrives meanwhile shares: it has not sealed
    // yet, so its answer covers everything committed before each of them. A long chain takes minutes
    // and a database connection; repeated requests cost neither.
    const lane: ChainLane = this.chainChecks.get(workspaceId) ?? { tail: Promise.resolve(), waiting: new Map() };
    this.chainChecks.set(workspaceId, lane);
    const waiting = lane.waiting.get(fromSeq);
    if (waiting) return waiting;
    const check = lane.tail.then(() => {
      lane.waiting.delete(fromSeq);
      return this.checkChainNow(workspaceId, fromSeq);
    });
    lane.waiting.set(fromSeq, check);
    const settled = check.then(
      () => undefined,
      () => undefined,
    );
    lane.tail = settled;
    void settled.then(() => {
      if (lane.tail === settled) this.chainChecks.delete(workspaceId);
    });
    return check;
  }

  private checkChainNow(workspaceId: string, fromSeq: number): Promise<ChainCheck> {
    // A long chain holds a pool connection for minutes: checks of several workspaces take a share of
    // the pool, and wait for one another beyond it, so that the rest of the API keeps its connections.
    return this.checkSlot(() => this.sealAndCheck(workspaceId, fromSeq));
  }

  private async sealAndCheck(workspaceId: string, fromSeq: number): Promise<ChainCheck> {
    await this.sealer.seal();
    // On a replica: once it has replayed the seal above, or else on the primary.
    return this.reads.readCaughtUp((db) =>
      db.$transaction(
        async (tx) => {
          // The entries come in seq order from the (workspace_id, seq) index. A sort instead (the
          // planner may prefer a bitmap scan for a range) would hold whole entries, on disk past work_mem.
          await tx.$executeRaw`SET LOCAL enable_sort = off`;
          // The locks before the snapshot (which the first read takes): a retention run that is dropping
          // a month is waited for, and then seen whole, the month gone and the anchor it left.
          await tx.$executeRaw`LOCK TABLE "audit_log_sealed", "audit_chain_anchors" IN ACCESS SHARE MODE`;
          return this.checkChain(tx as unknown as AppPrismaClient, workspaceId, fromSeq);
        },
        {
          isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead,
          maxWait: VERIFY_MAX_WAIT_MS,
          timeout: VERIFY_TIMEOUT_MS,
        },
      ),
    );
  }

  private async checkChain(db: AppPrismaClient, workspaceId: string, fromSeq: number): Promise<ChainCheck> {
    // The whole chain is every entry of the workspace, whatever position a forger gave it; from a
    // digest, the entries from its position on, the one at that position trusted (the anchor).
    const floor = fromSeq > 0 ? BigInt(fromSeq) : MIN_BIGINT;
    const [ends] = await db.$queryRaw<
      {
        first_seq: bigint | null;
        last_seq: bigint | null;
        last_hash: string | null;
        anchor: { id: string; hash: string; contentOk: boolean } | null;
        head_seq: bigint | null;
        head_hash: string | null;
        unsealed: bigint;
        unplaced: string | null;
      }[]
    >`
      SELECT (SELECT min("seq") FROM "audit_log_sealed" WHERE "workspace_id" = ${workspaceId}::uuid
                AND "seq" >= ${floor}::bigint) AS first_seq,
             last."seq" AS last_seq, last."hash" AS last_hash,
             (SELECT json_build_object('id', a."id", 'hash', a."hash",
                                       'contentOk', a."hash" IS NOT DISTINCT FROM "audit_log_digest"(a."prev_hash", a))
              FROM "audit_log_sealed" a WHERE a."workspace_id" = ${workspaceId}::uuid AND a."seq" = ${fromSeq}::bigint
                AND ${fromSeq}::bigint > 0 LIMIT 1) AS anchor,
             h."seq" AS head_seq, h."hash" AS head_hash,
             (SELECT count(*) FROM "audit_log_inbox" WHERE "workspace_id" = ${workspaceId}::uuid) AS unsealed,
             -- An entry with no position at all (only if someone dropped the column's NOT NULL).
             (SELECT "id" FROM "audit_log_sealed" WHERE "workspace_id" = ${workspaceId}::uuid AND "seq" IS NULL
              LIMIT 1) AS unplaced
      FROM (SELECT 1) one
      -- Where the chain ends: its last entry, or the anchor retention recorded when it removed that one.
      LEFT JOIN LATERAL (
        SELECT "seq", "hash" FROM (
          (SELECT "seq", "hash" FROM "audit_log_sealed" WHERE "workspace_id" = ${workspaceId}::uuid
             AND "seq" >= ${floor}::bigint ORDER BY "seq" DESC LIMIT 1)
          UNION ALL
          (SELECT "seq", "hash" FROM "audit_chain_anchors" WHERE "workspace_id" = ${workspaceId}::uuid
             AND "seq" >= ${fromSeq}::bigint ORDER BY "seq" DESC LIMIT 1)
        ) ends ORDER BY "seq" DESC LIMIT 1
      ) last ON true
      LEFT JOIN "audit_chain_heads" h ON h."workspace_id" = ${workspaceId}::uuid`;
    const head = ends.head_seq === null ? undefined : { seq: ends.head_seq, hash: ends.head_hash! };
    const unsealed = Number(ends.unsealed);
    const anchor = ends.anchor ? { anchor: ends.anchor } : {};
    /** Every entry the check covers, for a chain found broken before its end. */
    const covered = async () => {
      const [{ n }] = await db.$queryRaw<{ n: bigint }[]>`
        SELECT (SELECT count(*) FROM "audit_log_sealed" WHERE "workspace_id" = ${workspaceId}::uuid
                  AND "seq" >= ${floor}::bigint)
             + (SELECT count(*) FROM "audit_log_sealed" WHERE "workspace_id" = ${workspaceId}::uuid
                  AND "seq" IS NULL) AS n`;
      return Number(n);
    };
    if (ends.unplaced !== null) {
      return {
        intact: false,
        entries: await covered(),
        headHash: head?.hash ?? null,
        unsealed,
        firstBroken: { id: ends.unplaced, seq: 0, reason: 'the entry has no position in the chain' },
        ...anchor,
      };
    }
    let entries = 0;
    // Each batch checks the positions [lo, hi] and reads, for the link of its first entry, the
    // entries at `linkFrom`, the last position read before it.
    let lo = ends.first_seq;
    let linkFrom = lo;
    while (lo !== null) {
      const hi = lo <= MAX_BIGINT - BigInt(this.verifyBatch) ? lo + BigInt(this.verifyBatch) - 1n : MAX_BIGINT;
      const [batch] = await db.$queryRaw<
        { entries: bigint; broken: string[] | null; last_read: bigint | null; next_seq: bigint | null }[]
      >`
        SELECT count(*) FILTER (WHERE "seq" >= ${lo}::bigint) AS entries,
               -- [seq, fault] of the first fault: the lowest position, then the lowest fault code.
               min(ARRAY["seq", fault]) FILTER (WHERE fault IS NOT NULL)::text[] AS broken,
               max("seq") AS last_read,
               (SELECT min("seq") FROM "audit_log_sealed" WHERE "workspace_id" = ${workspaceId}::uuid
                  AND "seq" > ${hi}::bigint) AS next_seq
        FROM (
          SELECT c."seq",
                 CASE WHEN c."seq" < ${lo}::bigint THEN NULL
                      WHEN c."seq" < 1 THEN ${FAULT.outside}::bigint
                      WHEN c.prev_seq = c."seq" THEN ${FAULT.duplicate}::bigint
                      -- The anchor is trusted for its content and link, not for being alone at its position.
                      WHEN c."seq" <= ${fromSeq}::bigint THEN NULL
                      -- The hash this entry must link to: the entry before it, or, where retention
                      -- removed that one, the anchor retention recorded for it; '' for the first entry.
                      WHEN expected_prev IS NULL THEN ${FAULT.missingBefore}::bigint
                      WHEN NOT c.content_ok THEN ${FAULT.altered}::bigint
                      WHEN c."prev_hash" IS DISTINCT FROM expected_prev THEN ${FAULT.unlinked}::bigint END AS fault
          FROM (
            -- (Positions below 1 are faults of their own, and never have 1 subtracted: no overflow.)
            SELECT c.*, CASE WHEN c."seq" < 1 THEN NULL
                             WHEN c.prev_seq = c."seq" - 1 THEN c.prev_hash_kept
                             WHEN x."seq" IS NOT NULL THEN x."hash"
                             WHEN c."seq" = 1 AND c.prev_seq IS NULL THEN '' END AS expected_prev
            FROM (
              SELECT a."seq", a."prev_hash", a."hash" IS NOT DISTINCT FROM "audit_log_digest"(a."prev_hash", a) AS content_ok,
                     lag(a."seq") OVER w AS prev_seq, lag(a."hash") OVER w AS prev_hash_kept
              FROM "audit_log_sealed" a
              WHERE a."workspace_id" = ${workspaceId}::uuid AND a."seq" >= ${linkFrom}::bigint AND a."seq" <= ${hi}::bigint
              WINDOW w AS (ORDER BY a."seq")
            ) c LEFT JOIN "audit_chain_anchors" x ON x."workspace_id" = ${workspaceId}::uuid
              AND x."seq" = greatest(c."seq", 1) - 1
          ) c
        ) checked`;
      entries += Number(batch.entries);
      if (batch.broken) {
        const seq = BigInt(batch.broken[0]);
        const [entry] = await db.$queryRaw<{ id: string }[]>`
          SELECT "id" FROM "audit_log_sealed" WHERE "workspace_id" = ${workspaceId}::uuid AND "seq" = ${seq}::bigint
          ORDER BY "id" LIMIT 1`;
        return {
          intact: false,
          entries: await covered(),
          headHash: head?.hash ?? null,
          unsealed,
          firstBroken: { id: entry?.id ?? null, seq: Number(seq), reason: FAULT_REASONS[Number(batch.broken[1])] },
          ...anchor,
        };
      }
      if (batch.last_read !== null) linkFrom = batch.last_read;
      lo = batch.next_seq;
    }
    if ((head?.seq ?? 0n) !== (ends.last_seq ?? 0n) || (head && head.hash !== ends.last_hash)) {
      return {
        intact: false,
        entries,
        headHash: head?.hash ?? null,
        unsealed,
        firstBroken: {
          id: null,
          // Past the last entry left, or, when none is left from the digest on, at the digest's own.
          seq: Number(ends.last_seq ?? BigInt(Math.max(fromSeq - 1, 0))) + 1,
          reason: 'entries at the end of the chain are missing',
        },
        ...anchor,
      };
    }
    return { intact: true, entries, headHash: head?.hash ?? null, unsealed, ...anchor };
  }

  async workspaceName(workspaceId: string): Promise<string> {
    // On the primary: a workspace created a moment ago may not be on the replica yet.
    const workspace = await this.reads.primary.workspace.findUniqueOrThrow({
      where: { id: workspaceId },
      select: { name: true },
    });
    return workspace.name;
  }

  async filterChoices(workspaceId: string): Promise<FilterChoices> {
    // A skip scan over the (workspace, actor) index: one probe per distinct actor, not per entry.
    const users = await this.reads.read(
      (db) => db.$queryRaw<{ id: string; name: string; email: string }[]>`
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
      ORDER BY lower(u."name"), u."email"`,
    );
    return { users, resourceTypes: [...AUDITED_TYPES], actions: [...AUDIT_ACTIONS] };
  }

  private async page<Row = AuditLogRow>(
    db: AppPrismaClient,
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
      return db.$queryRaw<Row[]>`
        SELECT ${columns} FROM "audit_logs" WHERE ${predicate}${nameMatch}
        ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}`;
    }
    // PostgreSQL estimates ILIKE '%…%' with a constant, so it cannot choose between walking the time
    // index (right for a common name) and collecting matches through the trigram index (right for a
    // rare one, where the walk reads the whole workspace). Try the newest entries first; if they do
    // not fill the page, look the name up among the resources (below).
    const nameMatch = Prisma.sql`"resource_name" ILIKE ${likePattern(name)}`;
    const window = take * NAME_WINDOW;
    // The window: the newest take × NAME_WINDOW entries that pass the other filters. Without a user
    // filter they are read from the table in time order (the log is written in that order, so they
    // sit on few pages) and tested on their names.
    // With one, a user's entries are spread over their months between everyone else's: the window
    // is read as keys from the (workspace, actor, time) index alone, which carries the type and the
    // resource id, and only the entries of a resource that ever had a matching name (see
    // namedResources) are read from the table, by key, and tested on the name they had. OFFSET 0
    // keeps each of those reads a lookup rather than a join over the window.
    const recent = filter.userId?.length
      ? await db.$queryRaw<Row[]>`
      SELECT ${columns} FROM (
        SELECT "window_at", "window_id" FROM (
          SELECT "occurred_at" AS "window_at", "id" AS "window_id", "resource_id" AS "window_resource"
          FROM "audit_logs" WHERE ${predicate}
          ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${window}
        ) walked
        WHERE EXISTS (SELECT FROM "audit_resource_names" WHERE "workspace_id" = ${workspaceId}::uuid
                        AND "resource_id" = walked."window_resource" AND ${nameMatch})
           OR "window_resource" = ANY(ARRAY(${unkeptNamedResources(workspaceId, nameMatch)}))
      ) recent CROSS JOIN LATERAL (
        SELECT * FROM "audit_logs"
        WHERE ${predicate} AND "occurred_at" = recent."window_at" AND "id" = recent."window_id" OFFSET 0
      ) entry
      WHERE ${nameMatch} ORDER BY recent."window_at" DESC, recent."window_id" DESC LIMIT ${take}`
      : await db.$queryRaw<Row[]>`
      SELECT ${columns} FROM (
        SELECT * FROM "audit_logs" WHERE ${predicate} ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${window}
      ) recent WHERE ${nameMatch} ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}`;
    if (recent.length === take) return recent;
    // A rare name: find the resources that ever had a matching name, then read each one's entries
    // newest first through its (workspace, resource, time) index, and merge.
    const resources = await db.$queryRaw<{ resource_id: string }[]>`
      SELECT DISTINCT "resource_id" FROM (${namedResources(workspaceId, nameMatch)}) named
      LIMIT ${MAX_NAMED_RESOURCES + 1}`;
    if (resources.length === 0) return [];
    if (resources.length <= MAX_NAMED_RESOURCES) {
      // The same test as ILIKE '%…%' (which lowercases both sides), written so that PostgreSQL does
      // not estimate it to match almost nothing: with that estimate it sorts a resource's whole
      // history instead of reading its newest entries in index order (0.5 s instead of 12 ms for a
      // resource with 8,600 entries).
      const sameMatch = Prisma.sql`strpos(lower("resource_name"), lower(${name})) > 0`;
      return db.$queryRaw<Row[]>`
        SELECT ${columns} FROM unnest(${resources.map((r) => r.resource_id)}::uuid[]) AS named("named_resource_id")
        CROSS JOIN LATERAL (
          SELECT * FROM "audit_logs" WHERE ${predicate} AND "resource_id" = named."named_resource_id" AND ${sameMatch}
          ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}
        ) entries
        ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}`;
    }
    // Too many resources to visit one by one: collect the matches through the trigram index.
    return db.$queryRaw<Row[]>`
      WITH matches AS MATERIALIZED (SELECT * FROM "audit_logs" WHERE ${predicate} AND ${nameMatch})
      SELECT ${columns} FROM matches ORDER BY "occurred_at" DESC, "id" DESC LIMIT ${take}`;
  }

  /** One predicate per filter that is set, except the name (see `page`). */
  private where(workspaceId: string, filter: AuditLogFilterDto): Prisma.Sql[] {
    const { since, until } = instantRange(filter.from, filter.to);
    const where = [Prisma.sql`"workspace_id" = ${workspaceId}::uuid`];
    if (filter.userId?.length) where.push(oneOf('actor_id', filter.userId, 'uuid'));
    if (filter.resourceType?.length) where.push(oneOf('resource_type', filter.resourceType, 'text'));
    if (filter.action?.length) where.push(oneOf('action', filter.action, 'text'));
    if (filter.requestId) where.push(Prisma.sql`"request_id" = ${filter.requestId}`);
    if (filter.resourceId) where.push(Prisma.sql`"resource_id" = ${filter.resourceId}::uuid`);
    if (since) where.push(Prisma.sql`"occurred_at" >= ${since}::timestamptz`);
    if (until) where.push(Prisma.sql`"occurred_at" < ${until}::timestamptz`);
    return where;
  }
}

/**
 * Red team: the hash-chain verification (`verifyChainFrom` / `checkChain`, GET and POST …/verify) and
 * the offline verifier, attacked as a superuser with triggers off. "(fixed)": a wrong answer found
 * here, each seen to fail before its fix; "(holds)": answered correctly when probed; "(as documented)":
 * the documented scope of a check.
 *
 * Every in-process verification below is run with several `verifyBatch` values (one statement,
 * 1, 2 and 3 positions per statement): any difference between them is a bug of its own.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { type Digest, signDigest } from '../src/audit/digests/audit-digest';
import { AuditDigestsService, type DigestVerification } from '../src/audit/digests/audit-digests.service';
import { AuditSigningKeyService } from '../src/audit/digests/audit-signing-key.service';
import { verifyExportOffline } from '../src/audit/digests/offline-verify';
import { AuditLogsService, type ChainVerification, VERIFY_BATCH } from '../src/audit/query/audit-logs.service';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import { ResourceFactory } from './factories';
import { addSegmentUpdates } from './fixtures';
import { createTestApp, createWorkspace, exportText, type TestApp, type TestWorkspace } from './test-app';

const BATCHES = [VERIFY_BATCH, 3, 2, 1];

describe('Red team: hash-chain verification', () => {
  let t: TestApp;
  let su: Client;

  beforeAll(async () => {
    const keyDir = mkdtempSync(join(tmpdir(), 'redteam-verify-'));
    // Sealed only when asked (verify, export, issue): nothing moves between two verifications.
    t = await createTestApp({ auditSigningKeyFile: join(keyDir, 'signing-key.pem'), auditSealIntervalMs: 0 });
    su = new Client({ connectionString: t.database.url });
    await su.connect();
  });
  afterAll(async () => {
    await su.end();
    await t.close();
  });

  const logs = () => t.app.get(AuditLogsService);
  const seal = () => t.app.get(AuditSealerService).seal();

  /** Full verification in process (no "verified" entry recorded), with `batch` positions per statement. */
  const full = async (ws: TestWorkspace, batch: number): Promise<ChainVerification> => {
    logs().verifyBatch = batch;
    try {
      return await logs().verifyChain(ws.workspaceId);
    } finally {
      logs().verifyBatch = VERIFY_BATCH;
    }
  };
  const fromDigest = async (ws: TestWorkspace, digest: Digest, batch: number): Promise<DigestVerification> => {
    logs().verifyBatch = batch;
    try {
      return await t.app.get(AuditDigestsService).verify(ws.workspaceId, digest);
    } finally {
      logs().verifyBatch = VERIFY_BATCH;
    }
  };
  /** The same verification with every batch size: [batch, result] pairs. */
  const allBatches = async <T>(fn: (batch: number) => Promise<T>): Promise<[number, T][]> => {
    const out: [number, T][] = [];
    for (const batch of BATCHES) out.push([batch, await fn(batch)]);
    return out;
  };
  const issue = (ws: TestWorkspace) => t.app.get(AuditDigestsService).issue(ws.workspaceId);

  /** A workspace whose chain holds its own entries and then `n` appended ones, sealed. */
  const chain = async (name: string, n = 12): Promise<TestWorkspace> => {
    const ws = await createWorkspace(t.app, name);
    await append(ws, n);
    return ws;
  };
  const append = (ws: TestWorkspace, n: number) => addSegmentUpdates(su, ws.workspaceId, n, 10);
  const head = async (ws: TestWorkspace) =>
    Number(
      (await su.query<{ seq: string }>('SELECT seq FROM audit_chain_heads WHERE workspace_id = $1', [ws.workspaceId]))
        .rows[0]?.seq ?? 0,
    );
  const idAt = async (ws: TestWorkspace, seq: number | string) =>
    (
      await su.query<{ id: string }>(
        'SELECT id FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2 ORDER BY id',
        [ws.workspaceId, seq],
      )
    ).rows[0]?.id;
  /** As a superuser with triggers off, in one transaction. */
  const tamper = async (...statements: [string, unknown[]?][]) => {
    await su.query('BEGIN');
    try {
      await su.query('SET LOCAL session_replication_role = replica');
      for (const [sql, params] of statements) await su.query(sql, params ?? []);
      await su.query('COMMIT');
    } catch (error) {
      await su.query('ROLLBACK');
      throw error;
    }
  };
  /** A copy of the entry at `seq` with a new id and the given columns overridden (jsonb of column values). */
  const copySql = (overrides: string) =>
    `INSERT INTO audit_log_sealed SELECT (jsonb_populate_record(a, jsonb_build_object('id', gen_random_uuid()) || ${overrides})).*
     FROM audit_log_sealed a WHERE workspace_id = $1 AND seq = $2`;
  const rehash = (where: string) =>
    `UPDATE audit_log_sealed SET hash = audit_log_digest(prev_hash, audit_log_sealed.*) WHERE ${where}`;

  const offline = async (ws: TestWorkspace, digest: Digest) =>
    verifyExportOffline(
      await exportText(t, ws),
      JSON.stringify(digest),
      t.app.get(AuditSigningKeyService).current().publicKey,
    );

  const brokenOnly = (r: ChainVerification) => ({ intact: r.intact, firstBroken: r.firstBroken });

  // ---------------------------------------------------------------------------------------------
  describe('batch boundaries (full verification)', () => {
    it('(fixed) `entries` of a broken chain depends on verifyBatch', async () => {
      // Input: 12 appended entries; the entry at seq 3 edited in place (resource_name), hash kept.
      const ws = await chain('Entries count');
      await tamper([
        `UPDATE audit_log_sealed SET resource_name = 'Edited' WHERE workspace_id = $1 AND seq = 3`,
        [ws.workspaceId],
      ]);
      const results = await allBatches((b) => full(ws, b));
      for (const [, r] of results) {
        expect(r).toMatchObject({
          intact: false,
          firstBroken: { seq: 3, reason: 'the entry was altered after it was written' },
        });
      }
      // One statement counts every entry of the chain; 2 per statement counts up to the end of the
      // batch that held the break (4). The same log, two different answers.
      expect(results.map(([b, r]) => [b, r.entries])).toEqual(results.map(([b]) => [b, results[0][1].entries]));
    });

    it.each([
      ['the last position of a 2-batch (seq 4)', 4],
      ['the first position of a 2-batch (seq 5)', 5],
      ['the first position of a 3-batch (seq 7)', 7],
    ])('(holds) a duplicate at %s is reported there by every batch size', async (_label, seq) => {
      const ws = await chain(`Dup ${seq}`);
      const id = await idAt(ws, seq);
      await tamper([copySql(`'{}'::jsonb`), [ws.workspaceId, seq]]);
      for (const [, r] of await allBatches((b) => full(ws, b))) {
        expect(brokenOnly(r)).toMatchObject({
          intact: false,
          firstBroken: { seq, reason: 'another entry has the same position in the chain' },
        });
        expect(r.firstBroken!.id! <= id).toBe(true); // the lowest id at that position
      }
    });

    it.each([
      ['seq 5 (a 2-batch start)', 5, 5],
      ['seq 4 and 5 (a whole 2-batch)', 4, 5],
      ['seq 3..8 (several batches)', 3, 8],
    ])('(holds) a gap at %s is reported at the next entry by every batch size', async (_label, from, to) => {
      const ws = await chain(`Gap ${from}-${to}`);
      await tamper([
        `DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq BETWEEN $2 AND $3`,
        [ws.workspaceId, from, to],
      ]);
      const next = await idAt(ws, to + 1);
      for (const [, r] of await allBatches((b) => full(ws, b))) {
        expect(brokenOnly(r)).toEqual({
          intact: false,
          firstBroken: { id: next, seq: to + 1, reason: 'an entry before this one is missing' },
        });
      }
    });

    it('(holds) a huge gap bridged by a forged anchor is jumped in a few statements, same answer for every batch size', async () => {
      // Input: a copy of the head entry at seq 2^62, linked by a forged anchor at 2^62 - 1, the head moved to it.
      const ws = await chain('Huge gap');
      const far = '4611686018427387904';
      const h = await head(ws);
      await tamper(
        [
          `INSERT INTO audit_chain_anchors VALUES ($1, $2::bigint - 1, 'forged-anchor', gen_random_uuid())`,
          [ws.workspaceId, far],
        ],
        [copySql(`jsonb_build_object('seq', $3::bigint, 'prev_hash', 'forged-anchor')`), [ws.workspaceId, h, far]],
        [rehash(`workspace_id = $1 AND seq = $2`), [ws.workspaceId, far]],
        [
          `UPDATE audit_chain_heads SET seq = $2, hash = (SELECT hash FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2) WHERE workspace_id = $1`,
          [ws.workspaceId, far],
        ],
      );
      const started = Date.now();
      const results = await allBatches((b) => full(ws, b));
      expect(Date.now() - started).toBeLessThan(20_000);
      for (const [, r] of results) expect(r).toMatchObject({ intact: true, entries: h + 1 });
    });

    it('(holds) an entry moved in from another workspace is reported (duplicate there, gap in its own)', async () => {
      const a = await chain('Mover A');
      const b = await chain('Mover B');
      await tamper([
        `UPDATE audit_log_sealed SET workspace_id = $1 WHERE workspace_id = $2 AND seq = 6`,
        [a.workspaceId, b.workspaceId],
      ]);
      for (const [, r] of await allBatches((x) => full(a, x))) {
        expect(r).toMatchObject({
          intact: false,
          firstBroken: { seq: 6, reason: 'another entry has the same position in the chain' },
        });
      }
      for (const [, r] of await allBatches((x) => full(b, x))) {
        expect(r).toMatchObject({
          intact: false,
          firstBroken: { seq: 7, reason: 'an entry before this one is missing' },
        });
      }
    });

    it('(holds) a verification that reads one position per statement keeps its snapshot while entries are sealed meanwhile', async () => {
      const ws = await chain('Concurrent seal', 150);
      const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
      let stop = false;
      const writer = (async () => {
        while (!stop) {
          await api.create('sources');
          await seal();
        }
      })();
      try {
        const r = await full(ws, 1);
        expect(r.intact).toBe(true);
        const { rows } = await su.query<{ seq: string }>(
          'SELECT seq FROM audit_log_sealed WHERE workspace_id = $1 AND hash = $2',
          [ws.workspaceId, r.headHash],
        );
        expect(r.entries).toBe(Number(rows[0].seq)); // exactly the chain up to the head it reported
      } finally {
        stop = true;
        await writer;
      }
    });
  });

  describe('retention while a verification runs', () => {
    it('(fixed) a month dropped by retention while verify waits for its first lock: verify reports a missing entry in an intact chain', async () => {
      // Input: the workspace's own entries (today), 5 entries 15 months old, 5 entries today. A
      // retention run (audit_retention_begin + audit_log_drop_partition, as the service runs them)
      // is in progress, holding its lock, when GET verify starts; it commits while verify waits.
      const ws = await createWorkspace(t.app, 'Dropped month');
      await seal();
      const w = ws.workspaceId;
      const own = await head(ws);
      await su.query(
        `SELECT audit_log_append(jsonb_agg(jsonb_build_object('id', gen_random_uuid(), 'workspace_id', $1::uuid,
           'occurred_at', now() - interval '15 months' + make_interval(secs => g), 'action', 'updated',
           'resource_type', 'segment', 'resource_id', gen_random_uuid(), 'resource_name', 'Old ' || g, 'changes', '[]'::jsonb)))
         FROM generate_series(1, 5) g`,
        [w],
      );
      await seal();
      await append(ws, 5);
      const [{ name }] = (
        await su.query<{ name: string }>(`SELECT audit_log_partition_name(now() - interval '15 months') AS name`)
      ).rows;
      for (const [, r] of await allBatches((b) => full(ws, b)))
        expect(r).toMatchObject({ intact: true, entries: own + 10 });

      const retention = new Client({ connectionString: t.database.url });
      await retention.connect();
      try {
        await retention.query('BEGIN');
        const [{ run }] = (await retention.query<{ run: string }>(`SELECT audit_retention_begin('redteam') AS run`))
          .rows;
        await retention.query('SELECT audit_log_drop_partition($1, $2)', [run, name]);
        await retention.query('SELECT audit_retention_finish($1, NULL)', [run]);
        logs().verifyBatch = 2;
        const verifying = logs().verifyChain(w);
        for (;;) {
          const { rows } = await su.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          if (Number(rows[0].n) > 0) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await retention.query('COMMIT');
        const during = await verifying;
        logs().verifyBatch = VERIFY_BATCH;
        // Before the run: intact, own + 10 entries. After it: intact, own + 5 entries (anchored).
        // Observed: intact false, firstBroken { seq: own + 6, reason: 'an entry before this one is missing' }
        // (the snapshot predates the commit, so the anchor is invisible, but the dropped month is gone).
        expect({ intact: during.intact, firstBroken: during.firstBroken }).toEqual({
          intact: true,
          firstBroken: undefined,
        });
      } finally {
        logs().verifyBatch = VERIFY_BATCH;
        await retention.end();
      }
      for (const [, r] of await allBatches((b) => full(ws, b)))
        expect(r).toMatchObject({ intact: true, entries: own + 5 });
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('NULL columns (a superuser drops NOT NULL)', () => {
    afterAll(async () => {
      await tamper([`DELETE FROM audit_log_sealed WHERE seq IS NULL OR prev_hash IS NULL OR hash IS NULL`]);
      await su.query(
        'ALTER TABLE audit_log_sealed ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL',
      );
    });
    beforeAll(async () => {
      await su.query(
        'ALTER TABLE audit_log_sealed ALTER COLUMN seq DROP NOT NULL, ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL',
      );
    });

    it('(fixed) an entry inserted with seq NULL is in the log but verify says intact (online and offline)', async () => {
      // Input: a copy of the entry at seq 5 with a new id, resource_name 'Ghost', seq NULL.
      const ws = await chain('Null seq');
      const digest = await issue(ws);
      await tamper([copySql(`jsonb_build_object('seq', NULL, 'resource_name', 'Ghost')`), [ws.workspaceId, 5]]);
      const { rows } = await su.query('SELECT 1 FROM audit_logs WHERE workspace_id = $1 AND resource_name = $2', [
        ws.workspaceId,
        'Ghost',
      ]);
      expect(rows).toHaveLength(1); // the log shows it
      const report = await offline(ws, digest);
      const results = await allBatches((b) => full(ws, b));
      // Expected: "Every entry of the workspace is checked, whatever position it holds" -> not intact.
      expect({ online: results.map(([, r]) => r.intact), offline: report.ok }).toEqual({
        online: BATCHES.map(() => false),
        offline: false,
      });
      const ghost = (
        await su.query<{ id: string }>('SELECT id FROM audit_log_sealed WHERE workspace_id = $1 AND seq IS NULL', [
          ws.workspaceId,
        ])
      ).rows[0].id;
      for (const [, r] of results) {
        expect(r.firstBroken).toEqual({ id: ghost, seq: 0, reason: 'the entry has no position in the chain' });
      }
      expect(report.lines.some((line) => line.startsWith('FAIL') && line.includes('no position in the chain'))).toBe(
        true,
      );
    });

    it('(fixed) an entry whose prev_hash is NULL (re-hashed) is not reported; the next one is, as unlinked', async () => {
      // Input: entry at seq 6 gets prev_hash NULL and resource_name 'Unlinked', its hash recomputed.
      const ws = await chain('Null prev');
      const id6 = await idAt(ws, 6);
      await tamper(
        [
          `UPDATE audit_log_sealed SET prev_hash = NULL, resource_name = 'Unlinked' WHERE workspace_id = $1 AND seq = 6`,
          [ws.workspaceId],
        ],
        [rehash(`workspace_id = $1 AND seq = 6`), [ws.workspaceId]],
      );
      for (const [, r] of await allBatches((b) => full(ws, b))) {
        expect(brokenOnly(r)).toEqual({
          intact: false,
          firstBroken: { id: id6, seq: 6, reason: 'the entry does not link to the one before it' },
        });
      }
    });

    it('(fixed) an altered entry whose hash is NULL is not reported; the next one is, as "missing before"', async () => {
      // Input: entry at seq 6 gets resource_name 'No hash' and hash NULL.
      const ws = await chain('Null hash');
      const id6 = await idAt(ws, 6);
      await tamper([
        `UPDATE audit_log_sealed SET hash = NULL, resource_name = 'No hash' WHERE workspace_id = $1 AND seq = 6`,
        [ws.workspaceId],
      ]);
      for (const [, r] of await allBatches((b) => full(ws, b))) {
        expect(brokenOnly(r)).toEqual({
          intact: false,
          firstBroken: { id: id6, seq: 6, reason: 'the entry was altered after it was written' },
        });
      }
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('verification from a signed digest', () => {
    it('(fixed) a forged twin at the digest seq, with the head moved to it, extends the digest; the service then chains new entries onto the forgery', async () => {
      // Input: digest at D = head; a copy of entry D (new id, resource_name 'Forged twin', hash
      // recomputed, so it links to D - 1); audit_chain_heads.hash set to the twin's; then new entries
      // through the API, which the sealer links to the twin.
      const ws = await chain('Twin at digest');
      const digest = await issue(ws);
      const d = digest.seq;
      await tamper(
        [copySql(`jsonb_build_object('resource_name', 'Forged twin')`), [ws.workspaceId, d]],
        [rehash(`workspace_id = $1 AND seq = $2 AND resource_name = 'Forged twin'`), [ws.workspaceId, d]],
        [
          `UPDATE audit_chain_heads SET hash = (SELECT hash FROM audit_log_sealed WHERE workspace_id = $1 AND resource_name = 'Forged twin') WHERE workspace_id = $1`,
          [ws.workspaceId],
        ],
      );
      const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
      await api.create('sources');
      await api.create('sources');
      await seal();
      // Full verification sees the twin, for every batch size.
      for (const [, r] of await allBatches((b) => full(ws, b))) {
        expect(r).toMatchObject({
          intact: false,
          firstBroken: { seq: d, reason: 'another entry has the same position in the chain' },
        });
      }
      // Offline verification too.
      expect((await offline(ws, digest)).ok).toBe(false);
      // From the digest: a log with a forged entry at the signed position must not extend it.
      for (const [, r] of await allBatches((b) => fromDigest(ws, digest, b))) {
        expect({ intact: r.intact, extendsDigest: r.extendsDigest }).toEqual({ intact: false, extendsDigest: false });
      }
    });

    it.each([
      ['an entry before the digest edited in place, hash kept (seq D-1)', 'edit'],
      ['an entry before the digest deleted, no anchor (seq D-1)', 'delete'],
      ['a backdated entry inserted at seq 2 (a re-hashed copy)', 'insert'],
      ['the oldest entries deleted, no anchor (seq 1..3)', 'head-cut'],
    ])(
      '(as documented) %s: the full check finds it; the check from a later digest reads from its position on and still finds its entry',
      async (_label, kind) => {
        const ws = await chain(`Below digest ${kind}`);
        const digest = await issue(ws);
        const d = digest.seq;
        const w = ws.workspaceId;
        if (kind === 'edit')
          await tamper([
            `UPDATE audit_log_sealed SET resource_name = 'Quietly' WHERE workspace_id = $1 AND seq = $2`,
            [w, d - 1],
          ]);
        if (kind === 'delete')
          await tamper([`DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2`, [w, d - 1]]);
        if (kind === 'insert') {
          await tamper(
            [copySql(`jsonb_build_object('resource_name', 'Backdated')`), [w, 2]],
            [rehash(`workspace_id = $1 AND resource_name = 'Backdated'`), [w]],
          );
        }
        if (kind === 'head-cut')
          await tamper([`DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq <= 3`, [w]]);
        for (const [, r] of await allBatches((b) => full(ws, b))) expect(r.intact).toBe(false);
        // A change below the digest that leaves the hashes as they were does not touch the signed entry
        // or anything after it: GET …/verify and the offline check are what find it (README).
        const { rows } = await su.query<{ n: string }>(
          'SELECT count(*) AS n FROM audit_log_sealed WHERE workspace_id = $1 AND seq >= $2',
          [w, d],
        );
        for (const [, r] of await allBatches((b) => fromDigest(ws, digest, b))) {
          expect({ extendsDigest: r.extendsDigest, entries: r.entries }).toEqual({
            extendsDigest: true,
            entries: Number(rows[0].n),
          });
        }
      },
    );

    it('(holds, except head-cut) the offline verifier catches the same changes below the digest', async () => {
      const outcomes: Record<string, boolean> = {};
      for (const kind of ['edit', 'delete', 'insert']) {
        const ws = await chain(`Offline below ${kind}`);
        const digest = await issue(ws);
        const w = ws.workspaceId;
        if (kind === 'edit')
          await tamper([
            `UPDATE audit_log_sealed SET resource_name = 'Quietly' WHERE workspace_id = $1 AND seq = $2`,
            [w, digest.seq - 1],
          ]);
        if (kind === 'delete')
          await tamper([`DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2`, [w, digest.seq - 1]]);
        if (kind === 'insert') {
          await tamper(
            [copySql(`jsonb_build_object('resource_name', 'Backdated')`), [w, 2]],
            [rehash(`workspace_id = $1 AND resource_name = 'Backdated'`), [w]],
          );
        }
        outcomes[kind] = (await offline(ws, digest)).ok;
      }
      expect(outcomes).toEqual({ edit: false, delete: false, insert: false });
    });

    it('(as documented) the offline verifier notes an export whose oldest entries are gone; the full check tells a deletion from retention', async () => {
      // Input: DELETE seq 1..3 as a superuser (recent entries, no retention run, no anchor).
      const ws = await chain('Offline head cut');
      const digest = await issue(ws);
      await tamper([`DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq <= 3`, [ws.workspaceId]]);
      expect((await full(ws, VERIFY_BATCH)).firstBroken).toMatchObject({
        seq: 4,
        reason: 'an entry before this one is missing',
      });
      const report = await offline(ws, digest);
      expect(report.lines).toContain(
        'NOTE  chain links: the export starts at seq 4; earlier entries are not in it (removed by retention, or deleted: GET …/audit-logs/verify checks that against the anchors retention recorded)',
      );
    });

    it('(fixed) entries from the digest seq on deleted (head kept): verify from the digest names seq 1, full verify names D', async () => {
      // Input: digest at D, 3 more entries, then DELETE seq >= D (audit_chain_heads untouched).
      const ws = await chain('Tail gone');
      const digest = await issue(ws);
      await append(ws, 3);
      await tamper([
        `DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq >= $2`,
        [ws.workspaceId, digest.seq],
      ]);
      for (const [, r] of await allBatches((b) => full(ws, b))) {
        expect(r.firstBroken).toEqual({
          id: null,
          seq: digest.seq,
          reason: 'entries at the end of the chain are missing',
        });
      }
      for (const [, r] of await allBatches((b) => fromDigest(ws, digest, b))) {
        expect(r).toMatchObject({ intact: false, extendsDigest: false });
        // Observed: seq 1, an entry that is present and intact.
        expect(r.firstBroken).toEqual({
          id: null,
          seq: digest.seq,
          reason: 'entries at the end of the chain are missing',
        });
      }
    });

    it('(fixed) after a rewind below the digest, verify from the digest reports the intact entry at seq 1 as where the chain breaks', async () => {
      // Input: digest at D; DELETE seq > D - 3 and the head reset to D - 3 (a consistent rewind).
      const ws = await chain('Rewound');
      const digest = await issue(ws);
      const cut = digest.seq - 3;
      await tamper(
        [`DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq > $2`, [ws.workspaceId, cut]],
        [
          `UPDATE audit_chain_heads SET seq = $2, hash = (SELECT hash FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2) WHERE workspace_id = $1`,
          [ws.workspaceId, cut],
        ],
      );
      for (const [, r] of await allBatches((b) => full(ws, b))) expect(r.intact).toBe(true);
      for (const [, r] of await allBatches((b) => fromDigest(ws, digest, b))) {
        expect(r.extendsDigest).toBe(false); // (holds)
        // Observed: intact false, firstBroken { seq: 1, reason: 'entries at the end of the chain are missing' }.
        expect(r.firstBroken?.seq ?? Infinity).toBeGreaterThan(cut);
      }
    });

    it('(holds) a validly signed digest at an extreme seq is answered, not a 500', async () => {
      const ws = await chain('Extreme digest');
      const key = t.app.get(AuditSigningKeyService).current();
      // (Each POST records a "verified" entry: head + 100 stays beyond the head.)
      for (const seq of [Number.MAX_SAFE_INTEGER, (await head(ws)) + 100]) {
        const digest = signDigest(
          {
            workspaceId: ws.workspaceId,
            seq,
            headHash: 'a'.repeat(64),
            issuedAt: new Date().toISOString(),
            previousDigestHash: null,
          },
          key.privateKey,
        );
        const res = await t.http
          .post(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`)
          .set(ws.admin.auth)
          .send({ digest });
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({
          extendsDigest: false,
          digestMismatch: { reason: expect.stringMatching(/no longer holds an entry/) },
        });
      }
    });

    it('(holds) the entry at the digest seq removed by retention (anchor there): extendsDigest false, the chain intact', async () => {
      // Input: DELETE the entries seq <= D and a retention-style anchor at D with D's hash.
      const ws = await chain('Retained');
      const digest = await issue(ws);
      await append(ws, 3);
      await tamper(
        [
          `INSERT INTO audit_chain_anchors SELECT workspace_id, seq, hash, gen_random_uuid() FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2`,
          [ws.workspaceId, digest.seq],
        ],
        [`DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq <= $2`, [ws.workspaceId, digest.seq]],
      );
      for (const [, r] of await allBatches((b) => fromDigest(ws, digest, b))) {
        expect(r).toMatchObject({ intact: true, extendsDigest: false, entries: 3 });
      }
      for (const [, r] of await allBatches((b) => full(ws, b))) expect(r).toMatchObject({ intact: true, entries: 3 });
    });
  });
});

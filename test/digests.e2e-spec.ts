import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import {
  canonicalDigestText,
  type Digest,
  digestHash,
  digestSignatureValid,
  keyIdOf,
  signDigest,
} from '../src/audit/digests/audit-digest';
import { AuditDigestsService } from '../src/audit/digests/audit-digests.service';
import { createKeyFile } from '../src/audit/digests/audit-signing-key.service';
import {
  chainHash,
  type ChainedEntryFields,
  JsonNumber,
  type JsonValue,
  parseJson,
} from '../src/audit/digests/chain-hash';
import { verifyExportOffline } from '../src/audit/digests/offline-verify';
import { AuditLogsService } from '../src/audit/query/audit-logs.service';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import { ResourceFactory } from './factories';
import { createAppRole } from './database';
import { createTestApp, createWorkspace, exportText, type TestApp, type TestWorkspace } from './test-app';

const run = promisify(execFile);

function asUser(url: string, user: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = '';
  return parsed.toString();
}

interface Verification {
  intact: boolean;
  entries: number;
  headHash: string | null;
  unsealed: number;
  firstBroken?: { id: string | null; seq: number; reason: string };
  extendsDigest: boolean;
  digestMismatch?: { reason: string; seq: number; id: string | null; lastMatchingSeq: number };
}

describe('Signed digests and verification from a digest', () => {
  let t: TestApp;
  let superuser: Client;
  let keyDir: string;

  let startupLog: string[];

  beforeAll(async () => {
    keyDir = mkdtempSync(join(tmpdir(), 'audit-digests-'));
    const log = jest.spyOn(Logger.prototype, 'log');
    t = await createTestApp({ auditSigningKeyFile: join(keyDir, 'signing-key.pem') });
    // Three chain positions per statement, so that every verification here links entries across statements.
    t.app.get(AuditLogsService).verifyBatch = 3;
    startupLog = log.mock.calls.map((call) => String(call[0]));
    log.mockRestore();
    superuser = new Client({ connectionString: t.database.url });
    await superuser.connect();
  });
  afterAll(async () => {
    await superuser.end();
    await t.close();
  });

  const base = (ws: TestWorkspace) => `/api/workspaces/${ws.workspaceId}/audit-logs`;
  const issue = async (ws: TestWorkspace): Promise<Digest> =>
    (
      await t.http
        .post(`${base(ws)}/digests`)
        .set(ws.admin.auth)
        .expect(201)
    ).body as Digest;
  const verifyDigest = async (ws: TestWorkspace, digest: unknown): Promise<Verification> =>
    (
      await t.http
        .post(`${base(ws)}/verify`)
        .set(ws.admin.auth)
        .send({ digest })
        .expect(200)
    ).body as Verification;
  const verifyAll = async (ws: TestWorkspace) =>
    (
      await t.http
        .get(`${base(ws)}/verify`)
        .set(ws.admin.auth)
        .expect(200)
    ).body as Verification;
  const seal = () => t.app.get(AuditSealerService).seal();
  const headOf = async (ws: TestWorkspace) =>
    Number(
      (
        await superuser.query<{ seq: string }>('SELECT seq FROM audit_chain_heads WHERE workspace_id = $1', [
          ws.workspaceId,
        ])
      ).rows[0]?.seq ?? 0,
    );
  const idAt = async (ws: TestWorkspace, seq: number) =>
    (
      await superuser.query<{ id: string }>('SELECT id FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2', [
        ws.workspaceId,
        seq,
      ])
    ).rows[0]?.id;
  /** As a superuser with triggers off, in one transaction. */
  const tamper = async (fn: () => Promise<unknown>) => {
    await superuser.query('BEGIN');
    await superuser.query('SET LOCAL session_replication_role = replica');
    await fn();
    await superuser.query('COMMIT');
  };
  /**
   * A consistent rewrite: edits the entry at `seq`, recomputes its hash and every following link
   * and hash, and moves the head to match. Every check inside the database then passes.
   */
  const rewrite = (ws: TestWorkspace, seq: number) =>
    tamper(async () => {
      const w = ws.workspaceId;
      await superuser.query(
        `UPDATE audit_log_sealed SET resource_name = 'Rewritten' WHERE workspace_id = $1 AND seq = $2`,
        [w, seq],
      );
      const head = await headOf(ws);
      let hash = '';
      for (let s = seq; s <= head; s++) {
        if (s > seq) {
          await superuser.query('UPDATE audit_log_sealed SET prev_hash = $3 WHERE workspace_id = $1 AND seq = $2', [
            w,
            s,
            hash,
          ]);
        }
        hash = (
          await superuser.query<{ hash: string }>(
            `UPDATE audit_log_sealed SET hash = audit_log_digest(prev_hash, audit_log_sealed.*)
             WHERE workspace_id = $1 AND seq = $2 RETURNING hash`,
            [w, s],
          )
        ).rows[0].hash;
      }
      await superuser.query('UPDATE audit_chain_heads SET hash = $2 WHERE workspace_id = $1', [w, hash]);
    });

  describe('GET /api/audit-logs/public-keys', () => {
    it('publishes the signing key without a token; its id is the sha256 of its DER, cut to 16 hex', async () => {
      const res = await t.http.get('/api/audit-logs/public-keys').expect(200);
      const keys = (res.body as { keys: { keyId: string; publicKey: string; createdAt: string }[] }).keys;
      expect(keys).toHaveLength(1);
      const der = createPublicKey(keys[0].publicKey).export({ type: 'spki', format: 'der' });
      expect(keys[0].keyId).toBe(createHash('sha256').update(der).digest('hex').slice(0, 16));
      expect(keys[0].publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----/);
      expect(Number.isNaN(Date.parse(keys[0].createdAt))).toBe(false);
      expect(JSON.stringify(res.body)).not.toMatch(/PRIVATE/);
    });

    it('signs text that openssl verifies with the published key, as the README shows', async () => {
      const ws = await createWorkspace(t.app, 'OpenSSL');
      const digest = await issue(ws);
      const dir = mkdtempSync(join(tmpdir(), 'audit-openssl-'));
      const { keys } = (await t.http.get('/api/audit-logs/public-keys').expect(200)).body as {
        keys: { keyId: string; publicKey: string }[];
      };
      writeFileSync(join(dir, 'key.pem'), keys.find((k) => k.keyId === digest.keyId)!.publicKey);
      writeFileSync(join(dir, 'text'), canonicalDigestText(digest));
      writeFileSync(join(dir, 'sig.bin'), Buffer.from(digest.signature, 'base64'));
      const { stdout } = await run(
        'openssl',
        ['pkeyutl', '-verify', '-pubin', '-inkey', 'key.pem', '-rawin', '-in', 'text', '-sigfile', 'sig.bin'],
        { cwd: dir },
      );
      expect(stdout).toMatch(/Signature Verified Successfully/);
      expect(canonicalDigestText(digest)).toBe(
        `audit-log-digest/v1\nworkspaceId=${ws.workspaceId}\nseq=${digest.seq}\nheadHash=${digest.headHash}\n` +
          `issuedAt=${digest.issuedAt}\npreviousDigestHash=\n`,
      );
    });

    it('created the key file with mode 0600, once, said where, and the database holds no private key', async () => {
      expect(statSync(join(keyDir, 'signing-key.pem')).mode & 0o777).toBe(0o600);
      expect(startupLog).toContainEqual(
        expect.stringContaining(`Created the audit signing key ${join(keyDir, 'signing-key.pem')} (mode 0600)`),
      );
      expect(createKeyFile(join(keyDir, 'signing-key.pem'))).toBe(false);
      const { rows } = await superuser.query<{ n: string }>(
        `SELECT count(*) AS n FROM audit_signing_keys WHERE public_key LIKE '%PRIVATE%'`,
      );
      expect(Number(rows[0].n)).toBe(0);
    });
  });

  describe('POST and GET …/audit-logs/digests', () => {
    let ws: TestWorkspace;
    beforeAll(async () => {
      ws = await createWorkspace(t.app, 'Digests');
    });

    it('needs a token and an admin', async () => {
      await t.http.post(`${base(ws)}/digests`).expect(401);
      await t.http
        .post(`${base(ws)}/digests`)
        .set(ws.member.auth)
        .expect(403);
      await t.http.get(`${base(ws)}/digests`).expect(401);
      await t.http
        .get(`${base(ws)}/digests`)
        .set(ws.member.auth)
        .expect(403);
      const other = await createWorkspace(t.app, 'Other');
      await t.http
        .post(`${base(ws)}/digests`)
        .set(other.admin.auth)
        .expect(404);
    });

    it('signs the chain head after sealing what is committed, chaining each digest to the previous one', async () => {
      const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
      await api.create('sources');
      const first = await issue(ws); // no explicit seal: the route seals first
      expect(first).toEqual({
        workspaceId: ws.workspaceId,
        seq: await headOf(ws),
        headHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        issuedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        previousDigestHash: null,
        keyId: expect.stringMatching(/^[0-9a-f]{16}$/),
        signature: expect.any(String),
      });
      expect(first.seq).toBeGreaterThan(0);
      const { keys } = (await t.http.get('/api/audit-logs/public-keys').expect(200)).body as {
        keys: { keyId: string; publicKey: string }[];
      };
      const key = keys.find((k) => k.keyId === first.keyId)!;
      expect(digestSignatureValid(first, createPublicKey(key.publicKey))).toBe(true);
      expect(digestSignatureValid({ ...first, seq: first.seq + 1 }, createPublicKey(key.publicKey))).toBe(false);

      await api.create('sources');
      const second = await issue(ws);
      expect(second.seq).toBe(first.seq + 1);
      expect(second.previousDigestHash).toBe(digestHash(first));
      expect(Date.parse(second.issuedAt)).toBeGreaterThan(Date.parse(first.issuedAt));
      const third = await issue(ws); // on demand even when the head did not move
      expect(third).toMatchObject({
        seq: second.seq,
        headHash: second.headHash,
        previousDigestHash: digestHash(second),
      });

      const { items } = (
        await t.http
          .get(`${base(ws)}/digests`)
          .set(ws.admin.auth)
          .expect(200)
      ).body as { items: Digest[] };
      expect(items).toEqual([third, second, first]);
      const { rows } = await superuser.query<{ digest_hash: string }>(
        'SELECT digest_hash FROM audit_digests WHERE workspace_id = $1 ORDER BY issued_at',
        [ws.workspaceId],
      );
      expect(rows.map((r) => r.digest_hash)).toEqual([first, second, third].map(digestHash));
    });

    it('answers at most 1,000 digests, the newest', async () => {
      const many = await createWorkspace(t.app, 'Many digests');
      const keyId = (await issue(many)).keyId;
      await superuser.query(
        `INSERT INTO audit_digests (workspace_id, seq, head_hash, issued_at, previous_digest_hash, key_id, signature, digest_hash)
         SELECT $1, 0, '', now() - make_interval(days => g), md5(g::text), $2, 'x', md5(g::text) || 'h'
         FROM generate_series(1, 1000) g`,
        [many.workspaceId, keyId],
      );
      const { items } = (
        await t.http
          .get(`${base(many)}/digests`)
          .set(many.admin.auth)
          .expect(200)
      ).body as {
        items: Digest[];
      };
      expect(items).toHaveLength(1000);
      expect(items[0].signature).not.toBe('x'); // the newest: the one the service signed
      expect(Date.parse(items[999].issuedAt)).toBeGreaterThan(Date.now() - 1000 * 86_400_000);
    });

    it('filters by issuedAt: from inclusive, to exclusive', async () => {
      const { items } = (
        await t.http
          .get(`${base(ws)}/digests`)
          .set(ws.admin.auth)
          .expect(200)
      ).body as { items: Digest[] };
      const [newest, middle] = items;
      const from = encodeURIComponent(middle.issuedAt);
      const to = encodeURIComponent(newest.issuedAt);
      const res = await t.http
        .get(`${base(ws)}/digests?from=${from}&to=${to}`)
        .set(ws.admin.auth)
        .expect(200);
      expect((res.body as { items: Digest[] }).items).toEqual([middle]);
      const none = await t.http
        .get(`${base(ws)}/digests?to=2000-01-01T00:00:00Z`)
        .set(ws.admin.auth)
        .expect(200);
      expect(none.body).toEqual({ items: [] });
      // An offset beyond PostgreSQL's ±15:59, which ISO-8601 allows: the same instants.
      const shifted = (iso: string, offset: string) =>
        `${new Date(Date.parse(iso) + (offset === '-23:59' ? -1 : 1) * 86_340_000).toISOString().slice(0, -1)}${offset}`;
      const far = await t.http
        .get(`${base(ws)}/digests`)
        .query({ from: shifted(middle.issuedAt, '-23:59'), to: shifted(newest.issuedAt, '+23:59') })
        .set(ws.admin.auth)
        .expect(200);
      expect((far.body as { items: Digest[] }).items).toEqual([middle]);
    });

    it.each([
      ['from=yesterday', /from must be an ISO-8601 instant/],
      ['to=2026-13-45T00:00:00Z', /to is not a valid date/],
      ['from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z', /from \(2026-11-27T00:00:00Z\) must not be after to/],
      [
        'from=2026-11-26T00:00:00.0002Z&to=2026-11-26T00:00:00.0001Z',
        /from \(2026-11-26T00:00:00.0002Z\) must not be after to/,
      ],
      ['limit=5', /property limit should not exist/],
    ])('answers 400 to ?%s', async (query, message) => {
      const res = await t.http
        .get(`${base(ws)}/digests?${query}`)
        .set(ws.admin.auth)
        .expect(400);
      expect(JSON.stringify(res.body)).toMatch(message);
    });

    it('issues a workspace with no entries a digest at seq 0, which its log then extends', async () => {
      // Creating a workspace is itself recorded: one with an empty log is made with the triggers off
      // (as a superuser can), with this workspace's admin as its admin.
      const empty: TestWorkspace = { ...ws, workspaceId: randomUUID() };
      await tamper(async () => {
        await superuser.query(`INSERT INTO workspaces (id, name) VALUES ($1, 'Empty')`, [empty.workspaceId]);
        await superuser.query(
          `INSERT INTO memberships (id, workspace_id, user_id, role) VALUES (gen_random_uuid(), $1, $2, 'admin')`,
          [empty.workspaceId, ws.admin.id],
        );
      });
      const digest = await issue(empty);
      expect(digest).toMatchObject({ seq: 0, headHash: '', previousDigestHash: null });
      await new ResourceFactory(t.http, empty.workspaceId, empty.admin.auth).create('sources');
      expect(await verifyDigest(empty, digest)).toMatchObject({ intact: true, extendsDigest: true, entries: 1 });
    });
  });

  describe('the scheduled job', () => {
    it('is scheduled hourly by default and signs every workspace whose head moved, once, one run at a time', async () => {
      const job = t.app.get(SchedulerRegistry).getCronJob('audit-digests');
      expect(String(job.cronTime.source)).toBe('0 * * * *');
      const service = t.app.get(AuditDigestsService);
      await service.issueForMovedHeads(); // whatever earlier tests left
      const a = await createWorkspace(t.app, 'Moved A');
      const b = await createWorkspace(t.app, 'Moved B');
      await new ResourceFactory(t.http, a.workspaceId, a.admin.auth).create('sources');
      await new ResourceFactory(t.http, b.workspaceId, b.admin.auth).create('sources');
      const [one, two] = await Promise.all([service.issueForMovedHeads(), service.issueForMovedHeads()]);
      const issued = [...one, ...two];
      expect(issued.map((d) => d.workspaceId).sort()).toEqual([a.workspaceId, b.workspaceId].sort());
      expect(await service.issueForMovedHeads()).toEqual([]);
      await new ResourceFactory(t.http, a.workspaceId, a.admin.auth).create('sources');
      const next = await service.issueForMovedHeads();
      expect(next.map((d) => d.workspaceId)).toEqual([a.workspaceId]);
      expect(next[0].previousDigestHash).toBe(digestHash(issued.find((d) => d.workspaceId === a.workspaceId)!));
    });
  });

  describe('POST …/audit-logs/verify', () => {
    let ws: TestWorkspace;
    let api: ResourceFactory;
    beforeAll(async () => {
      ws = await createWorkspace(t.app, 'Verify');
      api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
      await api.create('segments');
    });

    it('needs a token and an admin', async () => {
      const digest = await issue(ws);
      await t.http
        .post(`${base(ws)}/verify`)
        .send({ digest })
        .expect(401);
      await t.http
        .post(`${base(ws)}/verify`)
        .set(ws.member.auth)
        .send({ digest })
        .expect(403);
    });

    it.each([
      [{}, /digest must be an object/],
      [{ digest: 'abc' }, /digest must be an object/],
      [{ digest: {}, extra: 1 }, /property extra should not exist/],
    ])('answers 400 to the body %j', async (body, message) => {
      const res = await t.http
        .post(`${base(ws)}/verify`)
        .set(ws.admin.auth)
        .send(body)
        .expect(400);
      expect(JSON.stringify(res.body)).toMatch(message);
    });

    it.each([
      ['seq', -1, /digest.seq must be a whole number/],
      ['seq', '3', /digest.seq must be a whole number/],
      ['headHash', 'ABC', /digest.headHash must be 64 lowercase hex/],
      ['issuedAt', '2026-11-26', /digest.issuedAt must be an ISO-8601 UTC instant with milliseconds/],
      ['previousDigestHash', 5, /digest.previousDigestHash must be 64 lowercase hex characters or null/],
      ['keyId', 'k', /digest.keyId must be 16 lowercase hex/],
      ['signature', 'not base64!', /digest.signature must be an Ed25519 signature/],
      ['workspaceId', 'x', /digest.workspaceId must be a lowercase UUID/],
      ['surplus', 1, /digest has unknown properties: surplus/],
    ])('answers 400 to a digest whose %s is %j', async (field, value, message) => {
      const digest = await issue(ws);
      const res = await t.http
        .post(`${base(ws)}/verify`)
        .set(ws.admin.auth)
        .send({ digest: { ...digest, [field]: value } })
        .expect(400);
      expect(JSON.stringify(res.body)).toMatch(message);
    });

    it("answers 400 to another workspace's digest", async () => {
      const other = await createWorkspace(t.app, 'Elsewhere');
      await new ResourceFactory(t.http, other.workspaceId, other.admin.auth).create('sources');
      const theirs = await issue(other);
      const res = await t.http
        .post(`${base(ws)}/verify`)
        .set(ws.admin.auth)
        .send({ digest: theirs })
        .expect(400);
      expect(JSON.stringify(res.body)).toMatch(/digest.workspaceId is .*, not this workspace/);
    });

    it('extends a digest while the log only grows, checking only the entries since its seq', async () => {
      const digest = await issue(ws);
      await api.create('sources');
      await api.create('sources');
      await seal();
      const head = await headOf(ws);
      const result = await verifyDigest(ws, digest);
      expect(result).toMatchObject({ intact: true, extendsDigest: true, entries: head - digest.seq + 1, unsealed: 0 });
      const { rows } = await superuser.query<{ hash: string }>(
        'SELECT hash FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2',
        [ws.workspaceId, head],
      );
      expect(result.headHash).toBe(rows[0].hash);
      expect(result.digestMismatch).toBeUndefined();
    });

    it('refuses a digest whose signature does not verify, or whose key is not published', async () => {
      const digest = await issue(ws);
      const forged = { ...digest, headHash: 'a'.repeat(64) };
      expect(await verifyDigest(ws, forged)).toMatchObject({
        extendsDigest: false,
        digestMismatch: { reason: expect.stringMatching(/^the signature does not verify with the published key/) },
      });
      const stranger = generateKeyPairSync('ed25519').privateKey;
      const foreign = signDigest({ ...digest }, stranger);
      expect(await verifyDigest(ws, foreign)).toMatchObject({
        extendsDigest: false,
        digestMismatch: { reason: `no published key has the id ${keyIdOf(stranger)}` },
      });
    });

    it('answers false to a consistent rewrite by a superuser, naming the first signed position that differs', async () => {
      const rw = await createWorkspace(t.app, 'Rewritten');
      const rwApi = new ResourceFactory(t.http, rw.workspaceId, rw.admin.auth);
      await rwApi.create('segments'); // seq 1..3
      const d1 = await issue(rw);
      await rwApi.create('sources');
      const d2 = await issue(rw);
      await rwApi.create('segments');
      const d3 = await issue(rw);
      await rwApi.create('sources');
      await seal();
      expect(d1.seq).toBeLessThan(d2.seq);
      expect((await verifyDigest(rw, d3)).extendsDigest).toBe(true);

      await rewrite(rw, d2.seq); // the entry d2 signed, and everything after it
      expect(await verifyAll(rw)).toMatchObject({ intact: true }); // the database alone cannot tell
      const result = await verifyDigest(rw, d3);
      expect(result).toMatchObject({
        intact: true,
        extendsDigest: false,
        digestMismatch: { seq: d2.seq, id: await idAt(rw, d2.seq), lastMatchingSeq: d1.seq },
      });
      expect(result.digestMismatch!.reason).toMatch(
        new RegExp(`no longer has the hash the digest signed.*after seq ${d1.seq} and at or before seq ${d2.seq}`),
      );
      expect(await verifyDigest(rw, d2)).toMatchObject({
        extendsDigest: false,
        digestMismatch: { seq: d2.seq, id: await idAt(rw, d2.seq), lastMatchingSeq: d1.seq },
      });
      // A digest taken before the rewritten entry vouches for nothing after its seq: still extended.
      expect((await verifyDigest(rw, d1)).extendsDigest).toBe(true);
    });

    it('answers false when the entry at the digest is altered in place (its hash kept)', async () => {
      const digest = await issue(ws);
      const id = await idAt(ws, digest.seq);
      await tamper(() =>
        superuser.query(`UPDATE audit_log_sealed SET resource_name = 'Quietly' WHERE workspace_id = $1 AND seq = $2`, [
          ws.workspaceId,
          digest.seq,
        ]),
      );
      expect(await verifyDigest(ws, digest)).toMatchObject({
        extendsDigest: false,
        digestMismatch: { seq: digest.seq, id, reason: expect.stringMatching(/was altered after the digest/) },
      });
    });

    it('answers false after a rewind (tail deleted, head reset), even once the log grows past the digest again', async () => {
      const rw = await createWorkspace(t.app, 'Rewound');
      const rwApi = new ResourceFactory(t.http, rw.workspaceId, rw.admin.auth);
      await rwApi.create('sources'); // after the workspace's own entries
      const early = await issue(rw);
      const cut = early.seq + 1; // the log is rewound to just after the early digest
      await rwApi.create('models'); // early + 1, early + 2
      // Far enough ahead that the verifications below (each recorded in the log) do not reach it.
      for (let i = 0; i < 3; i++) await rwApi.create('sources');
      const digest = await issue(rw);
      await tamper(async () => {
        await superuser.query('DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND seq > $2', [
          rw.workspaceId,
          cut,
        ]);
        await superuser.query(
          `UPDATE audit_chain_heads SET seq = $2, hash = (SELECT hash FROM audit_log_sealed WHERE workspace_id = $1 AND seq = $2)
           WHERE workspace_id = $1`,
          [rw.workspaceId, cut],
        );
      });
      expect(await verifyAll(rw)).toMatchObject({ intact: true, entries: cut });
      expect(await verifyDigest(rw, early)).toMatchObject({ intact: true, extendsDigest: true }); // before the rewind point
      expect(await verifyDigest(rw, digest)).toMatchObject({
        extendsDigest: false,
        digestMismatch: { seq: digest.seq, id: null, reason: expect.stringMatching(/no longer holds an entry at seq/) },
      });
      await rwApi.create('sources');
      await rwApi.create('sources');
      await seal();
      expect(await headOf(rw)).toBeGreaterThanOrEqual(digest.seq);
      expect(await verifyDigest(rw, digest)).toMatchObject({
        intact: true,
        extendsDigest: false,
        digestMismatch: { seq: digest.seq, reason: expect.stringMatching(/no longer has the hash the digest signed/) },
      });
    });

    it('answers false when everything was deleted, the chain head included', async () => {
      const gone = await createWorkspace(t.app, 'Erased');
      await new ResourceFactory(t.http, gone.workspaceId, gone.admin.auth).create('models');
      const digest = await issue(gone);
      await tamper(async () => {
        await superuser.query('DELETE FROM audit_log_sealed WHERE workspace_id = $1', [gone.workspaceId]);
        await superuser.query('DELETE FROM audit_chain_heads WHERE workspace_id = $1', [gone.workspaceId]);
      });
      expect(await verifyAll(gone)).toMatchObject({ intact: true, entries: 0 });
      expect(await verifyDigest(gone, digest)).toMatchObject({
        extendsDigest: false,
        entries: 0,
        digestMismatch: { seq: digest.seq, reason: expect.stringMatching(/no longer holds an entry/) },
      });
    });

    it('answers false when the chain after the digest is broken', async () => {
      const br = await createWorkspace(t.app, 'Broken after');
      const brApi = new ResourceFactory(t.http, br.workspaceId, br.admin.auth);
      await brApi.create('sources');
      const digest = await issue(br);
      await brApi.create('models'); // two more entries
      await seal();
      await tamper(() =>
        superuser.query(`UPDATE audit_log_sealed SET resource_name = 'Edited' WHERE workspace_id = $1 AND seq = $2`, [
          br.workspaceId,
          digest.seq + 2,
        ]),
      );
      expect(await verifyDigest(br, digest)).toMatchObject({
        intact: false,
        extendsDigest: false,
        firstBroken: { seq: digest.seq + 2, reason: 'the entry was altered after it was written' },
      });
    });
  });

  describe('the tables', () => {
    it('are append-only: refused to the application role, and to a superuser unless triggers are off', async () => {
      await expect(superuser.query(`UPDATE audit_digests SET seq = 0`)).rejects.toThrow(
        'audit_digests is append-only: UPDATE is not allowed',
      );
      await expect(superuser.query(`DELETE FROM audit_signing_keys`)).rejects.toThrow(
        'audit_signing_keys is append-only: DELETE is not allowed',
      );
      await expect(superuser.query(`TRUNCATE audit_digests`)).rejects.toThrow('append-only');
      const role = await createAppRole();
      const client = new Client({ connectionString: asUser(t.database.url, role.name) });
      await client.connect();
      try {
        for (const sql of [
          'UPDATE audit_digests SET seq = 0',
          'DELETE FROM audit_digests',
          'TRUNCATE audit_digests',
          `UPDATE audit_signing_keys SET public_key = 'x'`,
          'DELETE FROM audit_signing_keys',
        ]) {
          await expect(client.query(sql)).rejects.toThrow(/permission denied/);
        }
        const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM audit_digests');
        expect(Number(rows[0].n)).toBeGreaterThan(0);
        await client.query(`INSERT INTO audit_signing_keys (key_id, public_key) VALUES ('00000000000000ff', 'x')`);
        await client.query(
          `INSERT INTO audit_digests (workspace_id, seq, head_hash, issued_at, key_id, signature, digest_hash)
           VALUES (gen_random_uuid(), 0, '', now(), '00000000000000ff', 'x', 'x')`,
        );
      } finally {
        await client.end();
        await role.drop();
      }
    });
  });

  describe('offline verification', () => {
    const exportOf = (ws: TestWorkspace, query?: string) => exportText(t, ws, query);
    const publicPem = async (keyId: string) =>
      (
        (await t.http.get('/api/audit-logs/public-keys').expect(200)).body as {
          keys: { keyId: string; publicKey: string }[];
        }
      ).keys.find((k) => k.keyId === keyId)!.publicKey;

    it("chain=true adds each entry's place in the chain to the NDJSON lines; only for ndjson", async () => {
      const ws = await createWorkspace(t.app, 'Export');
      await new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth).create('sources');
      const [line] = (await exportOf(ws))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(line.chain).toEqual({
        seq: expect.any(Number),
        prevHash: expect.any(String),
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
        workspaceId: ws.workspaceId,
        actorKind: 'user',
        actorId: ws.admin.id,
        actorName: expect.any(String),
        actorEmail: expect.any(String),
        ip: expect.anything(),
        userAgent: null, // supertest sends none
      });
      const [plain] = (await exportOf(ws, 'format=ndjson'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as object);
      expect(plain).not.toHaveProperty('chain');
      const bad = await t.http
        .get(`${base(ws)}/export?format=csv&chain=true`)
        .set(ws.admin.auth)
        .expect(400);
      expect(JSON.stringify(bad.body)).toMatch(/chain=true applies to format=ndjson only/);
      await t.http
        .get(`${base(ws)}/export?format=ndjson&chain=yes`)
        .set(ws.admin.auth)
        .expect(400);
    });

    it('the TypeScript chain hash agrees with audit_log_digest on generated entries', async () => {
      const text = fc.string({ unit: 'grapheme', maxLength: 12 }).map((s) => s.replaceAll('\u0000', ''));
      const tricky = fc.constantFrom(
        "it's",
        'back\\slash',
        '|',
        'NULL',
        '',
        'é ü 日本 🙂',
        'line\nbreak\ttab',
        '"q"',
        "E'x'",
      );
      const anyText = fc.oneof(text, tricky);
      // Top-level JSON null is left out: jsonb_populate_record turns it into SQL NULL, which the
      // NOT NULL column never holds.
      const json = fc
        .jsonValue({ maxDepth: 3 })
        .filter((v) => v !== null)
        .map((v) => JSON.parse(JSON.stringify(v).replace(/\\u0000/g, '')) as unknown);
      const rawNumbers = fc.constantFrom('1e3', '1.50', '-0', '0.10', '1E-7', '12345678901234567890.000', '-2.5e+2');
      const entry = fc.record({
        prev: fc.oneof(fc.constant(''), fc.stringMatching(/^[0-9a-f]{64}$/), anyText),
        seq: fc.integer({ min: 1, max: 2 ** 40 }),
        occurredAt: fc.date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true }),
        action: fc.constantFrom('created', 'updated', 'deleted', 'restored'),
        resourceType: fc.constantFrom('source', 'model', 'segment', 'destination'),
        resourceName: anyText,
        actorKind: fc.constantFrom(null, 'user', 'system', 'database'),
        actorId: fc.option(fc.uuid({ version: 4 })),
        actorName: fc.option(anyText),
        actorEmail: fc.option(anyText),
        requestId: fc.option(anyText),
        ip: fc.option(anyText),
        userAgent: fc.option(anyText),
        changes: fc.oneof(
          json.map((v) => JSON.stringify(v)),
          fc
            .tuple(rawNumbers, anyText)
            .map(([n, s]) => `[{"field": ${JSON.stringify(s)}, "before": ${n}, "after": {"b": 1, "a": [${n}]}}]`),
        ),
      });
      const samples = fc.sample(entry, 1000);
      const rows = samples.map((s) => ({
        ...s,
        id: randomUUID(),
        workspaceId: randomUUID(),
        resourceId: randomUUID(),
        occurredAt: s.occurredAt.toISOString(),
      }));
      // Each entry as a row of audit_log_sealed, built by PostgreSQL from the same values.
      const payload = `[${rows
        .map(
          (r) =>
            `{"prev": ${JSON.stringify(r.prev)}, "row": {"id": "${r.id}", "workspace_id": "${r.workspaceId}", "occurred_at": "${r.occurredAt}",
              "action": "${r.action}", "resource_type": "${r.resourceType}", "resource_id": "${r.resourceId}",
              "resource_name": ${JSON.stringify(r.resourceName)}, "actor_id": ${JSON.stringify(r.actorId)},
              "actor_name": ${JSON.stringify(r.actorName)}, "actor_email": ${JSON.stringify(r.actorEmail)},
              "request_id": ${JSON.stringify(r.requestId)}, "ip": ${JSON.stringify(r.ip)}, "user_agent": ${JSON.stringify(r.userAgent)},
              "changes": ${r.changes}, "seq": ${r.seq}, "prev_hash": ${JSON.stringify(r.prev)}, "hash": "",
              "actor_kind": ${JSON.stringify(r.actorKind)}}}`,
        )
        .join(',')}]`;
      const { rows: hashes } = await superuser.query<{ hash: string }>(
        `SELECT audit_log_digest(e->>'prev', jsonb_populate_record(NULL::audit_log_sealed, e->'row')) AS hash
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n`,
        [payload],
      );
      const mismatches = rows.filter((r, i) => {
        const fields: ChainedEntryFields = {
          seq: r.seq,
          prevHash: r.prev,
          id: r.id,
          workspaceId: r.workspaceId,
          occurredAt: r.occurredAt,
          action: r.action,
          resourceType: r.resourceType,
          resourceId: r.resourceId,
          resourceName: r.resourceName,
          actorKind: r.actorKind,
          actorId: r.actorId,
          actorName: r.actorName,
          actorEmail: r.actorEmail,
          requestId: r.requestId,
          ip: r.ip,
          userAgent: r.userAgent,
          changes: parseJson(r.changes),
        };
        return chainHash(fields) !== hashes[i].hash;
      });
      expect(mismatches).toEqual([]);
      expect(rows.filter((r) => r.actorKind === null).length).toBeGreaterThan(0);
    });

    it('an export of generated entries verifies offline against a digest, entry by entry', async () => {
      const ws = await createWorkspace(t.app, 'Generated');
      const values = fc.sample(
        fc.record({
          name: fc
            .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
            .map((s) => s.replaceAll('\u0000', '') || 'x'),
          changes: fc
            .jsonValue({ maxDepth: 2 })
            .map((v) => JSON.parse(JSON.stringify([{ field: 'x', after: v }]).replace(/\\u0000/g, '')) as JsonValue),
          ip: fc.option(fc.ipV4()),
        }),
        150,
      );
      await superuser.query(
        `SELECT audit_log_append(jsonb_agg(jsonb_build_object('id', gen_random_uuid(), 'workspace_id', $1::uuid,
           'occurred_at', now() - make_interval(secs => (e->>'n')::int), 'action', 'updated', 'resource_type', 'source',
           'resource_id', gen_random_uuid(), 'resource_name', e->>'name', 'actor_name', 'Gen', 'ip', e->>'ip',
           'user_agent', 'fc/1', 'request_id', 'r' || (e->>'n'), 'changes', e->'changes')))
         FROM jsonb_array_elements($2::jsonb) e`,
        [ws.workspaceId, JSON.stringify(values.map((v, n) => ({ ...v, n })))],
      );
      const digest = await issue(ws);
      await new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth).create('sources'); // after the digest
      const exported = await exportOf(ws);
      const pem = await publicPem(digest.keyId);
      const report = verifyExportOffline(exported, JSON.stringify(digest), pem);
      expect(report.lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.lines).toContain(`PASS  entry hashes: all ${digest.seq + 1} recompute to their recorded hash`);
      expect(report.lines.at(-1)).toBe('RESULT valid');
      // Every line's recomputed hash is the database's.
      for (const line of exported.trim().split('\n')) {
        const parsed = parseJson(line) as { [k: string]: JsonValue };
        const chain = parsed.chain as { [k: string]: JsonValue };
        expect(chain.seq).toBeInstanceOf(JsonNumber);
      }
    });

    it('npm run cli -- verify prints one line per check and exits 1 naming an altered entry', async () => {
      const ws = await createWorkspace(t.app, 'Offline CLI');
      await new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth).create('segments');
      const digest = await issue(ws);
      const dir = mkdtempSync(join(tmpdir(), 'audit-offline-'));
      const files = { export: join(dir, 'log.ndjson'), digest: join(dir, 'digest.json'), key: join(dir, 'key.pem') };
      const exported = await exportOf(ws);
      writeFileSync(files.export, exported);
      writeFileSync(files.digest, JSON.stringify(digest));
      writeFileSync(files.key, await publicPem(digest.keyId));
      const cli = async () => {
        try {
          const { stdout } = await run(
            'npm',
            [
              'run',
              '-s',
              'cli',
              '--',
              'verify',
              '--export',
              files.export,
              '--digest',
              files.digest,
              '--public-key',
              files.key,
            ],
            {
              cwd: join(__dirname, '..'),
              env: { ...process.env, DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none', NODE_OPTIONS: '' },
            },
          );
          return { code: 0, stdout };
        } catch (error) {
          return error as { code: number; stdout: string };
        }
      };
      const good = await cli();
      expect(good.code).toBe(0);
      expect(good.stdout.trim().split('\n')).toEqual([
        `PASS  digest signature: valid (key ${digest.keyId}; workspace ${ws.workspaceId}, seq ${digest.seq}, issued ${digest.issuedAt})`,
        `PASS  export: ${digest.seq} sealed entries, seq 1 to ${digest.seq}`,
        `PASS  entry hashes: all ${digest.seq} recompute to their recorded hash`,
        'PASS  chain links: every entry links to the one before it',
        `PASS  digest head: entry ${await idAt(ws, digest.seq)} (seq ${digest.seq}) has the signed hash`,
        `PASS  coverage: ${digest.seq} entries are covered by the digest`,
        'RESULT valid',
      ]);

      // Entries written after the digest extend it.
      await new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth).create('sources');
      const extended = await exportOf(ws);
      writeFileSync(files.export, extended);
      const last = (JSON.parse(extended.trim().split('\n')[0]) as { chain: { seq: number } }).chain.seq;
      expect(last).toBeGreaterThan(digest.seq);
      const longer = await cli();
      expect(longer.code).toBe(0);
      expect(longer.stdout.trim().split('\n').slice(-2)).toEqual([
        `PASS  coverage: ${digest.seq} entries are covered by the digest; ${last - digest.seq} later entries (seq ${digest.seq + 1} to ${last}) extend it`,
        'RESULT valid',
      ]);

      // Alter one entry in the export: the check names it, exit 1.
      const lines = exported.trim().split('\n');
      const victim = JSON.parse(lines[1]) as { id: string; resourceName: string; chain: { seq: number } };
      lines[1] = lines[1].replace(JSON.stringify(victim.resourceName), '"Someone else"');
      writeFileSync(files.export, lines.join('\n'));
      const bad = await cli();
      expect(bad.code).toBe(1);
      expect(bad.stdout).toContain(
        `FAIL  entry hashes: entry ${victim.id} (seq ${victim.chain.seq}) was altered: it does not hash to its recorded hash`,
      );
      expect(bad.stdout.trim().split('\n').at(-1)).toBe('RESULT INVALID');

      // A consistent rewrite exported afterwards fails at the digest's head.
      writeFileSync(files.export, exported);
      await rewrite(ws, 1);
      writeFileSync(files.export, await exportOf(ws));
      const rewritten = await cli();
      expect(rewritten.code).toBe(1);
      expect(rewritten.stdout).toContain('PASS  entry hashes');
      expect(rewritten.stdout).toMatch(
        /FAIL {2}digest head: entry .* \(seq \d+\) has hash [0-9a-f]{64}, the digest signed/,
      );

      // A tampered digest or the wrong key.
      writeFileSync(files.digest, JSON.stringify({ ...digest, seq: digest.seq - 1 }));
      expect((await cli()).stdout).toMatch(/FAIL {2}digest signature: INVALID/);
      writeFileSync(files.digest, JSON.stringify(digest));
      writeFileSync(files.key, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
      expect((await cli()).stdout).toMatch(/FAIL {2}digest signature: the digest names key/);
    });

    it('reports missing and reordered lines of an export', async () => {
      const ws = await createWorkspace(t.app, 'Gaps');
      await new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth).create('segments');
      const digest = await issue(ws);
      const lines = (await exportOf(ws)).trim().split('\n');
      const pem = await publicPem(digest.keyId);
      const without = lines.filter((_, i) => i !== 1); // newest first: the one before the newest
      const { seq } = (JSON.parse(lines[1]) as { chain: { seq: number } }).chain;
      const report = verifyExportOffline(without.reverse().join('\n'), JSON.stringify(digest), pem);
      expect(report.ok).toBe(false);
      expect(report.lines).toContain(`FAIL  chain links: entries seq ${seq} to ${seq} are missing from the export`);
      const plain = verifyExportOffline((await exportOf(ws, 'format=ndjson')).trim(), JSON.stringify(digest), pem);
      expect(plain.lines).toContain(
        'FAIL  export line 1: it has no `chain` object: export with format=ndjson&chain=true',
      );
    });
  });
});

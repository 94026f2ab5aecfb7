import { Client } from 'pg';
import { AuditStreamDeliverer } from '../src/audit/streams/audit-stream-deliverer.service';
import { STREAM_RESOLVER, type StreamResolver } from '../src/audit/streams/stream-destination';
import { loadConfig } from '../src/config/app-config';
import { createTestDatabase, type TestDatabase } from './database';
import { ResourceFactory } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';
import { captureLogLines } from './log-capture';
import { until } from './until';
import { signatureValid, StreamReceiver } from './stream-receiver';

const SECRET = 'whsec-0123456789abcdef-stream';

interface StreamJson {
  id: string;
  url: string;
  createdAt: string;
  lastDeliveredEntryId: string | null;
  lastDeliveredAt: string | null;
  lagSeconds: number;
  lastError: string | null;
}

/** Fast timers: a poll every 100 ms, sealing every 100 ms, a 1 s timeout, retries from 100 ms to 1 s. */
const FAST = {
  auditSealIntervalMs: 100,
  auditStreamsPollMs: 100,
  auditStreamsTimeoutMs: 1000,
  auditStreamsRetryMinMs: 100,
  auditStreamsRetryMaxMs: 1000,
};

describe('Log streams', () => {
  describe('with a local receiver (AUDIT_STREAMS_ALLOW_PRIVATE=true)', () => {
    let t: TestApp;
    let ws: TestWorkspace;
    let other: TestWorkspace;
    let db: Client;
    let receiver: StreamReceiver;

    beforeAll(async () => {
      t = await createTestApp({ ...FAST, auditStreamsAllowPrivate: true, auditStreamsBatch: 7 });
      ws = await createWorkspace(t.app);
      other = await createWorkspace(t.app, 'Other');
      db = new Client({ connectionString: t.database.url });
      await db.connect();
      receiver = await StreamReceiver.start();
    });
    afterAll(async () => {
      await receiver.close();
      await db.end();
      await t.close();
    });

    const streams = (w: TestWorkspace, suffix = '') => `/api/workspaces/${w.workspaceId}/audit-streams${suffix}`;
    const status = async (id: string): Promise<StreamJson> =>
      (
        await t.http
          .get(streams(ws, `/${id}`))
          .set(ws.admin.auth)
          .expect(200)
      ).body as StreamJson;
    const entries = async (workspaceId: string) =>
      (
        await db.query<{ id: string; seq: string | null }>(
          `SELECT id, seq::text FROM audit_logs WHERE workspace_id = $1 ORDER BY audit_logs.seq NULLS LAST`,
          [workspaceId],
        )
      ).rows;

    it('delivers every entry once, in seq order, signed, retrying 500s and a timeout; status shows the error and the lag', async () => {
      const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
      for (let i = 0; i < 4; i++) await api.create('segments'); // 12 entries: source, model, segment each
      // Two 500s, then one request left unanswered (the service's 1 s timeout), then slow answers.
      receiver.answer = (n, request) => {
        if (request.path !== '/ordered') return { status: 200 };
        if (n < 2) return { status: 500 };
        if (n === 2) return 'hang';
        return { status: 200, delayMs: 50 };
      };
      const created = await t.http
        .post(streams(ws))
        .set(ws.admin.auth)
        .send({ url: receiver.url('/ordered'), secret: SECRET })
        .expect(201);
      const stream = created.body as StreamJson;
      expect(stream).toEqual({
        id: expect.any(String),
        url: receiver.url('/ordered'),
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        lastDeliveredEntryId: null,
        lastDeliveredAt: null,
        lagSeconds: expect.any(Number),
        lastError: null,
      });

      const failing = await until('a failed delivery shown in the status', async () => {
        const s = await status(stream.id);
        return s.lastError ? s : undefined;
      });
      expect(failing.lastError).toMatch(/500/);
      expect(failing.lagSeconds).toBeGreaterThan(0);
      expect(failing.lastDeliveredEntryId).toBeNull();

      for (let i = 0; i < 3; i++) await api.create('sources'); // written while it is failing
      const all = await until('every entry sealed and delivered', async () => {
        const rows = await entries(ws.workspaceId);
        const accepted = new Set(receiver.accepted('/ordered'));
        return rows.length >= 15 && rows.every((r) => r.seq !== null && accepted.has(r.id)) ? rows : undefined;
      });

      // Accepted batches, in the order answered, are exactly the log in seq order: nothing skipped or doubled.
      expect(receiver.accepted('/ordered')).toEqual(all.map((r) => r.id));
      const seqOf = new Map(all.map((r) => [r.id, Number(r.seq)]));
      const mine = receiver.requests.filter((r) => r.path === '/ordered');
      expect(mine.slice(0, 3).map((r) => r.outcome)).toEqual([500, 500, 'aborted']);
      for (const request of mine) {
        expect(request.contentType).toBe('application/x-ndjson');
        expect(request.userAgent).toBe('audit-log-service');
        expect(signatureValid(request.body, SECRET, request.signature)).toBe(true);
        expect(request.body.endsWith('\n')).toBe(true);
        expect(request.ids.length).toBeGreaterThan(0);
        expect(request.ids.length).toBeLessThanOrEqual(7);
        const seqs = request.ids.map((id) => seqOf.get(id)!);
        seqs.forEach((seq, i) => i > 0 && expect(seq).toBe(seqs[i - 1] + 1));
      }
      // A retried batch starts where the failed one did.
      expect(mine[1].ids).toEqual(mine[0].ids);
      expect(mine[3].ids).toEqual(mine[0].ids);

      // Each line is the entry exactly as the API returns it.
      const last = all[all.length - 1].id;
      const fromApi = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs/${last}`)
        .set(ws.admin.auth)
        .expect(200);
      const line = mine.flatMap((r) => r.lines).find((l) => l.id === last);
      expect(line).toEqual(fromApi.body);

      const caughtUp = await until('the status to show the last entry', async () => {
        const s = await status(stream.id);
        return s.lastDeliveredEntryId === last ? s : undefined;
      });
      expect(caughtUp).toMatchObject({ lastError: null, lagSeconds: 0 });
      expect(Date.parse(caughtUp.lastDeliveredAt!)).toBeGreaterThan(Date.parse(caughtUp.createdAt));
      // Another workspace's entries never reach this stream.
      const others = new Set((await entries(other.workspaceId)).map((r) => r.id));
      expect(receiver.accepted('/ordered').some((id) => others.has(id))).toBe(false);
    }, 90_000);

    it('writes no audit entry for its own bookkeeping', async () => {
      const stream = (
        await t.http
          .post(streams(other))
          .set(other.admin.auth)
          .send({ url: receiver.url('/quiet'), secret: SECRET })
          .expect(201)
      ).body as StreamJson;
      const count = async () =>
        Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs')).rows[0].n);
      await new ResourceFactory(t.http, other.workspaceId, other.admin.auth).create('sources');
      const before = await count();
      const ids = (await entries(other.workspaceId)).map((r) => r.id);
      await until('the entries delivered', () =>
        ids.every((id) => receiver.accepted('/quiet').includes(id)) ? true : undefined,
      );
      await new Promise((resolve) => setTimeout(resolve, 500)); // several polls with nothing to send
      expect(await count()).toBe(before);
      await t.http
        .delete(streams(other, `/${stream.id}`))
        .set(other.admin.auth)
        .expect(204);
    }, 60_000);

    it('stops delivering once the stream is deleted', async () => {
      const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
      const stream = (
        await t.http
          .post(streams(ws))
          .set(ws.admin.auth)
          .send({ url: receiver.url('/deleted'), secret: SECRET })
          .expect(201)
      ).body as StreamJson;
      const first = await api.create('sources');
      await until('the first entries delivered', () =>
        receiver.requests.some((r) => r.path === '/deleted' && r.lines.some((l) => l.resourceId === first.id))
          ? true
          : undefined,
      );
      await t.http
        .delete(streams(ws, `/${stream.id}`))
        .set(ws.admin.auth)
        .expect(204);
      await t.http
        .get(streams(ws, `/${stream.id}`))
        .set(ws.admin.auth)
        .expect(404);
      const after = await api.create('sources');
      await new Promise((resolve) => setTimeout(resolve, 1500)); // sealed and polled many times over
      expect(
        receiver.requests.some((r) => r.path === '/deleted' && r.lines.some((l) => l.resourceId === after.id)),
      ).toBe(false);
    }, 60_000);

    it('never returns, stores in clear, or writes into the audit log or the service’s own log lines the secret', async () => {
      // Every level the service logs at, while the stream is added, fails to deliver and is deleted.
      const { output, restore } = captureLogLines();
      receiver.answer = (_n, request) => ({ status: request.path === '/secret' ? 500 : 200 });
      try {
        const created = await t.http
          .post(streams(ws))
          .set(ws.admin.auth)
          .send({ url: receiver.url('/secret'), secret: SECRET })
          .expect(201);
        const failed = await until('a failed delivery shown in the status', async () => {
          const now = await status(created.body.id as string);
          return now.lastError !== null && receiver.requests.some((r) => r.path === '/secret') ? now : undefined;
        });
        const listed = await t.http.get(streams(ws)).set(ws.admin.auth).expect(200);
        const one = await t.http
          .get(streams(ws, `/${created.body.id}`))
          .set(ws.admin.auth)
          .expect(200);
        for (const text of [created.text, listed.text, one.text, JSON.stringify(failed)]) {
          expect(text).not.toContain(SECRET);
        }
        expect(listed.body.items.map((s: StreamJson) => s.id)).toContain(created.body.id);
        expect(Object.keys(one.body).sort()).toEqual(
          ['createdAt', 'id', 'lagSeconds', 'lastDeliveredAt', 'lastDeliveredEntryId', 'lastError', 'url'].sort(),
        );
        const stored = await db.query<{ row: string }>(
          'SELECT row_to_json(s)::text AS row FROM audit_streams s WHERE id = $1',
          [created.body.id],
        );
        expect(stored.rows[0].row).not.toContain(SECRET);
        const logged = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM audit_logs WHERE changes::text LIKE '%' || $1 || '%' OR resource_name LIKE '%' || $1 || '%'`,
          [SECRET],
        );
        expect(logged.rows[0].n).toBe('0');
        await t.http
          .delete(streams(ws, `/${created.body.id}`))
          .set(ws.admin.auth)
          .expect(204);
        // The service did log while this ran (the failed deliveries), and never the secret.
        expect(output.join('')).toContain(created.body.id as string);
        expect(output.join('')).not.toContain(SECRET);
      } finally {
        receiver.answer = () => ({ status: 200 });
        restore();
      }
    });

    it('records adding and deleting a stream as the workspace’s entries, under streams["<id>"], secret redacted', async () => {
      const url = receiver.url('/audited');
      const created = await t.http.post(streams(ws)).set(ws.admin.auth).send({ url, secret: SECRET }).expect(201);
      const id = created.body.id as string;
      await t.http
        .delete(streams(ws, `/${id}`))
        .set(ws.admin.auth)
        .expect(204);
      const log = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs`)
        .query({ resourceType: 'workspace', resourceId: ws.workspaceId })
        .set(ws.admin.auth)
        .expect(200);
      const mine = (log.body.items as { changes: { field: string }[] }[]).filter((e) =>
        e.changes.some((c) => c.field.startsWith(`streams["${id}"]`)),
      );
      expect(mine).toEqual([
        expect.objectContaining({
          action: 'deleted',
          actionName: 'Log stream deleted',
          resourceType: 'workspace',
          resourceId: ws.workspaceId,
          resourceName: 'Acme',
          user: expect.objectContaining({ id: ws.admin.id }),
          changes: [
            { field: `streams["${id}"].url`, before: url },
            { field: `streams["${id}"].secret`, before: '[REDACTED]' },
          ],
        }),
        expect.objectContaining({
          action: 'created',
          actionName: 'Log stream added',
          resourceType: 'workspace',
          resourceId: ws.workspaceId,
          user: expect.objectContaining({ id: ws.admin.id }),
          changes: [
            { field: `streams["${id}"].url`, after: url },
            { field: `streams["${id}"].secret`, after: '[REDACTED]' },
          ],
        }),
      ]);
      expect(log.text).not.toContain(SECRET);
    });

    it('lists a workspace’s streams newest first, and only its own', async () => {
      const a = (
        await t.http
          .post(streams(ws))
          .set(ws.admin.auth)
          .send({ url: receiver.url('/a'), secret: SECRET })
      ).body as StreamJson;
      const b = (
        await t.http
          .post(streams(ws))
          .set(ws.admin.auth)
          .send({ url: receiver.url('/b'), secret: SECRET })
      ).body as StreamJson;
      const listed = (await t.http.get(streams(ws)).set(ws.admin.auth).expect(200)).body.items as StreamJson[];
      const ids = listed.map((s) => s.id);
      expect(ids.indexOf(b.id)).toBeLessThan(ids.indexOf(a.id));
      const theirs = (await t.http.get(streams(other)).set(other.admin.auth).expect(200)).body.items as StreamJson[];
      expect(theirs.map((s) => s.id)).not.toContain(a.id);
      for (const s of [a, b])
        await t.http
          .delete(streams(ws, `/${s.id}`))
          .set(ws.admin.auth)
          .expect(204);
    });

    it('keeps the limit when many streams are added at once: 10 created, the rest 409', async () => {
      const rush = await createWorkspace(t.app, 'Rush');
      const answers = await Promise.all(
        Array.from({ length: 14 }, (_, i) =>
          t.http
            .post(streams(rush))
            .set(rush.admin.auth)
            .send({ url: receiver.url(`/rush-${i}`), secret: SECRET }),
        ),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([...Array(10).fill(201), ...Array(4).fill(409)]);
      const listed = (await t.http.get(streams(rush)).set(rush.admin.auth).expect(200)).body.items as StreamJson[];
      expect(listed).toHaveLength(10);
      for (const s of listed)
        await t.http
          .delete(streams(rush, `/${s.id}`))
          .set(rush.admin.auth)
          .expect(204);
    });

    it('allows 10 streams per workspace: the eleventh is a 409', async () => {
      const many = await createWorkspace(t.app, 'Many');
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        const res = await t.http
          .post(streams(many))
          .set(many.admin.auth)
          .send({ url: receiver.url(`/many-${i}`), secret: SECRET })
          .expect(201);
        ids.push(res.body.id as string);
      }
      const refused = await t.http
        .post(streams(many))
        .set(many.admin.auth)
        .send({ url: receiver.url('/many-10'), secret: SECRET })
        .expect(409);
      expect(refused.body.message).toMatch(/at most 10 log streams/);
      await t.http
        .delete(streams(many, `/${ids[0]}`))
        .set(many.admin.auth)
        .expect(204);
      await t.http
        .post(streams(many))
        .set(many.admin.auth)
        .send({ url: receiver.url('/many-10'), secret: SECRET })
        .expect(201);
    });

    it('is for admins: 403 for a member, 404 for another workspace or an unknown stream, 400 for a bad id', async () => {
      const stream = (
        await t.http
          .post(streams(ws))
          .set(ws.admin.auth)
          .send({ url: receiver.url('/x'), secret: SECRET })
          .expect(201)
      ).body as StreamJson;
      await t.http.get(streams(ws)).set(ws.member.auth).expect(403);
      await t.http
        .get(streams(ws, `/${stream.id}`))
        .set(ws.member.auth)
        .expect(403);
      await t.http
        .post(streams(ws))
        .set(ws.member.auth)
        .send({ url: receiver.url('/x'), secret: SECRET })
        .expect(403);
      await t.http
        .delete(streams(ws, `/${stream.id}`))
        .set(ws.member.auth)
        .expect(403);
      // A member of another workspace, admin there, sees nothing here.
      await t.http.get(streams(ws)).set(other.admin.auth).expect(404);
      await t.http
        .get(streams(other, `/${stream.id}`))
        .set(other.admin.auth)
        .expect(404);
      await t.http
        .delete(streams(other, `/${stream.id}`))
        .set(other.admin.auth)
        .expect(404);
      await t.http.get(streams(ws, '/4b0c1a5e-0000-4000-8000-000000000000')).set(ws.admin.auth).expect(404);
      const bad = await t.http.get(streams(ws, '/not-a-uuid')).set(ws.admin.auth).expect(400);
      expect(bad.body.message).toMatch(/id must be a UUID/);
      await t.http.get(streams(ws)).expect(401);
      await t.http
        .get(streams(ws, `/${stream.id}`))
        .set(ws.admin.auth)
        .expect(200);
      await t.http
        .delete(streams(ws, `/${stream.id}`))
        .set(ws.admin.auth)
        .expect(204);
      await t.http
        .delete(streams(ws, `/${stream.id}`))
        .set(ws.admin.auth)
        .expect(404);
    });

    it('refuses bad input with a 400 naming what is accepted', async () => {
      const cases: [unknown, RegExp][] = [
        [{ secret: SECRET }, /url must be/],
        [{ url: receiver.url(), secret: SECRET, headers: {} }, /property headers should not exist/],
        [{ url: 42, secret: SECRET }, /url must be/],
        [{ url: 'not a url', secret: SECRET }, /url must be an absolute http\(s\):\/\/ URL/],
        [{ url: 'ftp://127.0.0.1/x', secret: SECRET }, /url must be an absolute http\(s\):\/\/ URL/],
        [{ url: 'http://user:pw@127.0.0.1/x', secret: SECRET }, /url must not hold credentials/],
        [{ url: `http://127.0.0.1/${'a'.repeat(2100)}`, secret: SECRET }, /url must be at most 2048 characters/],
        [{ url: receiver.url() }, /secret must be 16 to 1024 characters/],
        [{ url: receiver.url(), secret: 'short' }, /secret must be 16 to 1024 characters/],
        [{ url: receiver.url(), secret: 's'.repeat(15) }, /secret must be 16 to 1024 characters/],
        [{ url: receiver.url(), secret: 's'.repeat(1025) }, /secret must be 16 to 1024 characters/],
        [{ url: receiver.url(), secret: 1234567890123456 }, /secret must be 16 to 1024 characters/],
      ];
      for (const [body, message] of cases) {
        const res = await t.http
          .post(streams(ws))
          .set(ws.admin.auth)
          .send(body as object);
        expect({ body, status: res.status }).toEqual({ body, status: 400 });
        expect({ body, message: JSON.stringify(res.body.message) }).toEqual({
          body,
          message: expect.stringMatching(message),
        });
        expect(JSON.stringify(res.body)).not.toContain(SECRET);
      }
      for (const secret of ['s'.repeat(16), 's'.repeat(1024)]) {
        const accepted = await t.http
          .post(streams(ws))
          .set(ws.admin.auth)
          .send({ url: receiver.url('/bounds'), secret })
          .expect(201);
        await t.http
          .delete(streams(ws, `/${accepted.body.id}`))
          .set(ws.admin.auth)
          .expect(204);
      }
    });
  });

  describe('batches cut by AUDIT_STREAMS_BATCH_BYTES', () => {
    /** Room for a few entries per batch; the large entry below is past it in bytes, though not in characters. */
    const LIMIT = 2048;
    let t: TestApp;
    let ws: TestWorkspace;
    let db: Client;
    let receiver: StreamReceiver;

    beforeAll(async () => {
      t = await createTestApp({
        ...FAST,
        auditStreamsAllowPrivate: true,
        auditStreamsBatch: 100,
        auditStreamsBatchBytes: LIMIT,
      });
      ws = await createWorkspace(t.app);
      db = new Client({ connectionString: t.database.url });
      await db.connect();
      receiver = await StreamReceiver.start();
    });
    afterAll(async () => {
      await receiver.close();
      await db.end();
      await t.close();
    });

    it('grows a batch up to the limit and never past it; a larger entry goes alone; nothing lost, in order', async () => {
      let open = false;
      receiver.answer = () => (open ? { status: 200 } : { status: 503 });
      await t.http
        .post(`/api/workspaces/${ws.workspaceId}/audit-streams`)
        .set(ws.admin.auth)
        .send({ url: receiver.url('/bytes'), secret: SECRET })
        .expect(201);
      const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
      // '€' is 3 bytes and 1 character: a limit counted in characters would let batches past it.
      const small = () => api.create('sources', { config: { host: '€'.repeat(100) } });
      for (let i = 0; i < 6; i++) await small();
      const large = await api.create('sources', { config: { host: '€'.repeat(600) } });
      for (let i = 0; i < 6; i++) await small();
      // The whole log is sealed before any batch is accepted: every batch but the last is cut by size alone.
      const log = await until('every entry sealed', async () => {
        const rows = (
          await db.query<{ id: string; seq: string | null; resource_id: string }>(
            `SELECT id, seq::text, resource_id FROM audit_logs WHERE workspace_id = $1 ORDER BY audit_logs.seq NULLS LAST`,
            [ws.workspaceId],
          )
        ).rows;
        return rows.every((r) => r.seq !== null) ? rows : undefined;
      });
      open = true;
      await until('every entry delivered', () => (receiver.accepted().length >= log.length ? true : undefined), 20_000);

      expect(receiver.accepted()).toEqual(log.map((r) => r.id));
      const batches = receiver.requests
        .filter((r) => r.outcome === 200)
        .sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
      const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
      const largeId = log.find((r) => r.resource_id === large.id)!.id;
      const alone = batches.find((b) => b.ids.includes(largeId))!;
      expect(alone.ids).toEqual([largeId]);
      expect(bytes(alone.body)).toBeGreaterThan(LIMIT);
      batches.forEach((batch, i) => {
        if (batch === alone) return;
        expect(bytes(batch.body)).toBeLessThanOrEqual(LIMIT);
        // It stopped growing only because the next entry would have taken it past the limit.
        const next = batches[i + 1];
        if (next)
          expect(bytes(batch.body) + bytes(next.body.slice(0, next.body.indexOf('\n') + 1))).toBeGreaterThan(LIMIT);
      });
    }, 40_000);
  });

  describe('a destination down for an hour', () => {
    /**
     * The attempts an hour brings at the default backoff, each wait at its shortest (half its ceiling):
     * an hour's outage is that many failures in a row, here with waits of milliseconds.
     */
    const defaults = loadConfig({});
    let attemptsInAnHour = 0;
    for (let at = 0; at < 3_600_000; attemptsInAnHour++) {
      at += Math.min(defaults.auditStreamsRetryMaxMs, defaults.auditStreamsRetryMinMs * 2 ** attemptsInAnHour) / 2;
    }
    let t: TestApp;
    let ws: TestWorkspace;
    let db: Client;
    let receiver: StreamReceiver;

    beforeAll(async () => {
      t = await createTestApp({
        auditSealIntervalMs: 100,
        auditStreamsPollMs: 50,
        auditStreamsTimeoutMs: 1000,
        auditStreamsRetryMinMs: 10,
        auditStreamsRetryMaxMs: 20,
        auditStreamsAllowPrivate: true,
        auditStreamsBatch: 5,
      });
      ws = await createWorkspace(t.app);
      db = new Client({ connectionString: t.database.url });
      await db.connect();
      receiver = await StreamReceiver.start();
    });
    afterAll(async () => {
      jest.restoreAllMocks();
      await receiver.close();
      await db.end();
      await t.close();
    });

    it('loses nothing: the same batch is retried, then the backlog goes batch after batch without a poll between them', async () => {
      expect(attemptsInAnHour).toBeGreaterThan(30);
      const deliverer = t.app.get(AuditStreamDeliverer);
      let open = false;
      receiver.answer = () => {
        // From the first accepted batch on, no poll starts a delivery: the backlog goes in the one already running.
        if (open) jest.spyOn(deliverer, 'poll').mockResolvedValue();
        return { status: open ? 200 : 503 };
      };
      const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
      for (let i = 0; i < 6; i++) await api.create('sources');
      const created = await t.http
        .post(`/api/workspaces/${ws.workspaceId}/audit-streams`)
        .set(ws.admin.auth)
        .send({ url: receiver.url('/outage'), secret: SECRET })
        .expect(201);
      const failed = () => receiver.requests.filter((r) => r.outcome === 503);
      await until('half the outage', () => (failed().length >= attemptsInAnHour / 2 ? true : undefined), 60_000);
      for (let i = 0; i < 6; i++) await api.create('sources'); // written while it is down
      const log = await until(
        'the whole outage, every entry sealed',
        async () => {
          if (failed().length < attemptsInAnHour) return undefined;
          const rows = (
            await db.query<{ id: string; seq: string | null }>(
              `SELECT id, seq::text FROM audit_logs WHERE workspace_id = $1 ORDER BY audit_logs.seq NULLS LAST`,
              [ws.workspaceId],
            )
          ).rows;
          return rows.every((r) => r.seq !== null) ? rows : undefined;
        },
        60_000,
      );
      open = true;
      await until('every entry delivered', () => (receiver.accepted().length >= log.length ? true : undefined), 20_000);

      expect(receiver.accepted()).toEqual(log.map((r) => r.id));
      const failures = failed();
      expect(failures.length).toBeGreaterThanOrEqual(attemptsInAnHour);
      for (const attempt of failures) expect(attempt.ids).toEqual(log.slice(0, 5).map((r) => r.id));
      expect(receiver.requests.filter((r) => r.outcome === 200).length).toBeGreaterThanOrEqual(
        Math.ceil(log.length / 5),
      );
      const status = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-streams/${created.body.id}`)
        .set(ws.admin.auth)
        .expect(200);
      expect(status.body).toMatchObject({
        lastDeliveredEntryId: log[log.length - 1].id,
        lastError: null,
        lagSeconds: 0,
      });
    }, 120_000);
  });

  describe('one stream at a time per process (AUDIT_STREAMS_PER_PROCESS=1)', () => {
    let database: TestDatabase;
    let t: TestApp;
    let ws: TestWorkspace;
    let db: Client;
    let receiver: StreamReceiver;

    beforeAll(async () => {
      database = await createTestDatabase();
      t = await createTestApp(
        { ...FAST, auditStreamsAllowPrivate: true, auditStreamsBatch: 4, auditStreamsPerProcess: 1 },
        {},
        database.url,
      );
      ws = await createWorkspace(t.app);
      db = new Client({ connectionString: database.url });
      await db.connect();
      receiver = await StreamReceiver.start();
    });
    afterAll(async () => {
      await t.close();
      await receiver.close();
      await db.end();
      await database.drop();
    });

    const create = async (path: string) =>
      (
        await t.http
          .post(`/api/workspaces/${ws.workspaceId}/audit-streams`)
          .set(ws.admin.auth)
          .send({ url: receiver.url(path), secret: SECRET })
          .expect(201)
      ).body as StreamJson;
    const log = async () =>
      (
        await db.query<{ id: string; seq: string | null }>(
          `SELECT id, seq::text FROM audit_logs WHERE workspace_id = $1 ORDER BY audit_logs.seq NULLS LAST`,
          [ws.workspaceId],
        )
      ).rows;

    it('delivers two streams one after the other, never both at once; any 2xx is a delivery', async () => {
      const api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
      for (let i = 0; i < 4; i++) await api.create('sources');
      receiver.answer = (n) => ({ status: [200, 202, 204][n % 3], delayMs: 50 });
      await create('/first');
      await create('/second');
      const rows = await until('both streams caught up', async () => {
        const now = await log();
        return now.every((r) => r.seq !== null) &&
          ['/first', '/second'].every((path) => receiver.accepted(path).length >= now.length)
          ? now
          : undefined;
      });
      for (const path of ['/first', '/second']) expect(receiver.accepted(path)).toEqual(rows.map((r) => r.id));
      expect(new Set(receiver.requests.map((r) => r.outcome))).toEqual(new Set([200, 202, 204]));
      const requests = [...receiver.requests].sort((a, b) => a.startedAt - b.startedAt);
      for (let i = 1; i < requests.length; i++) {
        expect(requests[i].startedAt).toBeGreaterThanOrEqual(requests[i - 1].endedAt!);
      }
    }, 60_000);

    it('hands its stream back when it stops, mid-delivery', async () => {
      receiver.answer = () => ({ status: 200, delayMs: 2000 });
      const stream = await create('/stopped');
      await until('a batch on its way', () =>
        receiver.requests.some((r) => r.path === '/stopped' && r.outcome === undefined) ? true : undefined,
      );
      const lease = `SELECT lease_owner, lease_until FROM audit_stream_deliveries WHERE stream_id = $1`;
      expect((await db.query(lease, [stream.id])).rows[0].lease_owner).not.toBeNull();
      await t.app.close();
      expect((await db.query(lease, [stream.id])).rows).toEqual([{ lease_owner: null, lease_until: null }]);
      t = await createTestApp({ ...FAST, auditStreamsAllowPrivate: true }, {}, database.url);
    }, 60_000);
  });

  describe('an instance with another AUDIT_STREAMS_KEY', () => {
    const KEY = 'a1'.repeat(32);
    let database: TestDatabase;
    let receiver: StreamReceiver;
    let t: TestApp | undefined;

    beforeAll(async () => {
      database = await createTestDatabase();
      receiver = await StreamReceiver.start();
    });
    afterAll(async () => {
      await t?.close();
      await receiver.close();
      await database.drop();
    });

    const start = (key: string) =>
      createTestApp({ ...FAST, auditStreamsAllowPrivate: true, auditStreamsKey: key }, {}, database.url);

    it('sends nothing and says which key the secret needs; with the key back, delivers everything', async () => {
      t = await start(KEY);
      const ws = await createWorkspace(t.app);
      const created = await t.http
        .post(`/api/workspaces/${ws.workspaceId}/audit-streams`)
        .set(ws.admin.auth)
        .send({ url: receiver.url('/keyed'), secret: SECRET })
        .expect(201);
      await t.close();

      t = await start('b2'.repeat(32));
      const source = await new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth).create('sources');
      const status = () =>
        t!.http
          .get(`/api/workspaces/${ws.workspaceId}/audit-streams/${created.body.id}`)
          .set(ws.admin.auth)
          .expect(200)
          .then((res) => res.body as StreamJson);
      const refused = await until('the key mismatch in the status', async () => {
        const now = await status();
        return now.lastError?.includes('encrypted with key') ? now : undefined;
      });
      expect(refused.lastError).toMatch(
        /^the stream's secret was encrypted with key [0-9a-f]{16}, but this instance has key [0-9a-f]{16}: /,
      );
      expect(receiver.requests.flatMap((r) => r.lines).some((line) => line.resourceId === source.id)).toBe(false);
      await t.close();

      t = await start(KEY);
      await until('the entries of the other key’s time delivered', () =>
        receiver.accepted('/keyed').length > 0 &&
        receiver.requests.some((r) => r.outcome === 200 && r.lines.some((line) => line.resourceId === source.id))
          ? true
          : undefined,
      );
      expect((await status()).lastError).toBeNull();
    }, 60_000);
  });

  describe('without AUDIT_STREAMS_ALLOW_PRIVATE', () => {
    let t: TestApp;
    let ws: TestWorkspace;
    /** What the fake DNS answers, by host name. */
    const dns = new Map<string, string[]>();
    const resolver: StreamResolver = (host) => {
      const addresses = dns.get(host);
      if (!addresses)
        return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
      return Promise.resolve(addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
    };

    beforeAll(async () => {
      dns.set('localhost', ['127.0.0.1', '::1']);
      dns.set('logs.example.com', ['93.184.216.34']);
      dns.set('internal.example.com', ['10.1.2.3']);
      dns.set('mixed.example.com', ['93.184.216.34', '192.168.0.10']);
      dns.set('v6local.example.com', ['fd12:3456::1']);
      dns.set('rebind.example.com', ['93.184.216.35']);
      t = await createTestApp(
        { ...FAST, auditStreamsAllowPrivate: false },
        { providers: [[STREAM_RESOLVER, resolver]] },
      );
      ws = await createWorkspace(t.app);
    });
    afterAll(() => t.close());

    const post = (url: string) =>
      t.http.post(`/api/workspaces/${ws.workspaceId}/audit-streams`).set(ws.admin.auth).send({ url, secret: SECRET });

    it('refuses private, loopback, link-local, unspecified, multicast, reserved and IPv4-carrying IPv6 addresses in every spelling', async () => {
      const refused = [
        'https://127.0.0.1/in',
        'https://127.1/in',
        'https://localhost/in',
        'https://[::1]/in',
        'https://10.0.0.8/in',
        'https://172.16.5.4/in',
        'https://192.168.1.1/in',
        'https://169.254.169.254/latest/meta-data',
        'https://0.0.0.0/in',
        'https://2130706433/in',
        'https://0x7f000001/in',
        'https://[::ffff:127.0.0.1]/in',
        'https://[::ffff:a00:1]/in',
        'https://[fe80::1]/in',
        'https://[fd00::1]/in',
        'https://[::]/in',
        'https://100.64.0.1/in',
        'https://224.0.0.1/in',
        'https://[ff02::1]/in',
        'https://240.0.0.1/in',
        'https://[64:ff9b::7f00:1]/in',
        'https://[2002:7f00:1::]/in',
        'https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/in',
        'https://internal.example.com/in',
        'https://mixed.example.com/in',
        'https://v6local.example.com/in',
      ];
      for (const url of refused) {
        const res = await post(url);
        expect({ url, status: res.status }).toEqual({ url, status: 400 });
        expect({ url, message: res.body.message }).toEqual({
          url,
          message: expect.stringMatching(/public address.*AUDIT_STREAMS_ALLOW_PRIVATE/),
        });
      }
    });

    it('refuses http:// and names that do not resolve; accepts https:// to a public host', async () => {
      const plain = await post('http://logs.example.com/in').expect(400);
      expect(plain.body.message).toMatch(/url must be https:\/\//);
      const unknown = await post('https://nowhere.example.com/in').expect(400);
      expect(unknown.body.message).toMatch(/nowhere\.example\.com.*cannot be resolved/);
      const ok = await post('https://logs.example.com/in').expect(201);
      await t.http
        .delete(`/api/workspaces/${ws.workspaceId}/audit-streams/${ok.body.id}`)
        .set(ws.admin.auth)
        .expect(204);
    });

    it('checks the address again at each delivery: a name rebound to a loopback address is not contacted', async () => {
      const created = await post('https://rebind.example.com/in').expect(201);
      dns.set('rebind.example.com', ['127.0.0.1']);
      await new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth).create('sources');
      const failed = await until('the refusal in the status', async () => {
        const s = (
          await t.http
            .get(`/api/workspaces/${ws.workspaceId}/audit-streams/${created.body.id}`)
            .set(ws.admin.auth)
            .expect(200)
        ).body as StreamJson;
        return s.lastError ? s : undefined;
      });
      expect(failed.lastError).toMatch(/rebind\.example\.com resolves to 127\.0\.0\.1, not a public address/);
      expect(failed.lastDeliveredEntryId).toBeNull();
    });
  });
});

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { asUser, createAppRole } from './database';
import { listAuditEntries } from './log-invariant';
import { createTestApp, createWorkspace, type TestApp } from './test-app';

/**
 * Attacks on members, API tokens and log streams from outside: each test states the input that got
 * through and what must happen instead.
 */
describe('Red team: members, tokens and log streams', () => {
  let t: TestApp;
  const rand = () => randomBytes(4).toString('hex');
  const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('app role: UPDATE api_tokens SET revoked_at = NULL on a revoked token, or DELETE it and INSERT its hash again — expected: refused (a revocation is final), the token stays refused', async () => {
    const ws = await createWorkspace(t.app);
    const created = await t.http.post('/api/me/tokens').set(ws.admin.auth).send({ label: 'ci' }).expect(201);
    await t.http.delete(`/api/me/tokens/${created.body.id}`).set(ws.admin.auth).expect(204);
    const role = await createAppRole();
    const client = new Client({ connectionString: asUser(t.database.url, role.name) });
    client.on('error', () => undefined);
    await client.connect();
    try {
      for (const sql of [
        'UPDATE api_tokens SET revoked_at = NULL WHERE id = $1',
        "UPDATE api_tokens SET revoked_at = now() + interval '1 year' WHERE id = $1",
        'INSERT INTO api_tokens (id, user_id, label, token_hash, revoked_at) SELECT id, user_id, label, token_hash, NULL FROM api_tokens WHERE id = $1 ON CONFLICT (id) DO UPDATE SET revoked_at = NULL',
      ]) {
        await expect(client.query(sql, [created.body.id])).rejects.toThrow(/revoked/);
      }
      // Nor is the token deleted and put back under a new id with the same hash, revoked_at NULL:
      // a token is revoked, never deleted, so its hash stays taken.
      await expect(client.query('DELETE FROM api_tokens WHERE id = $1', [created.body.id])).rejects.toThrow(
        /permission denied/,
      );
      await expect(
        client.query(
          'INSERT INTO api_tokens (id, user_id, label, token_hash) SELECT gen_random_uuid(), user_id, label, token_hash FROM api_tokens WHERE id = $1',
          [created.body.id],
        ),
      ).rejects.toThrow(/api_tokens_token_hash_key/);
    } finally {
      await client.end();
      await role.drop();
    }
    await t.http.get('/api/me/tokens').set(auth(created.body.token)).expect(401);
    const found = await listAuditEntries(t.http, ws.workspaceId, ws.admin.auth, { resourceId: created.body.id });
    expect(found.map((e) => e.actionName)).toEqual(['API token revoked', 'API token created']);
  });

  it('POST /members: one new email added to four workspaces at once (each once) and to one workspace four times at once — expected: 201 in every workspace, one user; 201 once and "already a member" 409s in the one, never a 500', async () => {
    const workspaces = await Promise.all(Array.from({ length: 4 }, () => createWorkspace(t.app)));
    const email = `race-${rand()}@acme.test`;
    const add = (w: (typeof workspaces)[number]) =>
      t.http
        .post(`/api/workspaces/${w.workspaceId}/members`)
        .set(w.admin.auth)
        .send({ email, name: 'Race', role: 'member' });
    const across = await Promise.all(workspaces.map(add));
    expect(across.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    expect(new Set(across.map((r) => (r.body as { userId: string }).userId)).size).toBe(1);

    const ws = await createWorkspace(t.app);
    const again = `again-${rand()}@acme.test`;
    const same = await Promise.all(
      Array.from({ length: 4 }, () =>
        t.http
          .post(`/api/workspaces/${ws.workspaceId}/members`)
          .set(ws.admin.auth)
          .send({ email: again, name: 'Again', role: 'member' }),
      ),
    );
    expect(same.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
    for (const r of same.filter((r) => r.status === 409))
      expect(r.body.message).toBe(`${again} is already a member of this workspace.`);
  });

  it.each([
    ['a zero-width space in the local part', 'bob\u200b@acme.test'],
    ['a zero-width space in the domain', 'bob@acme\u200b.test'],
    ['a soft hyphen', 'bob\u00ad@acme.test'],
    ['a word joiner', 'b\u2060ob@acme.test'],
    ['a right-to-left override', 'bob\u202e@acme.test'],
    ['a dotted capital I (lower-cased: an i and a combining dot)', 'bobİ@acme.test'],
    ['a combining dot on a Latin letter that does not compose with it', 'bobq\u0307@acme.test'],
  ])(
    "POST /members: an existing member's email with %s — expected: 400 (an invisible character makes a look-alike second user), not a second member who reads as the first",
    async (_what, email) => {
      const ws = await createWorkspace(t.app);
      const first = `bob-${rand()}@acme.test`;
      const lookAlike = email.replace('bob', first.split('@')[0]);
      const add = (address: string) =>
        t.http
          .post(`/api/workspaces/${ws.workspaceId}/members`)
          .set(ws.admin.auth)
          .send({ email: address, name: 'Bob', role: 'member' });
      expect((await add(first)).status).toBe(201);
      const res = await add(lookAlike);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.message)).toMatch(/email must not contain invisible, control or space characters/);
    },
  );

  it.each([
    ['an IPv4-compatible IPv6 address of loopback', 'https://[::127.0.0.1]/audit'],
    ['an IPv4-compatible IPv6 address of a private network', 'https://[::10.0.0.1]/audit'],
    ['a deprecated site-local IPv6 address', 'https://[fec0::1]/audit'],
    ['a local-use NAT64 address', 'https://[64:ff9b:1::a00:1]/audit'],
  ])('POST /audit-streams: %s (%s) — expected: 400, not a public address', async (_what, url) => {
    const ws = await createWorkspace(t.app);
    const res = await t.http
      .post(`/api/workspaces/${ws.workspaceId}/audit-streams`)
      .set(ws.admin.auth)
      .send({ url, secret: 'whsec-0123456789abcdef-stream' });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.message)).toMatch(/not a public address/);
  });
});

/** A destination on loopback that answers each request with `handler` and counts the requests. */
async function destination(
  handler: http.RequestListener,
): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server = http.createServer((request, response) => {
    hits++;
    request.resume();
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/audit`,
    hits: () => hits,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('Red team: log stream delivery (AUDIT_STREAMS_ALLOW_PRIVATE=true, a 1 s timeout)', () => {
  let t: TestApp;
  const open: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    t = await createTestApp({
      auditSealIntervalMs: 100,
      auditStreamsPollMs: 100,
      auditStreamsTimeoutMs: 1000,
      auditStreamsRetryMinMs: 100,
      auditStreamsRetryMaxMs: 1000,
      auditStreamsAllowPrivate: true,
    });
  });
  afterAll(async () => {
    await Promise.all(open.map((o) => o.close()));
    await t.close();
  });

  /** Adds a stream to a new workspace (which has entries) and waits until its first attempt failed. */
  const failedStream = async (url: string) => {
    const ws = await createWorkspace(t.app);
    const created = await t.http
      .post(`/api/workspaces/${ws.workspaceId}/audit-streams`)
      .set(ws.admin.auth)
      .send({ url, secret: 'whsec-0123456789abcdef-stream' })
      .expect(201);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const status = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-streams/${created.body.id}`)
        .set(ws.admin.auth)
        .expect(200);
      if (status.body.lastError) return status.body as { lastError: string; lastDeliveredEntryId: string | null };
      if (Date.now() > deadline) throw new Error('the stream never reported a failed attempt');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  it.each([
    '?api_key=dd0123456789abcdef',
    '?X-Auth-Token=abc&x=1',
    '?dsn=https://k@sentry.test/1',
    '?x=1&client_secret=s3',
  ])(
    "POST /audit-streams: a credential in the URL's query (%s) — expected: 400 (it would be recorded in the log for good, exported and streamed), nothing recorded",
    async (query) => {
      const ws = await createWorkspace(t.app);
      const res = await t.http
        .post(`/api/workspaces/${ws.workspaceId}/audit-streams`)
        .set(ws.admin.auth)
        .send({ url: `https://127.0.0.1/in${query}`, secret: 'whsec-0123456789abcdef-stream' });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/url must not hold a credential in its query/);
      const logged = await listAuditEntries(t.http, ws.workspaceId, ws.admin.auth, { resourceType: 'workspace' });
      expect(JSON.stringify(logged)).not.toContain('/in?');
    },
  );

  it('POST /audit-streams: an ordinary query (?source=audit&env=prod) — expected: accepted as it is', async () => {
    const ws = await createWorkspace(t.app);
    await t.http
      .post(`/api/workspaces/${ws.workspaceId}/audit-streams`)
      .set(ws.admin.auth)
      .send({ url: 'https://127.0.0.1/in?source=audit&env=prod', secret: 'whsec-0123456789abcdef-stream' })
      .expect(201);
  });

  it('a destination answering 307 to another address — expected: the redirect is not followed (the other address is never contacted), a failed attempt', async () => {
    const elsewhere = await destination((_request, response) => response.end('ok'));
    const redirecting = await destination((_request, response) =>
      response.writeHead(307, { Location: elsewhere.url }).end(),
    );
    open.push(elsewhere, redirecting);
    const status = await failedStream(redirecting.url);
    expect(status.lastError).toMatch(/^the destination answered 307/);
    expect(status.lastDeliveredEntryId).toBeNull();
    expect(elsewhere.hits()).toBe(0);
  });

  it('a destination sending 200 headers and then its body one byte a second, forever — expected: the timeout bounds the whole exchange, the batch is not counted as delivered', async () => {
    const trickling = await destination((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/plain' });
      const timer = setInterval(() => response.write('.'), 1000);
      response.on('close', () => clearInterval(timer));
    });
    open.push(trickling);
    const status = await failedStream(trickling.url);
    expect(status.lastError).toMatch(/no answer within 1000 ms/);
    expect(status.lastDeliveredEntryId).toBeNull();
  });

  it('a destination answering 500 with an endless body — expected: the attempt ends at the timeout with a short excerpt of the answer', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    const flooding = await destination((_request, response) => {
      response.writeHead(500, { 'Content-Type': 'text/plain' });
      const pump = () => {
        while (!response.destroyed && response.write(chunk));
        if (!response.destroyed) response.once('drain', pump);
      };
      pump();
    });
    open.push(flooding);
    const status = await failedStream(flooding.url);
    expect(status.lastError).toMatch(/no answer within 1000 ms|the destination answered 500/);
    expect(status.lastError.length).toBeLessThan(400);
  });
});

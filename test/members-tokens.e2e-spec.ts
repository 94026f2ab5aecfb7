import { createHash, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { SECRET_KEY, URL_PASSWORD } from '../src/audit/capture/audited-resources';
import { asUser, createAppRole } from './database';
import { type ApiAuditEntry, listAuditEntries } from './log-invariant';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';
import { captureLogLines } from './log-capture';
import { until } from './until';

/**
 * Members and API tokens over HTTP (the contract's "Members and API tokens"), and the entries the
 * database's capture writes for them, for workspace settings and for reads of the log itself.
 */
describe('Members and API tokens', () => {
  let t: TestApp;
  let db: Client;
  const rand = () => randomBytes(4).toString('hex');
  const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
  const members = (workspaceId: string, rest = '') => `/api/workspaces/${workspaceId}/members${rest}`;
  const entries = (ws: TestWorkspace, filters: Record<string, string>) =>
    listAuditEntries(t.http, ws.workspaceId, ws.admin.auth, filters);

  beforeAll(async () => {
    t = await createTestApp();
    db = new Client({ connectionString: t.database.url });
    db.on('error', () => undefined);
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  const addMember = async (ws: TestWorkspace, role: 'admin' | 'member' = 'member') => {
    const email = `new-${rand()}@acme.test`;
    const res = await t.http
      .post(members(ws.workspaceId))
      .set(ws.admin.auth)
      .send({ email, name: `New ${email}`, role })
      .expect(201);
    return { userId: res.body.userId as string, email, name: `New ${email}` };
  };

  /** A workspace whose member has been made an admin beside its admin. */
  const twoAdmins = async () => {
    const ws = await createWorkspace(t.app);
    await t.http
      .patch(members(ws.workspaceId, `/${ws.member.id}`))
      .set(ws.admin.auth)
      .send({ role: 'admin' })
      .expect(200);
    return ws;
  };

  describe('GET /workspaces/:id/members', () => {
    it('lists the members with their roles for any member, 404 across workspaces, 401 without a token', async () => {
      const ws = await createWorkspace(t.app);
      const other = await createWorkspace(t.app);
      const res = await t.http.get(members(ws.workspaceId)).set(ws.member.auth).expect(200);
      expect(res.body.items).toHaveLength(2);
      expect(res.body.items).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ userId: ws.admin.id, role: 'admin' }),
          expect.objectContaining({ userId: ws.member.id, role: 'member' }),
        ]),
      );
      for (const item of res.body.items) expect(Object.keys(item).sort()).toEqual(['email', 'name', 'role', 'userId']);
      await t.http.get(members(ws.workspaceId)).set(other.admin.auth).expect(404);
      await t.http.get(members(ws.workspaceId)).expect(401);
    });

    it('lists them by name', async () => {
      const ws = await createWorkspace(t.app);
      for (const name of ['Zoe', 'Aaron', 'Nina'])
        await t.http
          .post(members(ws.workspaceId))
          .set(ws.admin.auth)
          .send({ email: `${name.toLowerCase()}-${rand()}@acme.test`, name, role: 'member' })
          .expect(201);
      const res = await t.http.get(members(ws.workspaceId)).set(ws.member.auth).expect(200);
      const names = (res.body.items as { name: string }[]).map((m) => m.name);
      expect(names).toEqual([...names].sort());
      expect(names.filter((n) => ['Zoe', 'Aaron', 'Nina'].includes(n))).toEqual(['Aaron', 'Nina', 'Zoe']);
    });
  });

  describe('POST /workspaces/:id/members', () => {
    it('adds a user, recorded as "Member added" with the user id, email and role', async () => {
      const ws = await createWorkspace(t.app);
      const added = await addMember(ws);
      const [entry] = await entries(ws, { resourceId: added.userId });
      expect(entry).toMatchObject({
        action: 'created',
        actionName: 'Member added',
        resourceType: 'member',
        resourceId: added.userId,
        resourceName: added.name,
        user: { id: ws.admin.id },
        actor: { kind: 'user' },
      });
      expect(entry.changes).toEqual(
        expect.arrayContaining([
          { field: 'userId', after: added.userId },
          { field: 'email', after: added.email },
          { field: 'role', after: 'member' },
        ]),
      );
    });

    it('adds an existing user found by email, and refuses one who is already a member with 409', async () => {
      const ws = await createWorkspace(t.app);
      const other = await createWorkspace(t.app);
      const { rows } = await db.query<{ email: string }>('SELECT email FROM users WHERE id = $1', [other.admin.id]);
      const res = await t.http
        .post(members(ws.workspaceId))
        .set(ws.admin.auth)
        .send({ email: rows[0].email, name: 'Ignored', role: 'admin' })
        .expect(201);
      expect(res.body).toEqual({ userId: other.admin.id, role: 'admin' });
      const { rows: kept } = await db.query<{ name: string }>('SELECT name FROM users WHERE id = $1', [other.admin.id]);
      expect(kept[0].name).not.toBe('Ignored');
      const again = await t.http
        .post(members(ws.workspaceId))
        .set(ws.admin.auth)
        .send({ email: rows[0].email, name: 'Ignored', role: 'member' })
        .expect(409);
      expect(again.body.message).toMatch(/already a member/);
      // The user is now in both workspaces: the other workspace's token opens this one.
      await t.http.get(members(ws.workspaceId)).set(other.admin.auth).expect(200);
    });

    it('is for admins (403 for a member, 404 across workspaces) and names what is accepted on bad input', async () => {
      const ws = await createWorkspace(t.app);
      const other = await createWorkspace(t.app);
      const body = { email: `x-${rand()}@acme.test`, name: 'X', role: 'member' };
      await t.http.post(members(ws.workspaceId)).set(ws.member.auth).send(body).expect(403);
      await t.http.post(members(ws.workspaceId)).set(other.admin.auth).send(body).expect(404);
      const role = await t.http
        .post(members(ws.workspaceId))
        .set(ws.admin.auth)
        .send({ ...body, role: 'owner' })
        .expect(400);
      expect(JSON.stringify(role.body.message)).toMatch(/role must be admin or member/);
      const email = await t.http
        .post(members(ws.workspaceId))
        .set(ws.admin.auth)
        .send({ ...body, email: 'not-an-email' })
        .expect(400);
      expect(JSON.stringify(email.body.message)).toMatch(/email must be an email address/);
      const extra = await t.http
        .post(members(ws.workspaceId))
        .set(ws.admin.auth)
        .send({ ...body, admin: true })
        .expect(400);
      expect(JSON.stringify(extra.body.message)).toMatch(/admin should not exist/);
      expect(await entries(ws, { resourceType: 'member', action: 'created' })).toHaveLength(2);
    });
  });

  describe('PATCH /workspaces/:id/members/:userId', () => {
    it('changes a role, recorded as "Member role changed" from member to admin', async () => {
      const ws = await createWorkspace(t.app);
      const res = await t.http
        .patch(members(ws.workspaceId, `/${ws.member.id}`))
        .set(ws.admin.auth)
        .send({ role: 'admin' })
        .expect(200);
      expect(res.body).toMatchObject({ userId: ws.member.id, role: 'admin' });
      const [entry] = await entries(ws, { resourceId: ws.member.id });
      expect(entry).toMatchObject({
        action: 'updated',
        actionName: 'Member role changed',
        resourceType: 'member',
        user: { id: ws.admin.id },
        changes: [{ field: 'role', before: 'member', after: 'admin' }],
      });
      // The same role again changes nothing and writes nothing.
      await t.http
        .patch(members(ws.workspaceId, `/${ws.member.id}`))
        .set(ws.admin.auth)
        .send({ role: 'admin' })
        .expect(200);
      expect(await entries(ws, { resourceId: ws.member.id, action: 'updated' })).toHaveLength(1);
    });

    it('refuses members (403), strangers (404), unknown or malformed ids (404, 400) and bad roles (400)', async () => {
      const ws = await createWorkspace(t.app);
      const other = await createWorkspace(t.app);
      const path = members(ws.workspaceId, `/${ws.member.id}`);
      await t.http.patch(path).set(ws.member.auth).send({ role: 'admin' }).expect(403);
      await t.http.patch(path).set(other.admin.auth).send({ role: 'admin' }).expect(404);
      await t.http
        .patch(members(ws.workspaceId, `/${other.admin.id}`))
        .set(ws.admin.auth)
        .send({ role: 'admin' })
        .expect(404);
      await t.http.patch(members(ws.workspaceId, '/nope')).set(ws.admin.auth).send({ role: 'admin' }).expect(400);
      const bad = await t.http.patch(path).set(ws.admin.auth).send({ role: 'root' }).expect(400);
      expect(JSON.stringify(bad.body.message)).toMatch(/role must be admin or member/);
    });

    it('refuses to demote or remove the last admin with 409, and allows it once another admin exists', async () => {
      const ws = await createWorkspace(t.app);
      const self = members(ws.workspaceId, `/${ws.admin.id}`);
      const demote = await t.http.patch(self).set(ws.admin.auth).send({ role: 'member' }).expect(409);
      expect(demote.body.message).toMatch(/last admin/);
      await t.http.delete(self).set(ws.admin.auth).expect(409);
      expect(await entries(ws, { resourceId: ws.admin.id, action: 'updated,deleted' })).toEqual([]);

      await t.http
        .patch(members(ws.workspaceId, `/${ws.member.id}`))
        .set(ws.admin.auth)
        .send({ role: 'admin' })
        .expect(200);
      await t.http.patch(self).set(ws.admin.auth).send({ role: 'member' }).expect(200);
      // Now the former member is the only admin.
      await t.http
        .delete(members(ws.workspaceId, `/${ws.member.id}`))
        .set(ws.member.auth)
        .expect(409);
    });

    it('keeps one admin when two admins demote each other at the same time', async () => {
      const ws = await twoAdmins();
      const results = await Promise.all([
        t.http
          .patch(members(ws.workspaceId, `/${ws.admin.id}`))
          .set(ws.member.auth)
          .send({ role: 'member' }),
        t.http
          .patch(members(ws.workspaceId, `/${ws.member.id}`))
          .set(ws.admin.auth)
          .send({ role: 'member' }),
      ]);
      // The one that loses finds its caller demoted: by its guard, or under the lock if the other
      // committed while it waited.
      expect(results.map((r) => r.status).sort()).toEqual([200, 403]);
      const { rows } = await db.query(`SELECT 1 FROM memberships WHERE workspace_id = $1 AND role = 'admin'`, [
        ws.workspaceId,
      ]);
      expect(rows).toHaveLength(1);
    });

    it.each([
      ['PATCH', 'demoted'],
      ['PATCH', 'removed'],
      ['DELETE', 'demoted'],
      ['DELETE', 'removed'],
    ])('%s by an admin %s while the request waits for the lock: 403, nothing changed', async (method, change) => {
      const ws = await twoAdmins();
      const third = await addMember(ws, 'admin');
      const holder = new Client({ connectionString: t.database.url });
      holder.on('error', () => undefined);
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`SELECT 1 FROM memberships WHERE workspace_id = $1 AND role = 'admin' FOR UPDATE`, [
          ws.workspaceId,
        ]);
        // The former member, an admin when the guard reads their role, acts on the third admin.
        const url = members(ws.workspaceId, `/${third.userId}`);
        const pending =
          method === 'PATCH'
            ? t.http
                .patch(url)
                .set(ws.member.auth)
                .send({ role: 'member' })
                .then((r) => r)
            : t.http
                .delete(url)
                .set(ws.member.auth)
                .then((r) => r);
        await until('the request waiting for the admins lock', async () => {
          const { rows } = await db.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          return rows.length ? true : undefined;
        });
        await holder.query(
          change === 'demoted'
            ? `UPDATE memberships SET role = 'member' WHERE workspace_id = $1 AND user_id = $2`
            : `DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2`,
          [ws.workspaceId, ws.member.id],
        );
        await holder.query('COMMIT');
        const res = await pending;
        expect(res.status).toBe(403);
        expect(res.body.message).toMatch(/admins only/);
      } finally {
        await holder.end();
      }
      const { rows } = await db.query(`SELECT role::text FROM memberships WHERE workspace_id = $1 AND user_id = $2`, [
        ws.workspaceId,
        third.userId,
      ]);
      expect(rows).toEqual([{ role: 'admin' }]);
    });
  });

  describe('DELETE /workspaces/:id/members/:userId', () => {
    it('removes a member, recorded as "Member removed"; their token no longer opens the workspace', async () => {
      const ws = await createWorkspace(t.app);
      await t.http
        .delete(members(ws.workspaceId, `/${ws.member.id}`))
        .set(ws.member.auth)
        .expect(403);
      await t.http
        .delete(members(ws.workspaceId, `/${ws.member.id}`))
        .set(ws.admin.auth)
        .expect(204);
      await t.http.get(members(ws.workspaceId)).set(ws.member.auth).expect(404);
      await t.http
        .delete(members(ws.workspaceId, `/${ws.member.id}`))
        .set(ws.admin.auth)
        .expect(404);
      const history = await entries(ws, { resourceId: ws.member.id });
      expect(history.map((e) => e.actionName)).toEqual(['Member removed', 'Member added']);
      expect(history[0]).toMatchObject({ action: 'deleted', user: { id: ws.admin.id } });
      expect(history[0].changes).toEqual(
        expect.arrayContaining([
          { field: 'userId', before: ws.member.id },
          { field: 'role', before: 'member' },
        ]),
      );
    });
  });

  describe('/me/tokens', () => {
    it('creates a token shown once, lists it without the secret, and records it in every workspace of the user', async () => {
      const ws = await createWorkspace(t.app);
      const second = await createWorkspace(t.app);
      const { rows } = await db.query<{ email: string }>('SELECT email FROM users WHERE id = $1', [ws.admin.id]);
      await t.http
        .post(members(second.workspaceId))
        .set(second.admin.auth)
        .send({ email: rows[0].email, name: 'x', role: 'member' })
        .expect(201);

      const label = `CI ${rand()}`;
      const created = await t.http.post('/api/me/tokens').set(ws.admin.auth).send({ label }).expect(201);
      expect(Object.keys(created.body).sort()).toEqual(['createdAt', 'id', 'label', 'token']);
      expect(created.body.label).toBe(label);
      const token = created.body.token as string;
      await t.http.get('/api/me').set(auth(token)).expect(200);

      const list = await t.http.get('/api/me/tokens').set(auth(token)).expect(200);
      const mine = list.body.items.find((i: { id: string }) => i.id === created.body.id);
      expect(Object.keys(mine).sort()).toEqual(['createdAt', 'id', 'label', 'lastUsedAt']);
      // Newest first: the token made last leads the list.
      const later = await t.http
        .post('/api/me/tokens')
        .set(auth(token))
        .send({ label: `later ${rand()}` })
        .expect(201);
      const listed = (await t.http.get('/api/me/tokens').set(auth(token)).expect(200)).body.items as { id: string }[];
      expect(listed.map((i) => i.id).slice(0, 2)).toEqual([later.body.id, created.body.id]);

      for (const [workspace, admin] of [
        [ws, ws.admin.auth],
        [second, second.admin.auth],
      ] as const) {
        const [entry] = await listAuditEntries(t.http, workspace.workspaceId, admin, { resourceId: created.body.id });
        expect(entry).toMatchObject({
          action: 'created',
          actionName: 'API token created',
          resourceType: 'api_token',
          resourceName: label,
          user: { id: ws.admin.id },
        });
        expect(entry.changes).toEqual(
          expect.arrayContaining([
            { field: 'label', after: label },
            { field: 'userId', after: ws.admin.id },
          ]),
        );
        expect(entry.changes.map((c) => c.field).sort()).toEqual(['label', 'userId']);
      }
    });

    it('revokes a token at once (the next request is 401), recorded as "API token revoked" in every workspace', async () => {
      const ws = await createWorkspace(t.app);
      const created = await t.http.post('/api/me/tokens').set(ws.member.auth).send({ label: 'laptop' }).expect(201);
      const token = created.body.token as string;
      await t.http.get(members(ws.workspaceId)).set(auth(token)).expect(200);
      await t.http.delete(`/api/me/tokens/${created.body.id}`).set(auth(token)).expect(204);
      await t.http.get(members(ws.workspaceId)).set(auth(token)).expect(401);
      await t.http.get('/api/me').set(auth(token)).expect(401);
      await t.http.delete(`/api/me/tokens/${created.body.id}`).set(ws.member.auth).expect(404);
      const list = await t.http.get('/api/me/tokens').set(ws.member.auth).expect(200);
      expect(list.body.items.map((i: { id: string }) => i.id)).not.toContain(created.body.id);

      const [entry] = await entries(ws, { resourceId: created.body.id });
      expect(entry).toMatchObject({
        action: 'deleted',
        actionName: 'API token revoked',
        resourceType: 'api_token',
        resourceName: 'laptop',
        user: { id: ws.member.id },
      });
      expect(entry.changes).toEqual([{ field: 'revokedAt', before: null, after: expect.any(String) }]);
    });

    it("refuses another user's token (404), malformed ids and bad labels (400)", async () => {
      const ws = await createWorkspace(t.app);
      const created = await t.http.post('/api/me/tokens').set(ws.admin.auth).send({ label: 'mine' }).expect(201);
      await t.http.delete(`/api/me/tokens/${created.body.id}`).set(ws.member.auth).expect(404);
      await t.http.get('/api/me').set(auth(created.body.token)).expect(200);
      await t.http.delete('/api/me/tokens/nope').set(ws.admin.auth).expect(400);
      const empty = await t.http.post('/api/me/tokens').set(ws.admin.auth).send({ label: '  ' }).expect(400);
      expect(JSON.stringify(empty.body.message)).toMatch(/label must be 1 to 200 characters/);
      await t.http.post('/api/me/tokens').set(ws.admin.auth).send({ label: 'x', token: 'mine' }).expect(400);
      await t.http.post('/api/me/tokens').send({ label: 'x' }).expect(401);
    });

    it('keeps lastUsedAt to the minute, off the request, with no audit entry', async () => {
      const ws = await createWorkspace(t.app);
      const created = await t.http.post('/api/me/tokens').set(ws.admin.auth).send({ label: 'used' }).expect(201);
      const token = created.body.token as string;
      const lastUsed = async () =>
        (
          await db.query<{ at: Date | null }>('SELECT last_used_at AS at FROM api_tokens WHERE id = $1', [
            created.body.id,
          ])
        ).rows[0].at;
      expect(await lastUsed()).toBeNull();
      await t.http.get('/api/me').set(auth(token)).expect(200);
      const deadline = Date.now() + 20_000;
      while ((await lastUsed()) === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const first = await lastUsed();
      expect(first).not.toBeNull();
      for (let i = 0; i < 3; i++) await t.http.get('/api/me').set(auth(token)).expect(200);
      await new Promise((r) => setTimeout(r, 200));
      expect(await lastUsed()).toEqual(first);
      const list = await t.http.get('/api/me/tokens').set(auth(token)).expect(200);
      expect(list.body.items.find((i: { id: string }) => i.id === created.body.id).lastUsedAt).toBe(
        first!.toISOString(),
      );
      expect((await entries(ws, { resourceId: created.body.id })).map((e) => e.action)).toEqual(['created']);
    });
  });

  describe('a token value appears nowhere after its creation', () => {
    it('not in any response, entry, export (CSV, NDJSON) or log line, nor its hash', async () => {
      // Every level the service logs at, while the token is created, used, refused and revoked.
      const { output, restore } = captureLogLines();
      try {
        const ws = await createWorkspace(t.app);
        const created = await t.http.post('/api/me/tokens').set(ws.admin.auth).send({ label: 'secret' }).expect(201);
        const token = created.body.token as string;
        const hash = createHash('sha256').update(token).digest('hex');
        const bodies: string[] = [];
        const keep = (res: { text: string }) => bodies.push(res.text);
        keep(await t.http.get('/api/me/tokens').set(auth(token)).expect(200));
        keep(await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs`).set(auth(token)).expect(200));
        for (const format of ['csv', 'ndjson']) {
          keep(
            await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs/export?format=${format}`).set(auth(token)),
          );
        }
        // A request that fails, and a revocation, also log nothing of it.
        keep(
          await t.http
            .get('/api/me')
            .set(auth(`${token}x`))
            .expect(401),
        );
        keep(await t.http.delete(`/api/me/tokens/${created.body.id}`).set(auth(token)).expect(204));
        keep(await t.http.get('/api/me').set(auth(token)).expect(401));
        const { rows } = await db.query<{ text: string }>(
          'SELECT string_agg(to_jsonb(a)::text, $2) AS text FROM audit_logs a WHERE workspace_id = $1',
          [ws.workspaceId, '\n'],
        );
        const everything = [...bodies, rows[0].text, ...output].join('\n');
        expect(bodies.join('\n')).toContain('API token created');
        expect(everything).not.toContain(token);
        expect(everything).not.toContain(token.slice(5, 25));
        expect(everything).not.toContain(hash);
      } finally {
        restore();
      }
    });
  });

  describe('changes made without the application', () => {
    it('records a membership and a workspace changed in psql by the owner, as the database role', async () => {
      const ws = await createWorkspace(t.app);
      await db.query(`UPDATE memberships SET role = 'admin' WHERE workspace_id = $1 AND user_id = $2`, [
        ws.workspaceId,
        ws.member.id,
      ]);
      await db.query(`UPDATE workspaces SET name = 'Renamed in psql' WHERE id = $1`, [ws.workspaceId]);
      const [member] = await entries(ws, { resourceId: ws.member.id, action: 'updated' });
      expect(member).toMatchObject({
        actionName: 'Member role changed',
        user: null,
        actor: { kind: 'database', name: 'postgres' },
        changes: [{ field: 'role', before: 'member', after: 'admin' }],
      });
      const [workspace] = await entries(ws, { resourceType: 'workspace', action: 'updated' });
      expect(workspace).toMatchObject({
        actionName: 'Workspace updated',
        resourceId: ws.workspaceId,
        resourceName: 'Renamed in psql',
        actor: { kind: 'database', name: 'postgres' },
        changes: [{ field: 'name', before: 'Acme', after: 'Renamed in psql' }],
      });
    });

    it("records a user's name or email changed in psql as the member's change, in every workspace of the user", async () => {
      const ws = await createWorkspace(t.app);
      const other = await createWorkspace(t.app);
      const {
        rows: [before],
      } = await db.query<{ name: string; email: string }>('SELECT name, email FROM users WHERE id = $1', [
        ws.member.id,
      ]);
      await t.http
        .post(`/api/workspaces/${other.workspaceId}/members`)
        .set(other.admin.auth)
        .send({ email: before.email, name: 'ignored', role: 'member' })
        .expect(201);
      await db.query(`UPDATE users SET name = 'Renamed member', email = 'renamed@acme.test' WHERE id = $1`, [
        ws.member.id,
      ]);
      for (const workspace of [ws, other]) {
        const found = await entries(workspace, { resourceId: ws.member.id, action: 'updated' });
        expect(found).toHaveLength(1);
        expect(found[0]).toMatchObject({
          actionName: 'Member details changed',
          resourceType: 'member',
          resourceName: 'Renamed member',
          actor: { kind: 'database', name: 'postgres' },
        });
        expect(found[0].changes).toEqual(
          expect.arrayContaining([
            { field: 'email', before: before.email, after: 'renamed@acme.test' },
            { field: 'name', before: before.name, after: 'Renamed member' },
          ]),
        );
      }
    });

    it('refuses to move a membership or a token to another user', async () => {
      const ws = await createWorkspace(t.app);
      await expect(
        db.query('UPDATE memberships SET user_id = $1 WHERE workspace_id = $2 AND user_id = $3', [
          ws.admin.id,
          ws.workspaceId,
          ws.member.id,
        ]),
      ).rejects.toThrow(/cannot be changed/);
      await expect(
        db.query('UPDATE api_tokens SET user_id = $1 WHERE user_id = $2', [ws.admin.id, ws.member.id]),
      ).rejects.toThrow(/cannot be changed/);
    });
  });

  describe('workspace settings', () => {
    it('records a retention change as "Retention changed"', async () => {
      const ws = await createWorkspace(t.app);
      await t.http
        .put(`/api/workspaces/${ws.workspaceId}/audit-retention`)
        .set(ws.admin.auth)
        .send({ retentionMonths: 24 })
        .expect(200);
      const [entry] = await entries(ws, { resourceType: 'workspace', action: 'updated' });
      expect(entry).toMatchObject({
        actionName: 'Retention changed',
        resourceId: ws.workspaceId,
        user: { id: ws.admin.id },
        changes: [{ field: 'auditRetentionMonths', before: 13, after: 24 }],
      });
      const csv = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs/export?format=csv&resourceType=workspace`)
        .set(ws.admin.auth)
        .expect(200);
      expect(csv.text).toContain(',Retention changed,workspace,');
      expect(csv.text).toContain(',Workspace created,workspace,');
    });
  });

  describe('reads of the log', () => {
    it('records an export when it ends, with its format, filters and row count', async () => {
      const ws = await createWorkspace(t.app);
      const res = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs/export?format=ndjson&resourceType=member,api_token`)
        .set(ws.admin.auth)
        .expect(200);
      const lines = res.text.trim().split('\n');
      expect(lines.length).toBeGreaterThan(0);
      // Recorded once the download has ended, which can be a moment after the client has it all.
      const entry = await until('the export recorded', async () => {
        const [recorded] = await entries(ws, { resourceType: 'audit_log', action: 'exported' });
        return recorded;
      });
      expect(entry).toMatchObject({
        actionName: 'Audit log exported',
        resourceType: 'audit_log',
        resourceId: ws.workspaceId,
        user: { id: ws.admin.id },
      });
      expect(entry.changes).toEqual(
        expect.arrayContaining([
          { field: 'format', after: 'ndjson' },
          { field: 'filters.resourceType[0]', after: 'member' },
          { field: 'filters.resourceType[1]', after: 'api_token' },
          { field: 'rowCount', after: lines.length },
          { field: 'completed', after: true },
        ]),
      );
    });

    it('records a verification with its outcome, for GET and for POST with a digest', async () => {
      const ws = await createWorkspace(t.app);
      const verify = await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`).set(ws.admin.auth);
      expect(verify.status).toBe(200);
      const [entry] = await entries(ws, { action: 'verified' });
      expect(entry).toMatchObject({ actionName: 'Audit log verified', resourceType: 'audit_log' });
      expect(entry.changes).toEqual(
        expect.arrayContaining([
          { field: 'result.intact', after: true },
          { field: 'result.entries', after: verify.body.entries },
        ]),
      );
      const digest = await t.http
        .post(`/api/workspaces/${ws.workspaceId}/audit-logs/digests`)
        .set(ws.admin.auth)
        .expect(201);
      const checked = await t.http
        .post(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`)
        .set(ws.admin.auth)
        .send({ digest: digest.body })
        .expect(200);
      expect(checked.body.extendsDigest).toBe(true);
      const verified = await entries(ws, { action: 'verified' });
      expect(verified).toHaveLength(2);
      expect(verified[0].changes).toEqual(expect.arrayContaining([{ field: 'result.extendsDigest', after: true }]));
    });

    it('lets the application role insert reads, and nothing else', async () => {
      const ws = await createWorkspace(t.app);
      const role = await createAppRole();
      const client = new Client({ connectionString: asUser(t.database.url, role.name) });
      await client.connect();
      try {
        await client.query(
          `INSERT INTO audit_log_reads (id, workspace_id, action, result) VALUES (gen_random_uuid(), $1, 'verified', '{"intact": true}')`,
          [ws.workspaceId],
        );
        const [entry] = await entries(ws, { action: 'verified' });
        // No actor tag in the statement: recorded as the role that ran it.
        expect(entry).toMatchObject({
          resourceType: 'audit_log',
          actor: { kind: 'database', name: role.name },
          changes: [{ field: 'result.intact', after: true }],
        });
        for (const sql of [
          'SELECT * FROM audit_log_reads',
          'UPDATE audit_log_reads SET row_count = 0',
          'DELETE FROM audit_log_reads',
        ]) {
          await expect(client.query(sql)).rejects.toThrow(/permission denied/);
        }
      } finally {
        await client.end();
        await role.drop();
      }
    });
  });

  describe('filters and restore', () => {
    it("filters by the new resource types; the auditors' resource list stays the four; their entries cannot be restored (409)", async () => {
      const ws = await createWorkspace(t.app);
      const found = await entries(ws, { resourceType: 'member,api_token,workspace' });
      expect(new Set(found.map((e: ApiAuditEntry) => e.resourceType))).toEqual(
        new Set(['member', 'api_token', 'workspace']),
      );
      await t.http
        .get(`/api/workspaces/${ws.workspaceId}/resources?resourceType=member`)
        .set(ws.admin.auth)
        .expect(400);
      const member = found.find((e) => e.resourceType === 'member')!;
      const refused = await t.http
        .post(`/api/workspaces/${ws.workspaceId}/audit-logs/${member.id}/restore`)
        .set(ws.admin.auth)
        .expect(409);
      expect(refused.body.message).toMatch(/member cannot be restored/);
      const bad = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs?resourceType=user`)
        .set(ws.admin.auth)
        .expect(400);
      expect(JSON.stringify(bad.body.message)).toMatch(/member, api_token, workspace, audit_log/);
    });
  });

  describe('the registry', () => {
    it('captures a table of one resource type with fields under a prefix (a log stream of a workspace)', async () => {
      const ws = await createWorkspace(t.app);
      const table = `scratch_streams_${rand()}`;
      await db.query(`CREATE TABLE ${table} (id uuid PRIMARY KEY, workspace_id uuid NOT NULL, url text NOT NULL,
        secret text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
      try {
        const options = {
          stamped: false,
          resource_id: 'r."workspace_id"',
          resource_name: '(SELECT w."name" FROM "workspaces" w WHERE w."id" = r."workspace_id")',
          field_prefix: `'streams[' || to_jsonb(r."id"::text)::text || ']'`,
          ignored_columns: ['secret'],
        };
        await db.query('SELECT audit_attach($1, $2, $3, $4, $5, $6)', [
          table,
          'workspace',
          [],
          SECRET_KEY.source,
          URL_PASSWORD.source,
          JSON.stringify(options),
        ]);
        const id = '6f1c2b3a-0000-4000-8000-000000000001';
        await db.query(`INSERT INTO ${table} (id, workspace_id, url, secret) VALUES ($1, $2, 'https://a.test', 's1')`, [
          id,
          ws.workspaceId,
        ]);
        await db.query(`UPDATE ${table} SET secret = 's2'`);
        await db.query(`UPDATE ${table} SET url = 'https://b.test'`);
        const found = await entries(ws, { resourceType: 'workspace', resourceId: ws.workspaceId });
        const streams = found.filter((e) => e.changes.some((c) => c.field.startsWith('streams')));
        expect(streams.map((e) => [e.action, e.resourceName, e.changes])).toEqual([
          ['updated', 'Acme', [{ field: `streams["${id}"].url`, before: 'https://a.test', after: 'https://b.test' }]],
          ['created', 'Acme', [{ field: `streams["${id}"].url`, after: 'https://a.test' }]],
        ]);
      } finally {
        await db.query(`DELETE FROM audit_resource_types WHERE table_name = $1`, [table]);
        await db.query(`DROP TABLE ${table}`);
      }
    });
  });
});

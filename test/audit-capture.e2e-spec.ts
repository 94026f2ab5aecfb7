import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { Client } from 'pg';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import type { Prisma } from '../src/generated/prisma/client';
import type { AppPrismaClient } from '../src/database/prisma-client.factory';
import type { Actor } from '../src/request-context/app-cls-store';
import { runAsSystem, runWithActor } from '../src/request-context/run-with-actor';
import { ResourceFactory } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

const REDACTED = '[REDACTED]';

describe('Audit capture', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let api: ResourceFactory;
  let txHost: TransactionHost<TransactionalAdapterPrisma<AppPrismaClient>>;
  let alice: Actor & { kind: 'user' };
  const statements: string[] = [];

  beforeAll(async () => {
    t = await createTestApp({}, { onQuery: (sql) => statements.push(sql) });
    ws = await createWorkspace(t.app);
    api = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    txHost = t.app.get(TransactionHost);
    const user = await t.prisma.user.findUniqueOrThrow({ where: { id: ws.admin.id } });
    alice = { kind: 'user', id: user.id, name: user.name, email: user.email };
  });
  afterAll(() => t.close());

  /** A resource's entries in log order, once the sealer has moved every committed one into the log. */
  const entriesFor = async (resourceId: string) => {
    await t.app.get(AuditSealerService).seal();
    return t.prisma.auditLog.findMany({ where: { resourceId }, orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }] });
  };
  const findEntries = async (args: Prisma.AuditLogFindManyArgs) => {
    await t.app.get(AuditSealerService).seal();
    return t.prisma.auditLog.findMany(args);
  };
  const countEntries = async (where: Prisma.AuditLogWhereInput) => {
    await t.app.get(AuditSealerService).seal();
    return t.prisma.auditLog.count({ where });
  };
  const asAlice = <T>(fn: () => Promise<T>) => runWithActor(alice, fn);
  const newSource = (name: string, config: Prisma.InputJsonObject = { host: 'h' }) =>
    asAlice(() => t.prisma.source.create({ data: { workspaceId: ws.workspaceId, name, type: 'pg', config } }));

  describe('through the HTTP API', () => {
    it('records a creation with the actor, the request id and every field, secrets redacted', async () => {
      const body = await api.body('sources');
      const res = await t.http
        .post(api.url('sources'))
        .set(ws.admin.auth)
        .set('X-Request-Id', 'req-create-1')
        .send(body);
      expect(res.status).toBe(201);
      const [entry, ...rest] = await entriesFor(res.body.id);
      expect(rest).toEqual([]);
      expect(entry).toMatchObject({
        workspaceId: ws.workspaceId,
        action: 'created',
        resourceType: 'source',
        resourceId: res.body.id,
        resourceName: body.name,
        actorId: ws.admin.id,
        actorName: alice.name,
        actorEmail: alice.email,
        requestId: 'req-create-1',
      });
      const byField = (a: { field: string }, b: { field: string }) => a.field.localeCompare(b.field);
      expect((entry.changes as { field: string }[]).sort(byField)).toEqual(
        [
          { field: 'name', after: body.name },
          { field: 'type', after: 'snowflake' },
          { field: 'config.host', after: 'db.acme.test' },
          { field: 'config.password', after: REDACTED },
        ].sort(byField),
      );
      expect(entry.ip).toBeTruthy();
    });

    it('records exactly the changed leaf of an update, by the member who made it', async () => {
      const segment = await api.create('segments');
      const res = await t.http
        .patch(api.url('segments', segment.id))
        .set(ws.member.auth)
        .send({ definition: { operator: 'and', rules: [{ field: 'ltv', op: 'gt', value: 250 }] } })
        .expect(200);
      const entries = await entriesFor(segment.id);
      expect(entries.map((e) => e.action)).toEqual(['created', 'updated']);
      expect(entries[1]).toMatchObject({ actorId: ws.member.id, requestId: res.headers['x-request-id'] });
      expect(entries[1].changes).toEqual([{ field: 'definition.rules[0].value', before: 100, after: 250 }]);
    });

    it('writes no entry, and touches neither updatedBy nor updatedAt, for an update that changes nothing', async () => {
      const source = await api.create('sources');
      const res = await t.http
        .patch(api.url('sources', source.id))
        .set(ws.member.auth)
        .send({ name: source.name, type: 'snowflake', config: { host: 'db.acme.test', password: '********' } })
        .expect(200);
      expect(res.body.updatedBy.id).toBe(ws.admin.id);
      expect(res.body.updatedAt).toBe(source.updatedAt);
      expect((await entriesFor(source.id)).map((e) => e.action)).toEqual(['created']);
    });

    it('names the resource as it was at each action: renamed, then deleted', async () => {
      const model = await api.create('models');
      await t.http.patch(api.url('models', model.id)).set(ws.admin.auth).send({ name: 'Renamed model' }).expect(200);
      await t.http.delete(api.url('models', model.id)).set(ws.admin.auth).expect(204);
      const entries = await entriesFor(model.id);
      expect(entries.map((e) => [e.action, e.resourceName])).toEqual([
        ['created', model.name],
        ['updated', 'Renamed model'],
        ['deleted', 'Renamed model'],
      ]);
      expect(entries[1].changes).toEqual([{ field: 'name', before: model.name, after: 'Renamed model' }]);
      expect(entries[2].changes).toEqual(
        expect.arrayContaining([
          { field: 'name', before: 'Renamed model' },
          { field: 'sql', before: 'SELECT * FROM customers' },
        ]),
      );
    });

    it('records one entry per row for bulk routes, and none for rows already in the requested state', async () => {
      const [a, b] = [await api.create('destinations'), await api.create('destinations', { enabled: false })];
      await t.http
        .patch(`${api.url('destinations')}/bulk`)
        .set(ws.admin.auth)
        .send({ ids: [a.id, b.id], enabled: false })
        .expect(200);
      expect((await entriesFor(a.id)).map((e) => e.action)).toEqual(['created', 'updated']);
      expect((await entriesFor(b.id)).map((e) => e.action)).toEqual(['created']);
      await t.http
        .post(`${api.url('destinations')}/bulk-delete`)
        .set(ws.admin.auth)
        .send({ ids: [a.id, b.id] })
        .expect(200);
      const deletions = await findEntries({
        where: { resourceId: { in: [a.id, b.id] }, action: 'deleted' },
      });
      expect(deletions.map((e) => e.resourceId).sort()).toEqual([a.id, b.id].sort());
      expect(new Set(deletions.map((e) => e.requestId)).size).toBe(1);
    });

    it('keeps createdBy/updatedBy consistent with the log', async () => {
      const destination = await api.create('destinations');
      await t.http
        .patch(api.url('destinations', destination.id))
        .set(ws.member.auth)
        .send({ enabled: false })
        .expect(200);
      const row = await t.prisma.destination.findUniqueOrThrow({ where: { id: destination.id } });
      const entries = await entriesFor(destination.id);
      expect(row.createdById).toBe(entries[0].actorId);
      expect(row.updatedById).toBe(entries[entries.length - 1].actorId);
    });
  });

  describe('directly on the client inside a context', () => {
    it('covers create, update, upsert (both ways) and delete, setting creator and last editor', async () => {
      const created = await newSource('direct-1', { host: 'a', token: 'direct-secret' });
      expect(created).toMatchObject({ createdById: alice.id, updatedById: alice.id });
      const updated = await runAsSystem('job', () =>
        t.prisma.source.update({ where: { id: created.id }, data: { type: 'mysql' } }),
      );
      expect(updated.updatedById).toBeNull();
      const viaUpsert = await asAlice(() =>
        t.prisma.source.upsert({
          where: { id: created.id },
          create: { workspaceId: ws.workspaceId, name: 'never', type: 'x' },
          update: { name: 'direct-1b' },
        }),
      );
      expect(viaUpsert.name).toBe('direct-1b');
      const inserted = await asAlice(() =>
        t.prisma.source.upsert({
          where: { workspaceId_name: { workspaceId: ws.workspaceId, name: 'direct-upserted' } },
          create: { workspaceId: ws.workspaceId, name: 'direct-upserted', type: 'x' },
          update: { type: 'never' },
        }),
      );
      await asAlice(() => t.prisma.source.delete({ where: { id: created.id } }));
      const entries = await entriesFor(created.id);
      expect(entries.map((e) => [e.action, e.actorId])).toEqual([
        ['created', alice.id],
        ['updated', null],
        ['updated', alice.id],
        ['deleted', alice.id],
      ]);
      expect(entries[1].changes).toEqual([{ field: 'type', before: 'pg', after: 'mysql' }]);
      expect((await entriesFor(inserted.id)).map((e) => e.action)).toEqual(['created']);
    });

    it('covers createMany, createManyAndReturn, updateMany, updateManyAndReturn and deleteMany, one entry per row', async () => {
      const prefix = `bulk-${Date.now()}`;
      const many = await asAlice(() =>
        t.prisma.source.createMany({
          data: [1, 2, 3].map((i) => ({ workspaceId: ws.workspaceId, name: `${prefix}-${i}`, type: 'pg' })),
        }),
      );
      expect(many).toEqual({ count: 3 });
      const returned = await asAlice(() =>
        t.prisma.source.createManyAndReturn({
          data: [4, 5].map((i) => ({ workspaceId: ws.workspaceId, name: `${prefix}-${i}`, type: 'pg' })),
          select: { name: true },
        }),
      );
      expect(returned).toEqual([{ name: `${prefix}-4` }, { name: `${prefix}-5` }]);
      const where = { workspaceId: ws.workspaceId, name: { startsWith: prefix } };
      expect(await asAlice(() => t.prisma.source.updateMany({ where, data: { type: 'mysql' } }))).toEqual({ count: 5 });
      const andReturn = await asAlice(() =>
        t.prisma.source.updateManyAndReturn({
          where: { ...where, name: { in: [`${prefix}-1`, `${prefix}-2`] } },
          data: { type: 'bq' },
        }),
      );
      expect(andReturn.map((r) => r.type)).toEqual(['bq', 'bq']);
      expect(await asAlice(() => t.prisma.source.deleteMany({ where }))).toEqual({ count: 5 });

      const entries = await findEntries({ where: { resourceName: { startsWith: prefix } } });
      const count = (action: string) => entries.filter((e) => e.action === action).length;
      expect([count('created'), count('updated'), count('deleted')]).toEqual([5, 7, 5]);
    });

    it('returns what the caller selected, even without the id', async () => {
      const source = await newSource(`select-${Date.now()}`);
      const result = await asAlice(() =>
        t.prisma.source.update({ where: { id: source.id }, data: { type: 'x' }, select: { type: true } }),
      );
      expect(result).toEqual({ type: 'x' });
      const included = await asAlice(() =>
        t.prisma.source.update({
          where: { id: source.id },
          data: { type: 'y' },
          include: { createdBy: { select: { email: true } } },
        }),
      );
      expect(included).toMatchObject({ type: 'y', createdBy: { email: alice.email } });
    });

    it('keeps Prisma errors: updating or deleting a missing row raises P2025 and records nothing', async () => {
      const missing = '3b241101-e2bb-4255-8caf-4136c566a962';
      await expect(
        asAlice(() => t.prisma.source.update({ where: { id: missing }, data: { type: 'x' } })),
      ).rejects.toMatchObject({ code: 'P2025' });
      await expect(asAlice(() => t.prisma.source.delete({ where: { id: missing } }))).rejects.toMatchObject({
        code: 'P2025',
      });
      expect(await entriesFor(missing)).toEqual([]);
    });
  });

  describe('atomicity', () => {
    it('leaves neither the change nor its entry when the transaction throws after the write', async () => {
      const source = await newSource(`rollback-${Date.now()}`);
      await expect(
        asAlice(() =>
          txHost.withTransaction(async () => {
            await txHost.tx.source.update({ where: { id: source.id }, data: { type: 'changed' } });
            await txHost.tx.source.create({
              data: { workspaceId: ws.workspaceId, name: `${source.name}-new`, type: 'x' },
            });
            throw new Error('business rule failed');
          }),
        ),
      ).rejects.toThrow('business rule failed');
      expect((await t.prisma.source.findUniqueOrThrow({ where: { id: source.id } })).type).toBe('pg');
      expect(await t.prisma.source.findFirst({ where: { name: `${source.name}-new` } })).toBeNull();
      expect((await entriesFor(source.id)).map((e) => e.action)).toEqual(['created']);
      expect(await countEntries({ resourceName: `${source.name}-new` })).toBe(0);
    });

    it('rolls the change back when the audit insert fails', async () => {
      const pg = new Client({ connectionString: t.database.url });
      await pg.connect();
      await pg.query(
        `ALTER TABLE audit_log_inbox ADD CONSTRAINT test_refuse CHECK (resource_name <> 'refused-by-audit')`,
      );
      try {
        const source = await newSource(`audit-fails-${Date.now()}`);
        await expect(
          asAlice(() => t.prisma.source.update({ where: { id: source.id }, data: { name: 'refused-by-audit' } })),
        ).rejects.toThrow();
        expect((await t.prisma.source.findUniqueOrThrow({ where: { id: source.id } })).name).toBe(source.name);
        await expect(newSource('refused-by-audit')).rejects.toThrow();
        expect(await t.prisma.source.findFirst({ where: { name: 'refused-by-audit' } })).toBeNull();
      } finally {
        await pg.query('ALTER TABLE audit_log_inbox DROP CONSTRAINT test_refuse');
        await pg.end();
      }
    });

    it('gives each of 50 concurrent updates of one resource its entry, before/after chaining without gaps', async () => {
      const source = await newSource(`concurrent-${Date.now()}`);
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          asAlice(() => t.prisma.source.update({ where: { id: source.id }, data: { type: `v${i}` } })),
        ),
      );
      const updates = (await entriesFor(source.id)).filter((e) => e.action === 'updated');
      expect(updates).toHaveLength(50);
      const next = new Map(
        updates.map((e) => {
          const [change] = e.changes as { field: string; before: string; after: string }[];
          return [change.before, change.after];
        }),
      );
      expect(next.size).toBe(50);
      let value = 'pg';
      for (let i = 0; i < 50; i++) value = next.get(value)!;
      expect(value).toBe((await t.prisma.source.findUniqueOrThrow({ where: { id: source.id } })).type);
    });
  });

  describe('bulk statements', () => {
    it('updates 1,000 rows with one entry each in the one statement of the plain call', async () => {
      const countFor = async (rows: number): Promise<string[]> => {
        const prefix = `stmt-${rows}-${Date.now()}`;
        await asAlice(() =>
          t.prisma.source.createMany({
            data: Array.from({ length: rows }, (_, i) => ({
              workspaceId: ws.workspaceId,
              name: `${prefix}-${i}`,
              type: 'pg',
            })),
          }),
        );
        statements.length = 0;
        const result = await asAlice(() =>
          t.prisma.source.updateMany({
            where: { workspaceId: ws.workspaceId, name: { startsWith: prefix } },
            data: { type: 'mysql' },
          }),
        );
        // What this call sent: every statement in Alice's context carries her tag; the service's own
        // jobs (the sealer, the stream deliverer) send theirs meanwhile, under no actor or another.
        const sent = statements.filter((sql) => {
          const tag = /\/\*audit='([A-Za-z0-9_-]+)'\*\/$/.exec(sql)?.[1];
          return tag !== undefined && Buffer.from(tag, 'base64url').toString('utf8').includes(`"id":"${alice.id}"`);
        });
        expect(result.count).toBe(rows);
        expect(await countEntries({ action: 'updated', resourceName: { startsWith: prefix } })).toBe(rows);
        return sent;
      };
      const few = await countFor(10);
      const many = await countFor(1000);
      // The database's triggers write the entries: for the call, the client sends Prisma's own UPDATE and nothing else.
      expect(few).toHaveLength(1);
      expect(many).toHaveLength(1);
      expect(many[0]).toMatch(/^UPDATE .*\/\*audit='[A-Za-z0-9_-]+'\*\/$/s);
    });
  });

  describe('secrets', () => {
    it('never lets a secret reach the audit table', async () => {
      const secrets = ['s3cr3t-pass-A', 's3cr3t-key-B', 's3cr3t-token-C', 's3cr3t-rotated-D'];
      const source = await newSource(`secret-${Date.now()}`, {
        host: 'h',
        password: secrets[0],
        nested: { privateKey: secrets[1] },
      });
      const destination = await api.create('destinations', { config: { accessToken: secrets[2] } });
      await asAlice(() =>
        t.prisma.source.update({ where: { id: source.id }, data: { config: { host: 'h', password: secrets[3] } } }),
      );
      await asAlice(() => t.prisma.source.delete({ where: { id: source.id } }));
      await t.http.delete(api.url('destinations', destination.id)).set(ws.admin.auth).expect(204);
      const pg = new Client({ connectionString: t.database.url });
      await pg.connect();
      try {
        const { rows } = await pg.query<{ dump: string }>(
          `SELECT string_agg(a::text, E'\\n') AS dump FROM audit_logs a`,
        );
        for (const secret of secrets) expect(rows[0].dump).not.toContain(secret);
        expect(rows[0].dump).toContain('config.nested.privateKey');
      } finally {
        await pg.end();
      }
      const update = (await entriesFor(source.id)).find((e) => e.action === 'updated')!;
      expect(update.changes).toEqual(
        expect.arrayContaining([
          { field: 'config.password', before: REDACTED, after: REDACTED },
          { field: 'config.nested.privateKey', before: REDACTED },
        ]),
      );
    });
  });

  describe('every path that changes a row is captured with the actor', () => {
    it('refuses a top-level write with no actor in the context, saying what to do', async () => {
      await expect(
        t.prisma.source.create({ data: { workspaceId: ws.workspaceId, name: 'no-context', type: 'x' } }),
      ).rejects.toThrow(/no actor in the request context.*runAsSystem/);
      expect(await t.prisma.source.findFirst({ where: { name: 'no-context' } })).toBeNull();
    });

    it('records nested writes into audited models, from either side, with the actor', async () => {
      const name = `nested-${Date.now()}`;
      await asAlice(() =>
        t.prisma.workspace.update({
          where: { id: ws.workspaceId },
          data: { sources: { create: { name, type: 'x' } } },
        }),
      );
      const source = await t.prisma.source.findFirstOrThrow({ where: { name } });
      const model = await asAlice(() =>
        t.prisma.sqlModel.create({
          data: {
            workspace: { connect: { id: ws.workspaceId } },
            source: { connect: { id: source.id } },
            name: `${name}-model`,
            sql: 'x',
          },
        }),
      );
      for (const id of [source.id, model.id]) {
        const [created] = await entriesFor(id);
        expect(created).toMatchObject({ action: 'created', actorKind: 'user', actorId: alice.id });
      }
      expect(model.createdById).toBe(alice.id);
    });

    it('joins batch and interactive transactions, and TransactionHost, with the actor', async () => {
      const source = await newSource(`tx-${Date.now()}`);
      await asAlice(() =>
        t.prisma.$transaction([t.prisma.source.update({ where: { id: source.id }, data: { type: 'batch' } })]),
      );
      await asAlice(() =>
        t.prisma.$transaction((tx) => tx.source.update({ where: { id: source.id }, data: { type: 'itx' } })),
      );
      await asAlice(() =>
        txHost.withTransaction(() => txHost.tx.source.update({ where: { id: source.id }, data: { type: 'host' } })),
      );
      const entries = await entriesFor(source.id);
      const typeAfter = (changes: unknown) =>
        (changes as { field: string; after: string }[]).find((c) => c.field === 'type')?.after;
      expect(entries.map((e) => [e.action, e.actorId, typeAfter(e.changes)])).toEqual([
        ['created', alice.id, 'pg'],
        ['updated', alice.id, 'batch'],
        ['updated', alice.id, 'itx'],
        ['updated', alice.id, 'host'],
      ]);
    });

    it('sets the creator and last editor itself, whatever the caller sends, and captures update operators', async () => {
      const forged = await asAlice(() =>
        t.prisma.source.create({
          data: { workspaceId: ws.workspaceId, name: `forged-${Date.now()}`, type: 'x', createdById: ws.member.id },
        }),
      );
      expect(forged).toMatchObject({ createdById: alice.id, updatedById: alice.id });
      const destination = await api.create('destinations');
      await asAlice(() =>
        t.prisma.destination.update({
          where: { id: destination.id },
          data: { segmentIds: { push: destination.segmentIds![0] } },
        }),
      );
      const update = (await entriesFor(destination.id)).find((e) => e.action === 'updated')!;
      expect(update.changes).toEqual([{ field: 'segmentIds[1]', after: destination.segmentIds![0] }]);
    });
  });
});

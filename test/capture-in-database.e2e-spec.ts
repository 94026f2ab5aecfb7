import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { ClsServiceManager } from 'nestjs-cls';
import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { AppPrismaClient } from '../src/database/prisma-client.factory';
import { Prisma } from '../src/generated/prisma/client';
import type { AppClsStore } from '../src/request-context/app-cls-store';
import { runAsSystem, runWithActor } from '../src/request-context/run-with-actor';
import { createTestDatabase, type TestDatabase } from './database';

import {
  type ApiAuditEntry,
  encodePath,
  listAuditEntries,
  logDisagreementsViaApi,
  parsePath,
  REDACTED,
  replayDisagreements,
} from './log-invariant';
import { withPlainPrisma } from './plain-prisma';
import {
  createTestApp,
  createWorkspace,
  createWorkspaceWithActors,
  type TestApp,
  type UserActor,
  type WorkspaceWithActors,
} from './test-app';

/**
 * What the capture must guarantee once PostgreSQL itself writes every audit entry, checked from the
 * outside only: through the HTTP API (the log as an admin reads it), the resource rows, and psql as
 * the superuser. No test reads the audit tables' layout, except `audit_logs` as a view of every
 * entry (`changes`, `workspace_id`), which the contract keeps.
 */
describe('Capture in the database', () => {
  let database: TestDatabase;
  let t: TestApp;
  let db: Client;
  let txHost: TransactionHost<TransactionalAdapterPrisma<AppPrismaClient>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    t = await createTestApp({}, {}, database.url);
    txHost = t.app.get(TransactionHost);
    db = new Client({ connectionString: t.database.url });
    db.on('error', () => undefined);
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await t.close();
    await database.drop();
  });

  type Setup = WorkspaceWithActors;
  const rand = () => randomBytes(5).toString('hex');
  const setup = () => createWorkspaceWithActors(t);

  /** One resource's entries as the API shows them to an admin, newest first. */
  const history = (s: Setup, resourceId: string, auth = s.ws.admin.auth, workspaceId = s.workspaceId) =>
    listAuditEntries(t.http, workspaceId, auth, { resourceId });
  const actionsBy = (entries: ApiAuditEntry[]) => entries.map((e) => [e.action, e.user?.id ?? null]);
  const userOf = (actor: UserActor) => ({ id: actor.id, name: actor.name, email: actor.email });
  const byField = <T extends { field: string }>(changes: T[]) =>
    [...changes].sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));

  const row = async (table: string, id: string) =>
    (await db.query<Record<string, unknown>>(`SELECT * FROM ${table} WHERE id = $1`, [id])).rows[0];
  const sourceNamed = async (workspaceId: string, name: string) =>
    (
      await db.query<{ id: string; config: unknown }>('SELECT * FROM sources WHERE workspace_id = $1 AND name = $2', [
        workspaceId,
        name,
      ])
    ).rows[0];
  const membershipId = async (workspaceId: string, userId: string) =>
    (
      await db.query<{ id: string }>('SELECT id FROM memberships WHERE workspace_id = $1 AND user_id = $2', [
        workspaceId,
        userId,
      ])
    ).rows[0].id;
  /** A psql statement's outcome, readable in a failure: how many rows it changed, or its error. */
  const attempt = (sql: string, params: unknown[]) =>
    db.query(sql, params).then(
      (result) => ({ rowCount: result.rowCount }),
      (error: Error) => ({ error: error.message }),
    );
  const refused = (pattern?: RegExp) => ({ error: pattern ? expect.stringMatching(pattern) : expect.any(String) });
  const errorOf = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => error as Error & { code?: string },
    );

  describe('finding 1: nested writes deeper than one level, through models that are not audited', () => {
    it('membership.update → workspace.update → sources.create + sources.updateMany: a created and an updated entry, both by the user', async () => {
      const s = await setup();
      const existing = await s.asAdmin.create('sources');
      const name = `nested create ${rand()}`;
      const membership = await membershipId(s.workspaceId, s.member.id);
      const result = await runWithActor(s.member, () =>
        t.prisma.membership.update({
          where: { id: membership },
          data: {
            workspace: {
              update: {
                data: {
                  sources: {
                    create: { name, type: 'pg', config: { host: 'nested.acme.test' } },
                    updateMany: { where: { id: existing.id }, data: { config: { host: 'moved.acme.test' } } },
                  },
                },
              },
            },
          },
        }),
      );
      expect(result).toMatchObject({ workspaceId: s.workspaceId, userId: s.member.id });

      const created = await sourceNamed(s.workspaceId, name);
      expect(created).toMatchObject({ type: 'pg', config: { host: 'nested.acme.test' } });
      expect((await row('sources', existing.id)).config).toEqual({ host: 'moved.acme.test' });

      const createdLog = await history(s, created.id);
      expect(actionsBy(createdLog)).toEqual([['created', s.member.id]]);
      expect(createdLog[0].user).toEqual(userOf(s.member));
      expect(byField(createdLog[0].changes)).toEqual(
        byField([
          { field: 'name', after: name },
          { field: 'type', after: 'pg' },
          { field: 'config.host', after: 'nested.acme.test' },
        ]),
      );
      const existingLog = await history(s, existing.id);
      expect(actionsBy(existingLog)).toEqual([
        ['updated', s.member.id],
        ['created', s.admin.id],
      ]);
      expect(byField(existingLog[0].changes)).toEqual(
        byField([
          { field: 'config.host', before: 'db.acme.test', after: 'moved.acme.test' },
          { field: 'config.password', before: REDACTED },
        ]),
      );
      expect(createdLog[0].actor).toEqual({ kind: 'user', name: s.member.name });
      expect(existingLog[0].actor).toEqual({ kind: 'user', name: s.member.name });
    });

    it('user.update → memberships.update → workspace.update → sources.deleteMany: a deleted entry by the user', async () => {
      const s = await setup();
      const victim = await s.asAdmin.create('sources');
      const result = await runWithActor(s.member, () =>
        t.prisma.user.update({
          where: { id: s.member.id },
          data: {
            memberships: {
              update: {
                where: { workspaceId_userId: { workspaceId: s.workspaceId, userId: s.member.id } },
                data: { workspace: { update: { data: { sources: { deleteMany: { id: victim.id } } } } } },
              },
            },
          },
        }),
      );
      expect(result.id).toBe(s.member.id);
      expect(await row('sources', victim.id)).toBeUndefined();
      const log = await history(s, victim.id);
      expect(actionsBy(log)).toEqual([
        ['deleted', s.member.id],
        ['created', s.admin.id],
      ]);
      expect(log[0].changes).toEqual(
        expect.arrayContaining([
          { field: 'name', before: victim.name },
          { field: 'config.password', before: REDACTED },
        ]),
      );
      expect(log[0].actor).toEqual({ kind: 'user', name: s.member.name });
    });

    it('user.update → memberships.update → workspace.update → sources.create (three levels deep): logged with the context’s user and request id', async () => {
      const s = await setup();
      const name = `three deep ${rand()}`;
      const requestId = await runWithActor(s.member, async () => {
        await t.prisma.user.update({
          where: { id: s.member.id },
          data: {
            memberships: {
              update: {
                where: { workspaceId_userId: { workspaceId: s.workspaceId, userId: s.member.id } },
                data: {
                  workspace: { update: { data: { sources: { create: { name, type: 'pg', config: { a: 1 } } } } } },
                },
              },
            },
          },
        });
        return ClsServiceManager.getClsService<AppClsStore>().get('requestId');
      });
      const created = await sourceNamed(s.workspaceId, name);
      expect(created).toBeDefined();
      const log = await history(s, created.id);
      expect(actionsBy(log)).toEqual([['created', s.member.id]]);
      expect(log[0]).toMatchObject({ user: userOf(s.member), requestId });
      expect(log[0].actor).toEqual({ kind: 'user', name: s.member.name });
    });

    it('workspace.upsert (update branch) with nested sources.create: a created entry by the user', async () => {
      const s = await setup();
      const name = `upserted nested ${rand()}`;
      await runWithActor(s.member, () =>
        t.prisma.workspace.upsert({
          where: { id: s.workspaceId },
          create: { name: 'never created' },
          update: { sources: { create: { name, type: 'pg', config: { host: 'h' } } } },
        }),
      );
      const created = await sourceNamed(s.workspaceId, name);
      expect(created).toBeDefined();
      const log = await history(s, created.id);
      expect(actionsBy(log)).toEqual([['created', s.member.id]]);
      expect(log[0].actor).toEqual({ kind: 'user', name: s.member.name });
    });

    it('workspace.upsert (create branch) with nested memberships and sources: the new workspace’s source is logged by the user', async () => {
      const s = await setup();
      const workspaceId = randomUUID();
      const name = `upsert-created ${rand()}`;
      await runWithActor(s.member, () =>
        t.prisma.workspace.upsert({
          where: { id: workspaceId },
          create: {
            id: workspaceId,
            name: 'Made by upsert',
            memberships: { create: { userId: s.member.id, role: 'admin' } },
            sources: { create: { name, type: 'pg', config: { host: 'h' } } },
          },
          update: {},
        }),
      );
      const created = await sourceNamed(workspaceId, name);
      expect(created).toBeDefined();
      // The member is admin of the new workspace, so their token reads its log.
      const log = await history(s, created.id, s.ws.member.auth, workspaceId);
      expect(actionsBy(log)).toEqual([['created', s.member.id]]);
      expect(log[0].actor).toEqual({ kind: 'user', name: s.member.name });
    });

    it('membership.create with workspace.connectOrCreate and nested sources.create: a created entry by the user', async () => {
      const s = await setup();
      const workspaceId = randomUUID();
      const name = `connect-or-create ${rand()}`;
      await runWithActor(s.member, () =>
        t.prisma.membership.create({
          data: {
            role: 'admin',
            user: { connect: { id: s.member.id } },
            workspace: {
              connectOrCreate: {
                where: { id: workspaceId },
                create: {
                  id: workspaceId,
                  name: 'Made by connectOrCreate',
                  sources: { create: { name, type: 'pg', config: { host: 'h' } } },
                },
              },
            },
          },
        }),
      );
      const created = await sourceNamed(workspaceId, name);
      expect(created).toBeDefined();
      const log = await history(s, created.id, s.ws.member.auth, workspaceId);
      expect(actionsBy(log)).toEqual([['created', s.member.id]]);
      expect(log[0].actor).toEqual({ kind: 'user', name: s.member.name });
    });

    it('workspace.update → sources.create → models.create → segments.create: each audited row gets its created entry by the user', async () => {
      const s = await setup();
      const [sourceName, modelName, segmentName] = ['source', 'model', 'segment'].map((k) => `${k} chain ${rand()}`);
      await runWithActor(s.member, () =>
        t.prisma.workspace.update({
          where: { id: s.workspaceId },
          data: {
            sources: {
              create: {
                name: sourceName,
                type: 'pg',
                config: { host: 'h' },
                models: {
                  create: {
                    name: modelName,
                    sql: 'SELECT 1',
                    workspace: { connect: { id: s.workspaceId } },
                    segments: {
                      create: {
                        name: segmentName,
                        definition: { operator: 'and', rules: [] },
                        workspace: { connect: { id: s.workspaceId } },
                      },
                    },
                  },
                },
              },
            },
          },
        }),
      );
      const source = await sourceNamed(s.workspaceId, sourceName);
      const model = (await db.query<{ id: string }>('SELECT id FROM models WHERE name = $1', [modelName])).rows[0];
      const segment = (await db.query<{ id: string }>('SELECT id FROM segments WHERE name = $1', [segmentName]))
        .rows[0];
      expect([source, model, segment].every(Boolean)).toBe(true);
      const [sourceLog, modelLog, segmentLog] = await Promise.all(
        [source, model, segment].map((r) => history(s, r.id)),
      );
      for (const log of [sourceLog, modelLog, segmentLog]) expect(actionsBy(log)).toEqual([['created', s.member.id]]);
      expect(modelLog[0].changes).toEqual(expect.arrayContaining([{ field: 'sourceId', after: source.id }]));
      expect(byField(segmentLog[0].changes)).toEqual(
        byField([
          { field: 'name', after: segmentName },
          { field: 'modelId', after: model.id },
          { field: 'definition.operator', after: 'and' },
          { field: 'definition.rules', after: [] },
        ]),
      );
    });

    it('sqlModel.update → source.update (child to parent): the source’s updated entry is by the user', async () => {
      const s = await setup();
      const model = await s.asAdmin.create('models');
      await runWithActor(s.member, () =>
        t.prisma.sqlModel.update({ where: { id: model.id }, data: { source: { update: { type: 'nested-type' } } } }),
      );
      expect((await row('sources', model.sourceId!)).type).toBe('nested-type');
      const log = await history(s, model.sourceId!);
      expect(actionsBy(log)).toEqual([
        ['updated', s.member.id],
        ['created', s.admin.id],
      ]);
      expect(log[0].changes).toEqual([{ field: 'type', before: 'snowflake', after: 'nested-type' }]);
    });
  });

  describe('finding 2: update or delete by workspaceId_name racing a rename and a re-create', () => {
    it.each(['update', 'delete'] as const)(
      '%s by workspaceId_name against rename + re-create, 30 rounds: every resource’s entries replay to its row',
      async (operation) => {
        const s = await setup();
        const unexpected: string[] = [];
        for (let round = 0; round < 30; round++) {
          const name = `race ${round}`;
          const byName = { workspaceId_name: { workspaceId: s.workspaceId, name } };
          const original = await runWithActor(s.admin, () =>
            t.prisma.source.create({
              data: { workspaceId: s.workspaceId, name, type: 'pg', config: { round, v: 'original' } },
            }),
          );
          const outcomes = await Promise.allSettled([
            runWithActor(s.member, () =>
              operation === 'update'
                ? t.prisma.source.update({ where: byName, data: { config: { round, v: 'updated by name' } } })
                : t.prisma.source.delete({ where: byName }),
            ),
            runWithActor(s.admin, () =>
              txHost.withTransaction(async () => {
                await txHost.tx.source.update({ where: { id: original.id }, data: { name: `${name} (old)` } });
                await txHost.tx.source.create({
                  data: { workspaceId: s.workspaceId, name, type: 'pg', config: { round, v: 'recreated' } },
                });
              }),
            ),
          ]);
          // Plain Prisma: either side may find its row gone (P2025); nothing else may fail.
          for (const outcome of outcomes) {
            if (outcome.status === 'rejected' && (outcome.reason as { code?: string }).code !== 'P2025') {
              unexpected.push(`round ${round}: ${String(outcome.reason)}`);
            }
          }
        }
        expect(await logDisagreementsViaApi(t.http, s.workspaceId, s.ws.admin.auth, db)).toEqual([]);
        expect(unexpected).toEqual([]);
      },
    );
  });

  describe('finding 3: JSON paths that collide', () => {
    type Change = { field: string; before?: unknown; after?: unknown };
    it.each<[Record<string, unknown>, Record<string, unknown>, Change[]]>([
      [
        { 'a.b': 1 },
        { a: { b: 1 } },
        [
          { field: 'config["a.b"]', before: 1 },
          { field: 'config.a.b', after: 1 },
        ],
      ],
      [
        { 'a[0]': 'x' },
        { a: ['x'] },
        [
          { field: 'config["a[0]"]', before: 'x' },
          { field: 'config.a[0]', after: 'x' },
        ],
      ],
    ])(
      'config %j, then a member PATCHes config %j over HTTP: an updated entry by the member',
      async (first, second, changes) => {
        const s = await setup();
        const source = await s.asAdmin.create('sources', { config: first });
        const res = await t.http
          .patch(s.asAdmin.url('sources', source.id))
          .set(s.ws.member.auth)
          .send({ config: second });
        expect(res.status).toBe(200);
        expect((res.body as { updatedBy: { id: string } }).updatedBy.id).toBe(s.member.id);
        const log = await history(s, source.id);
        expect(actionsBy(log)).toEqual([
          ['updated', s.member.id],
          ['created', s.admin.id],
        ]);
        expect(byField(log[0].changes)).toEqual(byField(changes));
        expect(log[1].changes).toEqual(expect.arrayContaining([{ field: changes[0].field, after: changes[0].before }]));
        expect(await logDisagreementsViaApi(t.http, s.workspaceId, s.ws.admin.auth, db)).toEqual([]);
      },
    );

    it('the log invariant encodes and parses the contract’s path syntax on its own', () => {
      expect(encodePath('config', ['a.b'])).toBe('config["a.b"]');
      expect(encodePath('config', ['x[0]'])).toBe('config["x[0]"]');
      expect(encodePath('config', ['headers', ''])).toBe('config.headers[""]');
      expect(encodePath('config', ['say "hi"\\', 0, '_ok1'])).toBe('config["say \\"hi\\"\\\\"][0]._ok1');
      expect(encodePath('definition', ['rules', 0, 'value'])).toBe('definition.rules[0].value');
      for (const segments of [['a.b'], ['a', 'b'], ['a[0]'], ['a', 0], [''], ['é', 12, 'x y']]) {
        expect(parsePath(encodePath('config', segments))).toEqual({ field: 'config', segments });
      }
      for (const bad of [
        'config["a"]',
        'config.a..b',
        'config[01]',
        'config["a.b"',
        'config.1a',
        '.config',
        'config[]',
      ]) {
        expect(parsePath(bad)).toBeUndefined();
      }
    });

    it('the log invariant catches a log that spells {"a.b": 1} as config.a.b, and an editor without an entry', () => {
      const created = (config: string) => ({
        resourceId: 'r',
        resourceType: 'source',
        action: 'created',
        userId: 'admin',
        changes: [
          { field: 'name', after: 'n' },
          { field: 'type', after: 'pg' },
          { field: config, after: 1 },
        ],
      });
      const stored = (config: Record<string, unknown>, updatedById = 'admin') => ({
        type: 'source',
        id: 'r',
        fields: { name: 'n', type: 'pg', config },
        createdById: 'admin',
        updatedById,
      });
      const options = { checkEditors: true };
      expect(replayDisagreements([created('config["a.b"]')], [stored({ 'a.b': 1 })], options)).toEqual([]);
      expect(replayDisagreements([created('config.a.b')], [stored({ 'a.b': 1 })], options)).not.toEqual([]);
      // After the member's PATCH to {"a": {"b": 1}} with no entry: the paths agree, the editor does not.
      expect(replayDisagreements([created('config.a.b')], [stored({ a: { b: 1 } }, 'member')], options)).toEqual([
        "source r: updatedBy is member, its newest entry's user admin",
      ]);
    });
  });

  describe('finding 4: a resource’s id, workspace, creation time and creator cannot be changed', () => {
    it.each(['id', 'workspaceId', 'createdAt', 'createdById'] as const)(
      'source.update setting %s through Prisma is refused by the database, and nothing changes',
      async (field) => {
        const s = await setup();
        const other = await createWorkspace(t.app);
        const source = await s.asAdmin.create('sources');
        const before = await row('sources', source.id);
        const logBefore = await history(s, source.id);
        const data = {
          id: { id: randomUUID() },
          workspaceId: { workspaceId: other.workspaceId },
          createdAt: { createdAt: new Date('2000-01-01T00:00:00.000Z') },
          createdById: { createdById: s.member.id },
        }[field];
        await expect(
          runWithActor(s.admin, () => t.prisma.source.update({ where: { id: source.id }, data })),
        ).rejects.toThrow(/cannot be changed/i);
        expect(await row('sources', source.id)).toEqual(before);
        expect(await history(s, source.id)).toEqual(logBefore);
      },
    );

    it.each(['id', 'workspace_id', 'created_at', 'created_by_id'] as const)(
      'UPDATE sources SET %s with psql is refused by the database, and nothing changes',
      async (column) => {
        const s = await setup();
        const other = await createWorkspace(t.app);
        const source = await s.asAdmin.create('sources');
        const before = await row('sources', source.id);
        const logBefore = await history(s, source.id);
        const value = {
          id: randomUUID(),
          workspace_id: other.workspaceId,
          created_at: '2000-01-01T00:00:00.000Z',
          created_by_id: s.member.id,
        }[column];
        expect(await attempt(`UPDATE sources SET ${column} = $2 WHERE id = $1`, [source.id, value])).toEqual(
          refused(/cannot be changed/i),
        );
        expect(await row('sources', source.id)).toEqual(before);
        expect(await history(s, source.id)).toEqual(logBefore);
      },
    );

    it.each(['models', 'segments', 'destinations'] as const)(
      'UPDATE %s SET id with psql is refused by the database, and nothing changes',
      async (table) => {
        const s = await setup();
        const resource = await s.asAdmin.create(table);
        const before = await row(table, resource.id);
        expect(await attempt(`UPDATE ${table} SET id = $2 WHERE id = $1`, [resource.id, randomUUID()])).toEqual(
          refused(/cannot be changed/i),
        );
        expect(await row(table, resource.id)).toEqual(before);
        expect(actionsBy(await history(s, resource.id))).toEqual([['created', s.admin.id]]);
      },
    );
  });

  describe('finding 5: ON UPDATE CASCADE must not change audited rows behind the log', () => {
    it('changing the id of a user who created a source (psql) is refused; the source still names them', async () => {
      const s = await setup();
      const source = await s.asMember.create('sources');
      const before = await row('sources', source.id);
      const logBefore = await history(s, source.id);
      expect(await attempt('UPDATE users SET id = $2 WHERE id = $1', [s.member.id, randomUUID()])).toEqual(refused());
      expect(await row('users', s.member.id)).toBeDefined();
      expect(await row('sources', source.id)).toEqual(before);
      expect(await history(s, source.id)).toEqual(logBefore);
    });

    it('changing a workspace’s id (psql) is refused; its resources keep it', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      const before = await row('sources', source.id);
      expect(await attempt('UPDATE workspaces SET id = $2 WHERE id = $1', [s.workspaceId, randomUUID()])).toEqual(
        refused(),
      );
      expect(await row('workspaces', s.workspaceId)).toBeDefined();
      expect(await row('sources', source.id)).toEqual(before);
      expect(actionsBy(await history(s, source.id))).toEqual([['created', s.admin.id]]);
    });

    it('changing the id of a segment that a destination’s segmentIds uses (psql) is refused; both rows are unchanged', async () => {
      const s = await setup();
      const destination = await s.asAdmin.create('destinations');
      const segmentId = destination.segmentIds![0];
      const [segmentBefore, destinationBefore] = [
        await row('segments', segmentId),
        await row('destinations', destination.id),
      ];
      expect(await attempt('UPDATE segments SET id = $2 WHERE id = $1', [segmentId, randomUUID()])).toEqual(refused());
      expect(await row('segments', segmentId)).toEqual(segmentBefore);
      expect(await row('destinations', destination.id)).toEqual(destinationBefore);
      expect(actionsBy(await history(s, segmentId))).toEqual([['created', s.admin.id]]);
    });

    it('changing the id of a source that a model uses (psql) is refused; the model keeps its sourceId', async () => {
      const s = await setup();
      const model = await s.asAdmin.create('models');
      const modelBefore = await row('models', model.id);
      expect(await attempt('UPDATE sources SET id = $2 WHERE id = $1', [model.sourceId, randomUUID()])).toEqual(
        refused(),
      );
      expect(await row('models', model.id)).toEqual(modelBefore);
      expect(await row('sources', model.sourceId!)).toBeDefined();
      expect(actionsBy(await history(s, model.id))).toEqual([['created', s.admin.id]]);
    });
  });

  describe('finding 6: Prisma.JsonNull and Prisma.DbNull for config', () => {
    it('Prisma.JsonNull stores JSON null exactly as plain Prisma does, with an updated entry', async () => {
      const s = await setup();
      const [audited, baseline] = [await s.asAdmin.create('sources'), await s.asAdmin.create('sources')];
      const plainResult = await withPlainPrisma(t.database.url, (plain) =>
        plain.source.update({ where: { id: baseline.id }, data: { config: Prisma.JsonNull } }),
      );
      const result = await runWithActor(s.member, () =>
        t.prisma.source.update({ where: { id: audited.id }, data: { config: Prisma.JsonNull } }),
      );
      expect(plainResult.config).toBeNull();
      expect(result.config).toBe(plainResult.config);
      const stored = await db.query<{ kind: string }>(
        'SELECT jsonb_typeof(config) AS kind FROM sources WHERE id = $1',
        [audited.id],
      );
      expect(stored.rows[0].kind).toBe('null');
      const log = await history(s, audited.id);
      expect(actionsBy(log)).toEqual([
        ['updated', s.member.id],
        ['created', s.admin.id],
      ]);
      expect(byField(log[0].changes)).toEqual(
        byField([
          { field: 'config', after: null },
          { field: 'config.host', before: 'db.acme.test' },
          { field: 'config.password', before: REDACTED },
        ]),
      );
    });

    it('Prisma.DbNull is rejected as plain Prisma rejects it (NOT NULL column): nothing changes, no entry', async () => {
      const s = await setup();
      const [audited, baseline] = [await s.asAdmin.create('sources'), await s.asAdmin.create('sources')];
      // DbNull is not in the types of a required Json field: exactly what plain Prisma checks at run time.
      const dbNull = Prisma.DbNull as unknown as Prisma.InputJsonObject;
      const plainError = await withPlainPrisma(t.database.url, (plain) =>
        errorOf(plain.source.update({ where: { id: baseline.id }, data: { config: dbNull } })),
      );
      const before = await row('sources', audited.id);
      const error = await errorOf(
        runWithActor(s.member, () => t.prisma.source.update({ where: { id: audited.id }, data: { config: dbNull } })),
      );
      expect(plainError).toBeDefined();
      expect(error).toBeDefined();
      expect({ name: error?.name, code: error?.code }).toEqual({ name: plainError?.name, code: plainError?.code });
      expect(await row('sources', audited.id)).toEqual(before);
      expect(actionsBy(await history(s, audited.id))).toEqual([['created', s.admin.id]]);
    });
  });

  describe('finding 7: an update that is JSON-equal to the stored row is a no-op', () => {
    const since = '2026-01-01T00:00:00.000Z';
    const definition = { operator: 'and', since, rules: [{ field: 'ltv', op: 'gt', value: 100 }] };

    it.each([
      ['a Date equal to the stored ISO string', { ...definition, since: new Date(since) }],
      ['an extra key whose value is undefined', { ...definition, extra: undefined }],
    ])('definition with %s: no entry, updatedAt and updatedBy untouched', async (_case, sameDefinition) => {
      const s = await setup();
      const segment = await s.asAdmin.create('segments', { definition });
      const before = await row('segments', segment.id);
      const result = await runWithActor(s.member, () =>
        t.prisma.segment.update({
          where: { id: segment.id },
          data: { definition: sameDefinition as unknown as Prisma.InputJsonObject },
        }),
      );
      expect(result.definition).toEqual(definition);
      const after = await row('segments', segment.id);
      expect({ updatedAt: after.updated_at, updatedBy: after.updated_by_id }).toEqual({
        updatedAt: before.updated_at,
        updatedBy: s.admin.id,
      });
      expect(after).toEqual(before);
      expect(actionsBy(await history(s, segment.id))).toEqual([['created', s.admin.id]]);
    });
  });

  describe('finding 8: secrets never reach the log in clear', () => {
    it('pwd, auth, authorization, dsn, a URL password and an Authorization header value: redacted in entries, absent from the database, the change still visible', async () => {
      const s = await setup();
      const secret = (label: string) => `${label}${rand()}`;
      const first = ['pwd', 'auth', 'authz', 'hunter2', 'urlpw', 's3cr3t'].map(secret);
      const second = ['pwd2', 'auth2', 'authz2', 'hunter3', 'urlpw2', 's3cr3t2'].map(secret);
      const config = ([pwd, auth, authz, dsn, urlPassword, header]: string[]) => ({
        host: 'db.acme.test',
        pwd,
        auth,
        authorization: `Bearer ${authz}`,
        dsn: `postgres://u:${dsn}@db/x`,
        url: `postgres://u:${urlPassword}@db/x`,
        headers: [{ name: 'Authorization', value: `Bearer ${header}` }],
      });
      const created = await t.http
        .post(s.asAdmin.url('sources'))
        .set(s.ws.admin.auth)
        .send({ name: `secrets ${rand()}`, type: 'pg', config: config(first) });
      expect(created.status).toBe(201);
      const id = (created.body as { id: string }).id;
      const updated = await t.http
        .patch(s.asAdmin.url('sources', id))
        .set(s.ws.member.auth)
        .send({ config: config(second) });
      expect(updated.status).toBe(200);

      const log = await history(s, id);
      const shown = JSON.stringify(log);
      expect([...first, ...second].filter((clear) => shown.includes(clear))).toEqual([]);
      for (const clear of [...first, ...second]) {
        const { rows } = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM audit_logs WHERE changes::text LIKE '%' || $1 || '%'`,
          [clear],
        );
        expect({ clear, entries: Number(rows[0].n) }).toEqual({ clear, entries: 0 });
      }
      // Nowhere else in the database either (an inbox, a queue, a side table): only the source row holds them.
      const { rows: tables } = await db.query<{ name: string }>(
        `SELECT format('%I.%I', table_schema, table_name) AS name FROM information_schema.tables
         WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
           AND (table_schema, table_name) <> ('public', 'sources')`,
      );
      const patterns = [...first, ...second].map((clear) => `%${clear}%`);
      for (const { name } of tables) {
        const { rows } = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${name} x WHERE x::text LIKE ANY($1::text[])`,
          [patterns],
        );
        expect({ table: name, rows: Number(rows[0].n) }).toEqual({ table: name, rows: 0 });
      }

      const maskedUrl = `postgres://u:${REDACTED}@db/x`;
      expect(actionsBy(log)).toEqual([
        ['updated', s.member.id],
        ['created', s.admin.id],
      ]);
      expect(byField(log[1].changes)).toEqual(
        byField([
          { field: 'name', after: (created.body as { name: string }).name },
          { field: 'type', after: 'pg' },
          { field: 'config.host', after: 'db.acme.test' },
          { field: 'config.pwd', after: REDACTED },
          { field: 'config.auth', after: REDACTED },
          { field: 'config.authorization', after: REDACTED },
          { field: 'config.dsn', after: REDACTED },
          { field: 'config.url', after: maskedUrl },
          { field: 'config.headers[0].name', after: 'Authorization' },
          { field: 'config.headers[0].value', after: REDACTED },
        ]),
      );
      expect(byField(log[0].changes)).toEqual(
        byField([
          { field: 'config.pwd', before: REDACTED, after: REDACTED },
          { field: 'config.auth', before: REDACTED, after: REDACTED },
          { field: 'config.authorization', before: REDACTED, after: REDACTED },
          { field: 'config.dsn', before: REDACTED, after: REDACTED },
          { field: 'config.url', before: maskedUrl, after: maskedUrl },
          { field: 'config.headers[0].value', before: REDACTED, after: REDACTED },
        ]),
      );
      expect((updated.body as { config: unknown }).config).toEqual({
        host: 'db.acme.test',
        pwd: '********',
        auth: '********',
        authorization: '********',
        dsn: '********',
        url: 'postgres://u:********@db/x',
        headers: [{ name: 'Authorization', value: '********' }],
      });
    });
  });

  describe('finding 9: concurrent upserts and a very large updateMany', () => {
    it('two concurrent upserts of the same missing row, 10 rounds: every call succeeds, one row, entries replay', async () => {
      const s = await setup();
      const failures: string[] = [];
      for (let round = 0; round < 10; round++) {
        const name = `upserted ${round}`;
        const upsert = (actor: UserActor) =>
          runWithActor(actor, () =>
            t.prisma.source.upsert({
              where: { workspaceId_name: { workspaceId: s.workspaceId, name } },
              create: { workspaceId: s.workspaceId, name, type: 'created', config: { round } },
              update: { type: `updated by ${actor.name}` },
            }),
          );
        const outcomes = await Promise.allSettled([upsert(s.admin), upsert(s.member)]);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') failures.push(`round ${round}: ${String(outcome.reason)}`);
        }
        const { rows } = await db.query('SELECT 1 FROM sources WHERE workspace_id = $1 AND name = $2', [
          s.workspaceId,
          name,
        ]);
        expect(rows).toHaveLength(1);
      }
      expect(failures).toEqual([]);
      expect(await logDisagreementsViaApi(t.http, s.workspaceId, s.ws.admin.auth, db)).toEqual([]);
    });

    // The two 40,000-row tests write 40,000 rows and 40,000 to 80,000 entries each: that can take
    // longer than the default 60 s on a 2-core machine shared with other test runs, hence 120 s.
    // They check that no limit of a single write (a transaction timeout, bind parameters, one huge
    // diff in memory) breaks a large bulk write.
    const bulk = 40_000;
    const countEntries = async (workspaceId: string) =>
      Number(
        (await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_logs WHERE workspace_id = $1', [workspaceId]))
          .rows[0].n,
      );
    const bulkSources = (workspaceId: string, prefix: string, from: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({
        workspaceId,
        name: `${prefix} ${from + i}`,
        type: 'pg',
        config: { host: 'h', i: from + i },
      }));
    const newestEntries = async (s: Setup) =>
      (
        (
          await t.http
            .get(`/api/workspaces/${s.workspaceId}/audit-logs`)
            .set(s.ws.admin.auth)
            .query({ limit: 200 })
            .expect(200)
        ).body as { items: ApiAuditEntry[] }
      ).items;

    it('a 40,000-row createMany inside runAsSystem succeeds and writes 40,000 entries', async () => {
      const s = await setup();
      const entriesBefore = await countEntries(s.workspaceId);
      const result = await runAsSystem('nightly-import', () =>
        t.prisma.source.createMany({ data: bulkSources(s.workspaceId, `bulk ${rand()}`, 0, bulk) }),
      );
      expect(result).toEqual({ count: bulk });
      expect(await countEntries(s.workspaceId)).toBe(entriesBefore + bulk);
      const newest = await newestEntries(s);
      expect(newest).toHaveLength(200);
      expect(new Set(newest.map((e) => `${e.action} ${e.user?.id ?? null}`))).toEqual(new Set(['created null']));
      expect(new Set(newest.map((e) => JSON.stringify(e.actor)))).toEqual(
        new Set([JSON.stringify({ kind: 'system', name: 'nightly-import' })]),
      );
    }, 120_000);

    it('a 40,000-row updateMany succeeds and writes 40,000 entries by the user', async () => {
      const s = await setup();
      const prefix = `bulk ${rand()}`;
      // Created 2,000 rows per createMany, so that making them is not what fails (the test above
      // covers one large createMany): this one is about the single 40,000-row updateMany.
      const chunk = 2_000;
      const created = await runAsSystem('nightly-import', async () => {
        let count = 0;
        for (let from = 0; from < bulk; from += chunk) {
          count += (await t.prisma.source.createMany({ data: bulkSources(s.workspaceId, prefix, from, chunk) })).count;
        }
        return count;
      });
      expect(created).toBe(bulk);
      const entriesBefore = await countEntries(s.workspaceId);
      const result = await runWithActor(s.member, () =>
        t.prisma.source.updateMany({
          where: { workspaceId: s.workspaceId, name: { startsWith: prefix } },
          data: { type: 'bulk-updated' },
        }),
      );
      expect(result).toEqual({ count: bulk });
      expect(await countEntries(s.workspaceId)).toBe(entriesBefore + bulk);
      const { rows: changed } = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM sources WHERE workspace_id = $1 AND type = 'bulk-updated'`,
        [s.workspaceId],
      );
      expect(Number(changed[0].n)).toBe(bulk);
      const newest = await newestEntries(s);
      expect(newest).toHaveLength(200);
      expect(new Set(newest.map((e) => `${e.action} ${e.user?.id}`))).toEqual(new Set([`updated ${s.member.id}`]));
    }, 120_000);
  });

  describe('finding 10: runAsSystem', () => {
    it('runAsSystem("nightly-import", …) records actor {kind: system, name: nightly-import} and no user', async () => {
      const s = await setup();
      const source = await runAsSystem('nightly-import', async () => {
        const made = await t.prisma.source.create({
          data: { workspaceId: s.workspaceId, name: `imported ${rand()}`, type: 'pg', config: { host: 'h' } },
        });
        return t.prisma.source.update({ where: { id: made.id }, data: { type: 'reimported' } });
      });
      expect(source).toMatchObject({ createdById: null, updatedById: null });
      const log = await history(s, source.id);
      expect(log.map((e) => [e.action, e.user, e.actor])).toEqual([
        ['updated', null, { kind: 'system', name: 'nightly-import' }],
        ['created', null, { kind: 'system', name: 'nightly-import' }],
      ]);
    });
  });

  describe('writes without the application, raw SQL and transactions', () => {
    it('a psql UPDATE sources SET name is logged as actor database/postgres with no user', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      const renamed = `renamed in psql ${rand()}`;
      const result = await db.query('UPDATE sources SET name = $2 WHERE id = $1', [source.id, renamed]);
      expect(result.rowCount).toBe(1);
      const log = await history(s, source.id);
      expect(log.map((e) => e.action)).toEqual(['updated', 'created']);
      expect(log[0]).toMatchObject({
        user: null,
        actor: { kind: 'database', name: 'postgres' },
        resourceName: renamed,
        changes: [{ field: 'name', before: source.name, after: renamed }],
      });
    });

    it('$executeRaw through the app’s client inside a user context: the row’s entry has that user', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      const count = await runWithActor(
        s.member,
        () => t.prisma.$executeRaw`UPDATE sources SET type = 'raw-type' WHERE id = ${source.id}::uuid`,
      );
      expect(count).toBe(1);
      const log = await history(s, source.id);
      expect(actionsBy(log)).toEqual([
        ['updated', s.member.id],
        ['created', s.admin.id],
      ]);
      expect(log[0].changes).toEqual([{ field: 'type', before: 'snowflake', after: 'raw-type' }]);
      expect(log[0].actor).toEqual({ kind: 'user', name: s.member.name });
    });

    it('a rolled-back prisma.$transaction(async tx => …) (throw after an update) leaves no change and no entry', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      await expect(
        runWithActor(s.member, () =>
          t.prisma.$transaction(async (tx) => {
            await tx.source.update({ where: { id: source.id }, data: { type: 'rolled back' } });
            throw new Error('business rule failed');
          }),
        ),
      ).rejects.toThrow('business rule failed');
      expect((await row('sources', source.id)).type).toBe('snowflake');
      expect(actionsBy(await history(s, source.id))).toEqual([['created', s.admin.id]]);
    });

    it('a committed prisma.$transaction(async tx => …) gives each change its entry by the user', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      const name = `made in itx ${rand()}`;
      const made = await runWithActor(s.member, () =>
        t.prisma.$transaction(async (tx) => {
          await tx.source.update({ where: { id: source.id }, data: { type: 'itx' } });
          return tx.source.create({ data: { workspaceId: s.workspaceId, name, type: 'pg' } });
        }),
      );
      expect(made.name).toBe(name);
      expect(actionsBy(await history(s, source.id))).toEqual([
        ['updated', s.member.id],
        ['created', s.admin.id],
      ]);
      expect(actionsBy(await history(s, made.id))).toEqual([['created', s.member.id]]);
    });

    it('a batch prisma.$transaction([...]) returns what plain Prisma returns and gives each change its entry by the user', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      const name = `made in batch ${rand()}`;
      const [updated, made] = await runWithActor(s.member, () =>
        t.prisma.$transaction([
          t.prisma.source.update({ where: { id: source.id }, data: { type: 'batch' } }),
          t.prisma.source.create({ data: { workspaceId: s.workspaceId, name, type: 'pg' } }),
        ]),
      );
      expect([updated.type, made.name]).toEqual(['batch', name]);
      expect(actionsBy(await history(s, source.id))).toEqual([
        ['updated', s.member.id],
        ['created', s.admin.id],
      ]);
      expect(actionsBy(await history(s, made.id))).toEqual([['created', s.member.id]]);
    });

    it('50 concurrent HTTP PATCHes of one source’s name: 50 entries whose before/after chain in log order', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          t.http
            .patch(s.asAdmin.url('sources', source.id))
            .set(i % 2 ? s.ws.member.auth : s.ws.admin.auth)
            .send({ name: `${source.name} v${i}` }),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(Array<number>(50).fill(200));
      const updates = (await history(s, source.id)).filter((e) => e.action === 'updated').reverse();
      expect(updates).toHaveLength(50);
      let name = source.name;
      for (const entry of updates) {
        expect(entry.changes).toEqual([{ field: 'name', before: name, after: expect.any(String) as string }]);
        name = entry.changes[0].after as string;
      }
      expect((await row('sources', source.id)).name).toBe(name);
    });

    it('a failing entry insert (a trigger on audit_log_inbox that raises) rolls the PATCH back', async () => {
      const s = await setup();
      const source = await s.asAdmin.create('sources');
      const fn = `test_refuse_entry_${rand()}`;
      await db.query(
        `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'audit entry refused by the test'; END $$`,
      );
      try {
        await db.query(`CREATE TRIGGER ${fn} BEFORE INSERT ON audit_log_inbox FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
        const res = await t.http
          .patch(s.asAdmin.url('sources', source.id))
          .set(s.ws.admin.auth)
          .send({ name: `never ${rand()}` });
        expect(res.status).toBeGreaterThanOrEqual(500);
      } finally {
        await db.query(`DROP TRIGGER IF EXISTS ${fn} ON audit_log_inbox`).catch(() => undefined);
        await db.query(`DROP FUNCTION ${fn}()`);
      }
      expect((await row('sources', source.id)).name).toBe(source.name);
      expect(actionsBy(await history(s, source.id))).toEqual([['created', s.admin.id]]);
    });
  });
});

import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { AppModule } from '../src/app.module';
import { setupApp } from '../src/app.setup';
import { APP_CONFIG, type AppConfig, loadConfig } from '../src/config/app-config';
import {
  type AppPrismaClient,
  PRISMA,
  QUERY_LISTENER,
  type QueryListener,
} from '../src/database/prisma-client.factory';
import type { Actor } from '../src/request-context/app-cls-store';
import { runAsSystem } from '../src/request-context/run-with-actor';
import { WorkspacesService } from '../src/workspaces/workspaces.service';
import { createTestDatabase, type TestDatabase } from './database';
import { ResourceFactory } from './factories';
import { until } from './until';

export interface TestApp {
  app: INestApplication;
  http: TestAgent;
  prisma: AppPrismaClient;
  database: TestDatabase;
  close(): Promise<void>;
}

/** The whole application on a fresh copy of the migrated database, ready for supertest. */
export async function createTestApp(
  overrides: Partial<AppConfig> = {},
  /** `providers`: tokens to replace with a value (a fake for what a test cannot reach, such as DNS). */
  options: { onQuery?: QueryListener; providers?: [token: symbol, value: unknown][] } = {},
  /** Connect to this URL instead of a new database (which is then neither created nor dropped here). */
  databaseUrl?: string,
): Promise<TestApp> {
  const database: TestDatabase = databaseUrl
    ? { name: new URL(databaseUrl).pathname.slice(1), url: databaseUrl, drop: () => Promise.resolve() }
    : await createTestDatabase();
  const config: AppConfig = {
    ...loadConfig({}),
    nodeEnv: 'test',
    databaseUrl: database.url,
    databasePoolSize: 10,
    auditRateLimit: 100_000,
    exportRateLimit: 100_000,
    ...overrides,
  };
  const builder = Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(APP_CONFIG)
    .useValue(config)
    .overrideProvider(QUERY_LISTENER)
    .useValue(options.onQuery ?? null);
  for (const [token, value] of options.providers ?? []) builder.overrideProvider(token).useValue(value);
  const moduleRef = await builder.compile();
  const app = setupApp(moduleRef.createNestApplication({ logger: ['error'] }));
  await app.init();
  return {
    app,
    http: request(app.getHttpServer()),
    prisma: app.get<AppPrismaClient>(PRISMA),
    database,
    async close() {
      await app.close();
      await database.drop();
    },
  };
}

export interface TestWorkspace {
  workspaceId: string;
  admin: { id: string; token: string; auth: { Authorization: string } };
  member: { id: string; token: string; auth: { Authorization: string } };
}

let counter = 0;

/** A workspace with an admin and a member, created as the CLI would. */
export async function createWorkspace(app: INestApplication, name = 'Acme'): Promise<TestWorkspace> {
  const workspaces = app.get(WorkspacesService);
  const n = ++counter;
  const suffix = `${process.pid}-${n}-${Math.random().toString(36).slice(2, 8)}`;
  return runAsSystem('test', async () => {
    const boot = await workspaces.bootstrap(name, { email: `admin-${suffix}@acme.test`, name: `Admin ${n}` });
    const member = await workspaces.addUser(
      boot.workspaceId,
      { email: `member-${suffix}@acme.test`, name: `Member ${n}` },
      'member',
    );
    return {
      workspaceId: boot.workspaceId,
      admin: { id: boot.userId, token: boot.token, auth: { Authorization: `Bearer ${boot.token}` } },
      member: { id: member.userId, token: member.token, auth: { Authorization: `Bearer ${member.token}` } },
    };
  });
}

export type UserActor = Actor & { kind: 'user' };

/** A workspace of its own with its admin and member, as HTTP clients and as runWithActor actors. */
export interface WorkspaceWithActors {
  ws: TestWorkspace;
  workspaceId: string;
  /** Resources created over HTTP by the admin / by the member. */
  asAdmin: ResourceFactory;
  asMember: ResourceFactory;
  admin: UserActor;
  member: UserActor;
}

export async function createWorkspaceWithActors(t: TestApp): Promise<WorkspaceWithActors> {
  const ws = await createWorkspace(t.app);
  const actor = async (id: string): Promise<UserActor> => {
    const user = await t.prisma.user.findUniqueOrThrow({
      where: { id },
      select: { id: true, name: true, email: true },
    });
    return { kind: 'user', ...user };
  };
  return {
    ws,
    workspaceId: ws.workspaceId,
    asAdmin: new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth),
    asMember: new ResourceFactory(t.http, ws.workspaceId, ws.member.auth),
    admin: await actor(ws.admin.id),
    member: await actor(ws.member.id),
  };
}

/** The text of `GET …/audit-logs/export?{query}` of a workspace, as its admin downloads it. */
/** The export entries of a workspace's log. */
async function exportsRecorded(t: TestApp, workspaceId: string): Promise<number> {
  const [{ n }] = await t.prisma.$queryRaw<{ n: bigint }[]>`
    SELECT count(*) AS n FROM "audit_logs" WHERE "workspace_id" = ${workspaceId}::uuid AND "action" = 'exported'`;
  return Number(n);
}

/**
 * Runs a download of the workspace's export, then waits for the entry that records it, which the
 * service writes after the last byte: what the test reads next does not change under it.
 */
export async function recordedExport<T>(t: TestApp, workspaceId: string, download: () => Promise<T>): Promise<T> {
  const before = await exportsRecorded(t, workspaceId);
  const result = await download();
  await until('the export recorded in the log', async () =>
    (await exportsRecorded(t, workspaceId)) > before ? true : undefined,
  );
  return result;
}

export async function exportText(t: TestApp, ws: TestWorkspace, query = 'format=ndjson&chain=true'): Promise<string> {
  return recordedExport(t, ws.workspaceId, () => downloadText(t, ws, query));
}

async function downloadText(t: TestApp, ws: TestWorkspace, query: string): Promise<string> {
  const res = await t.http
    .get(`/api/workspaces/${ws.workspaceId}/audit-logs/export?${query}`)
    .set(ws.admin.auth)
    .buffer(true)
    .parse((response, done) => {
      let data = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (data += chunk));
      response.on('end', () => done(null, data));
    })
    .expect(200);
  return res.body as string;
}

import { Inject, Injectable } from '@nestjs/common';
import { runAsSystem, runWithActor } from '../request-context/run-with-actor';
import type { Actor } from '../request-context/app-cls-store';
import { DESTINATIONS, MODELS, SEGMENTS, SOURCES } from '../resources/resources.module';
import type { ResourcesService } from '../resources/resources.service';
import { WorkspacesService } from './workspaces.service';

export interface DemoCredentials {
  workspaceId: string;
  admin: { email: string; token: string };
  member: { email: string; token: string };
}

export const DEMO_ADMIN = { email: 'alice@acme.test', name: 'Alice Martin' };
export const DEMO_MEMBER = { email: 'bob@acme.test', name: 'Bob Chen' };

/**
 * The demo workspace "Acme", written through the same services as the API so that the audit log
 * holds its history: Alice and Bob create, edit and delete resources.
 */
@Injectable()
export class DemoSeeder {
  constructor(
    private readonly workspaces: WorkspacesService,
    @Inject(SOURCES) private readonly sources: ResourcesService,
    @Inject(MODELS) private readonly models: ResourcesService,
    @Inject(SEGMENTS) private readonly segments: ResourcesService,
    @Inject(DESTINATIONS) private readonly destinations: ResourcesService,
  ) {}

  async seed(): Promise<DemoCredentials> {
    const {
      workspaceId,
      userId: aliceId,
      token: adminToken,
    } = await runAsSystem('seed', () => this.workspaces.bootstrap('Acme', DEMO_ADMIN));
    const { userId: bobId, token: memberToken } = await runAsSystem('seed', () =>
      this.workspaces.addUser(workspaceId, DEMO_MEMBER, 'member'),
    );
    const alice: Actor = { kind: 'user', id: aliceId, ...DEMO_ADMIN };
    const bob: Actor = { kind: 'user', id: bobId, ...DEMO_MEMBER };
    const as = <T>(actor: Actor, fn: () => Promise<T>) => runWithActor(actor, fn);

    const warehouse = await as(alice, () =>
      this.sources.create(workspaceId, {
        name: 'Snowflake production',
        type: 'snowflake',
        config: { account: 'acme-prod', warehouse: 'ANALYTICS', user: 'dinmo', password: 'demo-secret-1' },
      }),
    );
    const postgres = await as(bob, () =>
      this.sources.create(workspaceId, {
        name: 'Postgres replica',
        type: 'postgresql',
        config: { host: 'replica.acme.internal', port: 5432, database: 'app', privateKey: 'demo-secret-2' },
      }),
    );
    const customers = await as(alice, () =>
      this.models.create(workspaceId, {
        name: 'Customers',
        sourceId: warehouse.id,
        sql: 'SELECT id, email, lifetime_value FROM customers',
      }),
    );
    const orders = await as(bob, () =>
      this.models.create(workspaceId, { name: 'Orders', sourceId: postgres.id, sql: 'SELECT * FROM orders' }),
    );
    const highValue = await as(alice, () =>
      this.segments.create(workspaceId, {
        name: 'High-value customers',
        modelId: customers.id,
        definition: { operator: 'and', rules: [{ field: 'lifetime_value', op: 'gt', value: 100 }] },
      }),
    );
    await as(bob, () =>
      this.segments.update(workspaceId, highValue.id, {
        definition: { operator: 'and', rules: [{ field: 'lifetime_value', op: 'gt', value: 250 }] },
      }),
    );
    const recent = await as(bob, () =>
      this.segments.create(workspaceId, {
        name: 'Recent buyers',
        modelId: orders.id,
        definition: { operator: 'and', rules: [{ field: 'ordered_at', op: 'within_days', value: 30 }] },
      }),
    );
    await as(alice, () =>
      this.destinations.create(workspaceId, {
        name: 'Meta Ads',
        type: 'meta_ads',
        config: { adAccountId: 'act_123', accessToken: 'demo-secret-3' },
        segmentIds: [highValue.id],
      }),
    );
    const braze = await as(bob, () =>
      this.destinations.create(workspaceId, {
        name: 'Braze',
        type: 'braze',
        config: { instance: 'eu-01', apiKey: 'demo-secret-4' },
        enabled: false,
        segmentIds: [recent.id],
      }),
    );
    await as(alice, () => this.destinations.update(workspaceId, braze.id, { enabled: true }));
    await as(alice, () => this.sources.update(workspaceId, postgres.id, { name: 'Postgres read replica' }));
    const scratch = await as(bob, () =>
      this.models.create(workspaceId, { name: 'Scratch query', sourceId: warehouse.id, sql: 'SELECT 1' }),
    );
    await as(alice, () => this.models.remove(workspaceId, scratch.id));

    return {
      workspaceId,
      admin: { email: DEMO_ADMIN.email, token: adminToken },
      member: { email: DEMO_MEMBER.email, token: memberToken },
    };
  }
}

import type TestAgent from 'supertest/lib/agent';

type Auth = { Authorization: string };
export type ResourcePath = 'sources' | 'models' | 'segments' | 'destinations';

/** A resource as the API returns it. */
export interface ResourceJson {
  id: string;
  name: string;
  updatedAt: string;
  sourceId?: string;
  modelId?: string;
  segmentIds?: string[];
  config?: Record<string, unknown>;
  [field: string]: unknown;
}

let sequence = 0;
const unique = (prefix: string) => `${prefix} ${++sequence}-${Math.random().toString(36).slice(2, 7)}`;

/** Request bodies for each resource type, creating what they depend on through the API. */
export class ResourceFactory {
  constructor(
    private readonly http: TestAgent,
    private readonly workspaceId: string,
    private readonly auth: Auth,
  ) {}

  url(path: ResourcePath, id?: string): string {
    return `/api/workspaces/${this.workspaceId}/${path}${id ? `/${id}` : ''}`;
  }

  async create(path: ResourcePath, overrides: Record<string, unknown> = {}): Promise<ResourceJson> {
    const body = { ...(await this.body(path)), ...overrides };
    const res = await this.http.post(this.url(path)).set(this.auth).send(body);
    if (res.status !== 201) throw new Error(`POST ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as ResourceJson;
  }

  async body(path: ResourcePath): Promise<Record<string, unknown>> {
    switch (path) {
      case 'sources':
        return {
          name: unique('Warehouse'),
          type: 'snowflake',
          config: { host: 'db.acme.test', password: 'pw-source-secret' },
        };
      case 'models':
        return {
          name: unique('Customers'),
          sourceId: (await this.create('sources')).id,
          sql: 'SELECT * FROM customers',
        };
      case 'segments':
        return {
          name: unique('High value'),
          modelId: (await this.create('models')).id,
          definition: { operator: 'and', rules: [{ field: 'ltv', op: 'gt', value: 100 }] },
        };
      case 'destinations':
        return {
          name: unique('Braze'),
          type: 'braze',
          config: { instance: 'eu', apiKey: 'braze-api-secret' },
          segmentIds: [(await this.create('segments')).id],
        };
    }
  }
}

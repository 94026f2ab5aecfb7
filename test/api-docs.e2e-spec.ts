import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestApp, type TestApp } from './test-app';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

interface OpenApi {
  paths: Record<string, Partial<Record<(typeof METHODS)[number], { responses: Record<string, unknown> }>>>;
}

/** Each route's heading in docs/api.md (`### GET /api/…`) and the status codes its section lists. */
function documented(): Map<string, string[]> {
  const text = readFileSync(join(__dirname, '..', 'docs', 'api.md'), 'utf8');
  const routes = new Map<string, string[]>();
  const sections = text.split(/^### /m).slice(1);
  for (const section of sections) {
    const heading = /^(GET|POST|PUT|PATCH|DELETE) (\S+)/.exec(section);
    if (!heading) continue;
    const statuses = /^Status(?:es)?: (.+)$/m.exec(section);
    const codes = statuses ? [...statuses[1].matchAll(/`(\d{3})`/g)].map((m) => m[1]) : [];
    routes.set(`${heading[1]} ${heading[2]}`, codes.sort());
  }
  return routes;
}

/** docs/api.md, the project's API reference, against the OpenAPI document the service serves. */
describe('docs/api.md', () => {
  let t: TestApp;
  let openApi: OpenApi;
  beforeAll(async () => {
    t = await createTestApp();
    openApi = (await t.http.get('/api/docs-json').expect(200)).body as OpenApi;
  });
  afterAll(() => t.close());

  const served = () => {
    const routes = new Map<string, string[]>();
    for (const [path, operations] of Object.entries(openApi.paths)) {
      for (const method of METHODS) {
        const operation = operations[method];
        if (operation) routes.set(`${method.toUpperCase()} ${path}`, Object.keys(operation.responses).sort());
      }
    }
    return routes;
  };

  it('documents every route of the OpenAPI document, and no other', () => {
    expect([...documented().keys()].sort()).toEqual([...served().keys()].sort());
  });

  it("lists each route's status codes exactly as the OpenAPI document does", () => {
    const docs = documented();
    for (const [route, codes] of served()) expect({ route, codes: docs.get(route) }).toEqual({ route, codes });
  });

  it('every operation declares its error responses: 401 unless public, 400 where it takes input, 503', () => {
    for (const [route, codes] of served()) {
      // The two routes that need no token.
      if (route !== 'GET /api/health' && route !== 'GET /api/audit-logs/public-keys')
        expect({ route, has401: codes.includes('401') }).toEqual({ route, has401: true });
      expect({ route, has503: codes.includes('503') }).toEqual({ route, has503: true });
      if (/\{|POST|PUT|PATCH/.test(route))
        expect({ route, has400: codes.includes('400') }).toEqual({ route, has400: true });
    }
  });
});

import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

/** Headers that keep browsers from sniffing, framing, caching or running anything the app did not send. */
describe('Security headers', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app);
  });
  afterAll(() => t.close());

  const common = (headers: Record<string, string>) => {
    expect(headers['x-powered-by']).toBeUndefined();
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['x-frame-options']).toBe('DENY');
    const csp = headers['content-security-policy'];
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
  };

  it('the page: a CSP with no inline script or style, framing refused, not cached as public', async () => {
    for (const path of ['/', '/settings/audit-logs']) {
      const res = await t.http.get(path).expect(200);
      common(res.headers);
      const csp = res.headers['content-security-policy'];
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(res.headers['cache-control']).not.toMatch(/public/);
      // and the page itself has nothing inline that this CSP would block
      expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(res.text).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    }
    for (const asset of ['/assets/app.js', '/assets/app.css']) {
      const res = await t.http.get(asset).expect(200);
      common(res.headers);
      expect(res.headers['cache-control']).not.toMatch(/public/);
    }
  });

  it('a JSON route: no-store, nosniff, no X-Powered-By', async () => {
    for (const path of ['/api/health', `/api/workspaces/${ws.workspaceId}/audit-logs`, '/api/me']) {
      const res = await t.http.get(path).set(ws.admin.auth).expect(200);
      common(res.headers);
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });

  it('errors carry the same headers', async () => {
    const res = await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs`).expect(401);
    common(res.headers);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('an export: no-store, nosniff, no X-Powered-By', async () => {
    for (const format of ['csv', 'ndjson']) {
      const res = await t.http
        .get(`/api/workspaces/${ws.workspaceId}/audit-logs/export?format=${format}`)
        .set(ws.admin.auth)
        .expect(200);
      common(res.headers);
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });

  it('the API documentation page still works: Swagger UI needs its inline code, and only it gets it', async () => {
    const res = await t.http.get('/api/docs/').expect(200);
    common(res.headers);
    expect(res.headers['content-security-policy']).toContain("script-src 'self' 'unsafe-inline'");
  });
});

import { runAsSystem } from '../src/request-context/run-with-actor';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

describe('Authentication and workspace membership', () => {
  let t: TestApp;
  let acme: TestWorkspace;
  let globex: TestWorkspace;
  beforeAll(async () => {
    t = await createTestApp();
    acme = await createWorkspace(t.app, 'Acme');
    globex = await createWorkspace(t.app, 'Globex');
  });
  afterAll(() => t.close());

  const sources = (workspaceId: string) => `/api/workspaces/${workspaceId}/sources`;

  it('accepts a valid bearer token', async () => {
    await t.http.get(sources(acme.workspaceId)).set(acme.member.auth).expect(200, { items: [] });
  });

  it('takes the scheme in any case, as HTTP defines it (RFC 9110)', async () => {
    for (const scheme of ['bearer', 'BEARER']) {
      await t.http
        .get(sources(acme.workspaceId))
        .set('Authorization', `${scheme} ${acme.member.token}`)
        .expect(200, { items: [] });
    }
  });

  it.each([
    ['no header', undefined],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
    ['a malformed token', 'Bearer not-a-token'],
    ['an unknown token', `Bearer alog_${'A'.repeat(43)}`],
    ['extra words', 'Bearer a b'],
  ])('answers 401 for %s', async (_case, header) => {
    const req = t.http.get(sources(acme.workspaceId));
    const res = await (header ? req.set('Authorization', header) : req).expect(401);
    expect(res.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    expect(typeof res.body.message).toBe('string');
  });

  it('answers 401 for a revoked token', async () => {
    const extra = await createWorkspace(t.app, 'Initech');
    // Revoking is an audited change: made here as a system job, as an operator's script would.
    await runAsSystem('test', () =>
      t.prisma.apiToken.updateMany({ where: { userId: extra.member.id }, data: { revokedAt: new Date() } }),
    );
    await t.http.get(sources(extra.workspaceId)).set(extra.member.auth).expect(401);
  });

  it('hides a workspace the caller is not a member of (404), and an unknown one alike', async () => {
    const foreign = await t.http.get(sources(globex.workspaceId)).set(acme.admin.auth).expect(404);
    const unknown = await t.http.get(sources('6f1c2b7e-0000-4000-8000-000000000000')).set(acme.admin.auth).expect(404);
    expect(foreign.body.message.replace(globex.workspaceId, 'X')).toBe(
      unknown.body.message.replace('6f1c2b7e-0000-4000-8000-000000000000', 'X'),
    );
  });

  it('answers 400 for a malformed workspace id', async () => {
    const res = await t.http.get(sources('not-a-uuid')).set(acme.admin.auth).expect(400);
    expect(res.body.message).toMatch(/workspaceId must be a UUID/);
  });

  it('stores only a hash of each token, and records when it was last used', async () => {
    const stored = await t.prisma.apiToken.findMany({ where: { userId: acme.admin.id } });
    expect(stored.length).toBeGreaterThan(0);
    for (const row of stored) {
      expect(row.tokenHash).not.toContain(acme.admin.token);
      expect(row.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(stored.some((row) => row.lastUsedAt !== null)).toBe(true);
  });
});

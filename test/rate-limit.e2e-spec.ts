import { randomUUID } from 'node:crypto';
import { runAsSystem } from '../src/request-context/run-with-actor';
import { WorkspacesService } from '../src/workspaces/workspaces.service';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

describe('Rate limits on the audit-log routes', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  beforeAll(async () => {
    t = await createTestApp({ auditRateLimit: 5, exportRateLimit: 2 });
    ws = await createWorkspace(t.app);
  });
  afterAll(() => t.close());

  const url = (suffix = '') => `/api/workspaces/${ws.workspaceId}/audit-logs${suffix}`;

  it('answers 429 past the limit for that token, saying when to retry, and spares other tokens', async () => {
    for (let i = 0; i < 5; i++) await t.http.get(url()).set(ws.admin.auth).expect(200);
    const limited = await t.http.get(url()).set(ws.admin.auth).expect(429);
    expect(limited.body).toEqual({
      statusCode: 429,
      message: expect.stringMatching(/allows 5 per 60 s for a token\. Retry after \d+ s\./),
      error: 'Too Many Requests',
    });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    const secondToken = await runAsSystem('test', () => t.app.get(WorkspacesService).issueToken(ws.admin.id, 'second'));
    await t.http.get(url()).set('Authorization', `Bearer ${secondToken}`).expect(200);
  });

  it('one budget per token across every audit-log and retention route: once spent, all answer 429', async () => {
    const token = await runAsSystem('test', () => t.app.get(WorkspacesService).issueToken(ws.admin.id, 'shared'));
    const auth = { Authorization: `Bearer ${token}` };
    // spent on five different routes, one of them the retention's
    await t.http.get(url()).set(auth).expect(200);
    await t.http.get(url('/filters')).set(auth).expect(200);
    await t.http.get(url('/verify')).set(auth).expect(200);
    await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-retention`).set(auth).expect(200);
    await t.http.get(url()).set(auth).expect(200);
    for (const path of [
      url(),
      url('/verify'),
      url('/filters'),
      url(`/${randomUUID()}`),
      `/api/workspaces/${ws.workspaceId}/audit-retention`,
    ]) {
      const res = await t.http.get(path).set(auth);
      expect({ path, status: res.status }).toEqual({ path, status: 429 });
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(res.body.message).toMatch(/Retry after \d+ s\./);
    }
    const put = await t.http
      .put(`/api/workspaces/${ws.workspaceId}/audit-retention`)
      .set(auth)
      .send({ retentionMonths: 24 });
    expect(put.status).toBe(429);
    expect(Number(put.headers['retry-after'])).toBeGreaterThan(0);
    // the export keeps a budget of its own
    await t.http.get(url('/export')).set(auth).expect(200);
  });

  it('limits the export more tightly', async () => {
    const token = await runAsSystem('test', () => t.app.get(WorkspacesService).issueToken(ws.admin.id, 'export'));
    const auth = { Authorization: `Bearer ${token}` };
    await t.http.get(url('/export')).set(auth).expect(200);
    await t.http.get(url('/export')).set(auth).expect(200);
    const limited = await t.http.get(url('/export')).set(auth).expect(429);
    expect(limited.body.message).toMatch(/allows 2 per 60 s/);
  });

  it('leaves the resource routes alone', async () => {
    for (let i = 0; i < 8; i++)
      await t.http.get(`/api/workspaces/${ws.workspaceId}/sources`).set(ws.admin.auth).expect(200);
  });
});

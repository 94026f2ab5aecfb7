/// <reference lib="dom" />
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { ResourceFactory } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

const CHROMIUM = '/usr/bin/chromium';
const TIMEZONE = 'America/New_York';
const available = existsSync(CHROMIUM);
if (!available) {
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium package.`);
  console.log(`Skipping the browser test: ${CHROMIUM} is missing (apt-get install chromium).`);
}

/** The Audit Logs page in real Chromium, as an admin in New York and a member would use it. */
(available ? describe : describe.skip)('The Audit Logs page', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let base: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    t = await createTestApp();
    await t.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${((t.app.getHttpServer() as Server).address() as AddressInfo).port}`;
    ws = await createWorkspace(t.app, 'Acme');
    const admin = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    const member = new ResourceFactory(t.http, ws.workspaceId, ws.member.auth);
    for (let i = 0; i < 14; i++) await admin.create('sources', { name: `Warehouse ${i}` });
    const segment = await member.create('segments', { name: 'High-value customers' });
    await t.http
      .patch(member.url('segments', segment.id))
      .set(ws.member.auth)
      .send({ definition: { operator: 'and', rules: [{ field: 'ltv', op: 'gt', value: 250 }] } })
      .expect(200);
    await t.http
      .patch(admin.url('sources', (await admin.create('sources', { name: 'Billing DB' })).id))
      .set(ws.admin.auth)
      .send({ config: { host: 'db.acme.test', password: 'rotated' } })
      .expect(200);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const context = await browser.newContext({
      timezoneId: TIMEZONE,
      locale: 'en-US',
      acceptDownloads: true,
      viewport: { width: 1280, height: 900 },
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // The page runs under the app's Content-Security-Policy: anything it blocks is a failure.
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) pageErrors.push(message.text());
    });
  });
  afterAll(async () => {
    expect(pageErrors).toEqual([]);
    await browser?.close();
    await t.close();
  });

  const rows = () => page.locator('#rows tr');
  const column = (n: number) => rows().locator(`td:nth-child(${n})`).allInnerTexts();
  const settled = () => page.waitForFunction(() => document.getElementById('log')!.dataset.state === 'ready');
  const apiFirst = async (query: Record<string, string> = {}) =>
    (await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs`).query(query).set(ws.admin.auth).expect(200)).body
      .items as { actionName: string; resourceName: string; occurredAt: string }[];

  it('signs in with a token and shows the newest entry first, in the browser timezone', async () => {
    await page.goto(`${base}/settings/audit-logs`);
    await page.fill('#token', ws.admin.token);
    await page.click('#sign-in-form button[type=submit]');
    await rows().first().waitFor();
    await settled();
    const [newest] = await apiFirst();
    expect((await column(2))[0]).toBe(newest.actionName);
    expect((await column(3))[0]).toBe(newest.resourceName);
    const expected = new Intl.DateTimeFormat('en-US', {
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: 'numeric',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'short',
      timeZone: TIMEZONE,
    }).format(new Date(newest.occurredAt));
    expect((await column(1))[0]).toBe(expected);
    expect((await column(1))[0]).toMatch(/E[SD]T/);
    await expect(page.textContent('#zone')).resolves.toContain(TIMEZONE);
    mkdirSync(join(__dirname, '../docs'), { recursive: true });
    await page.screenshot({ path: join(__dirname, '../docs/audit-logs.png') });
  });

  it('filters by type, user, name and date, in combination, and reflects them in the URL', async () => {
    await page.selectOption('#f-type', ['segment']);
    await settled();
    expect(new Set(await column(2))).toEqual(new Set(['Segment created', 'Segment updated']));
    expect(page.url()).toContain('resourceType=segment');

    await page.selectOption('#f-type', []);
    await page.selectOption('#f-user', [ws.member.id]);
    await settled();
    const users = await column(4);
    expect(users.length).toBeGreaterThanOrEqual(4);
    expect(new Set(users).size).toBe(1);

    await page.selectOption('#f-type', ['segment']);
    await page.fill('#f-name', 'high-VALUE');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('resourceName') === 'high-VALUE');
    await settled();
    expect(await column(3)).toEqual(['High-value customers', 'High-value customers']);

    await page.fill('#f-from', '2999-01-01T00:00:00');
    await page.dispatchEvent('#f-from', 'change');
    await settled();
    await expect(page.textContent('#status')).resolves.toBe('No entries match these filters.');
    expect(new URL(page.url()).searchParams.get('from')).toBe(new Date('2999-01-01T05:00:00Z').toISOString());

    const shared = page.url();
    await page.reload();
    await settled();
    await expect(page.inputValue('#f-name')).resolves.toBe('high-VALUE');
    expect(page.url()).toBe(shared);

    await page.click('#clear');
    await settled();
    expect(await rows().count()).toBe((await apiFirst({ limit: '200' })).length);
  });

  it('opens the detail of an entry with its field-level diff, redacted values shown as such', async () => {
    await page
      .getByRole('row', { name: /Segment updated/ })
      .first()
      .click();
    await expect(page.textContent('#detail-changes')).resolves.toContain('definition.rules[0].value');
    await expect(page.locator('#detail-changes .before').first().textContent()).resolves.toBe('100');
    await expect(page.locator('#detail-changes .after').first().textContent()).resolves.toBe('250');
    await expect(page.textContent('#detail-meta')).resolves.toMatch(/Request id/);
    await page.keyboard.press('Escape');
    const updated = page.getByRole('row', { name: /Source updated Billing DB/ });
    await updated.focus();
    await page.keyboard.press('Enter');
    await expect(page.textContent('#detail-changes')).resolves.toContain('[REDACTED] secret');
    await page.screenshot({ path: join(__dirname, '../docs/audit-logs-detail.png') });
    await page.keyboard.press('Escape');
  });

  it('loads more with the cursor', async () => {
    const admin = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    for (let i = 0; i < 40; i++) await admin.create('sources', { name: `Lake ${i}` });
    await page.reload();
    await settled();
    expect(await rows().count()).toBe(50);
    const total = (await apiFirst({ limit: '200' })).length;
    expect(total).toBeGreaterThan(50);
    await page.click('#more');
    await settled();
    expect(await rows().count()).toBe(total);
    await expect(page.isHidden('#more')).resolves.toBe(true);
  });

  it('exports exactly the filtered view as CSV', async () => {
    await page.selectOption('#f-type', ['segment']);
    await settled();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
    const csv = readFileSync(await download.path(), 'utf8')
      .trim()
      .split('\n');
    expect(csv[0]).toBe(
      'occurredAt,actionName,resourceType,resourceName,userName,userEmail,resourceId,requestId,id,action,actorKind,actorName,changes',
    );
    const expected = await apiFirst({ resourceType: 'segment' });
    expect(csv.slice(1).map((line) => line.split(',')[1])).toEqual(expected.map((e) => e.actionName));
    expect(download.suggestedFilename()).toMatch(/^audit-log_.*\.csv$/);
  });

  it('tells a member that the page is for admins only, and signs out', async () => {
    await page.click('#sign-out');
    await page.fill('#token', ws.member.token);
    await page.click('#sign-in-form button[type=submit]');
    await page.locator('#denied').waitFor();
    await expect(page.textContent('#denied h1')).resolves.toContain('admins only');
    await page.click('#sign-out');
    await page.fill('#token', 'alog_not-a-real-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('sign-in-error')!.textContent.length > 0);
    await expect(page.textContent('#sign-in-error')).resolves.toMatch(/unknown or was revoked/);
  });
});

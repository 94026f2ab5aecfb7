/// <reference lib="dom" />
import { mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { runAsSystem } from '../src/request-context/run-with-actor';
import { ResourceFactory, type ResourceJson } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';
import { axeViolations, BrowserPages, chromiumAvailable, launchChromium, localFormat } from './web-browser';

const TIMEZONE = 'America/New_York';
const KOLKATA = 'Asia/Kolkata';
const DOCS = join(__dirname, '../docs');
const available = chromiumAvailable();

type Entry = {
  id: string;
  action: string;
  actionName: string;
  resourceId: string;
  resourceName: string;
  occurredAt: string;
  changes: { field: string; before?: unknown; after?: unknown }[];
};

/** The Audit Logs page in real Chromium, as an admin in New York and Kolkata, on a phone, and as a member. */
(available ? describe : describe.skip)('The Audit Logs page', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let base: string;
  let browser: Browser;
  let page: Page;
  let pages: BrowserPages;
  const newPage = (timezoneId: string, width: number, height?: number) => pages.open(timezoneId, width, height);
  let churn: ResourceJson;
  let restorable: ResourceJson;
  let conflicted: ResourceJson;

  beforeAll(async () => {
    t = await createTestApp();
    await t.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${((t.app.getHttpServer() as Server).address() as AddressInfo).port}`;
    ws = await createWorkspace(t.app, 'Acme');
    const admin = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    const member = new ResourceFactory(t.http, ws.workspaceId, ws.member.auth);
    const patch = (as: 'admin' | 'member', path: 'sources' | 'segments', id: string, body: object) =>
      t.http
        .patch((as === 'admin' ? admin : member).url(path, id))
        .set(ws[as].auth)
        .send(body)
        .expect(200);
    const warehouses: ResourceJson[] = [];
    for (let i = 0; i < 14; i++) warehouses.push(await admin.create('sources', { name: `Warehouse ${i}` }));
    // A system job changes a source: the log shows it as "System: nightly-import".
    const prisma = t.prisma;
    await runAsSystem('nightly-import', () =>
      prisma.source.update({ where: { id: warehouses[0].id }, data: { type: 'reimported' } }),
    );
    const segment = await member.create('segments', { name: 'High-value customers' });
    await patch('member', 'segments', segment.id, {
      definition: { operator: 'and', rules: [{ field: 'ltv', op: 'gt', value: 250 }] },
    });
    const billing = await admin.create('sources', {
      name: 'Billing DB',
      config: { host: 'db.acme.test', password: 'pw-source-secret', regions: ['GB', 'DE'] },
    });
    await patch('admin', 'sources', billing.id, {
      config: { host: 'db.acme.test', password: 'rotated', regions: ['DE', 'US'] },
    });
    // One resource under three names: created by the admin, renamed twice by the member.
    churn = await admin.create('segments', { name: 'Churn risk' });
    await patch('member', 'segments', churn.id, { name: 'Churn risk v2' });
    await patch('member', 'segments', churn.id, { name: 'Churn risk 2026' });
    restorable = await admin.create('sources', {
      name: 'Restorable',
      config: { host: 'old.acme.test', password: 'first' },
    });
    await patch('admin', 'sources', restorable.id, { config: { host: 'new.acme.test', password: 'second' } });
    conflicted = await admin.create('sources', { name: 'Conflicted', type: 'pg' });
    await patch('admin', 'sources', conflicted.id, { type: 'mysql' });
    await patch('member', 'sources', conflicted.id, { type: 'sqlite' });
    browser = await launchChromium();
    pages = new BrowserPages(browser);
    page = await newPage(TIMEZONE, 1280);
  });
  afterAll(async () => {
    expect(pages?.errors ?? []).toEqual([]);
    await pages?.close();
    await browser?.close();
    await t.close();
  });

  const rows = (p = page) => p.locator('#rows tr');
  const column = (n: number, p = page) => rows(p).locator(`td:nth-child(${n})`).allInnerTexts();
  const ready = (p = page) => p.waitForFunction(() => document.getElementById('log')!.dataset.state === 'ready');
  const query = (p = page) => new URL(p.url()).searchParams;
  const apiFirst = async (q: Record<string, string> = {}) =>
    (await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs`).query(q).set(ws.admin.auth).expect(200)).body
      .items as Entry[];
  /** Each filter change should cost one request to the list. */
  const listRequests = (p: Page) => {
    const seen: string[] = [];
    p.on('request', (r) => {
      if (/\/audit-logs\?/.test(r.url())) seen.push(r.url());
    });
    return seen;
  };
  const signIn = async (p: Page, token = ws.admin.token, path = '/settings/audit-logs') => {
    await p.goto(`${base}${path}`);
    await p.fill('#token', token);
    await p.click('#sign-in-form button[type=submit]');
  };
  const pick = async (multi: string, label: string | RegExp, p = page) => {
    const details = p.locator(`#${multi} details`);
    if (!(await details.evaluate((d: HTMLDetailsElement) => d.open))) await details.locator('summary').click();
    await details.getByRole('checkbox', { name: label }).click();
    await p.keyboard.press('Escape');
  };
  const chips = (p = page) => p.locator('#chips li span').allInnerTexts();

  it('signs in with a token and shows the newest entry first, in the browser timezone, with 0 axe violations', async () => {
    await signIn(page);
    await rows().first().waitFor();
    await ready();
    const [newest] = await apiFirst();
    expect((await column(2))[0]).toBe(newest.actionName);
    expect((await column(3))[0]).toBe(newest.resourceName);
    expect((await column(1))[0]).toBe(localFormat(newest.occurredAt, TIMEZONE));
    expect((await column(1))[0]).toMatch(/E[SD]T/);
    await expect(page.textContent('#zone')).resolves.toBe(
      `Times are shown in your timezone, ${TIMEZONE} (Eastern Time).`,
    );
    expect(await axeViolations(page)).toEqual([]);
    mkdirSync(DOCS, { recursive: true });
    await page.screenshot({ path: join(DOCS, 'audit-logs.png') });
  });

  it('shows who acted: a user, or "System: <job>"', async () => {
    const system = page.getByRole('row', { name: /Source updated Warehouse 0/ });
    await expect(system.locator('td:nth-child(4)').innerText()).resolves.toBe('System: nightly-import');
  });

  it('names the table, keeps its header in view, and gives its rows one Tab stop with arrow keys', async () => {
    await expect(page.getAttribute('#table', 'aria-label')).resolves.toBe('Audit log entries');
    await expect(
      page
        .locator('#table th')
        .first()
        .evaluate((th) => getComputedStyle(th).position),
    ).resolves.toBe('sticky');
    expect(await page.locator('#rows tr[tabindex="0"]').count()).toBe(1);
    await page.locator('#rows tr').first().focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    const focused = () =>
      page.evaluate(() => Array.from(document.getElementById('rows')!.children).indexOf(document.activeElement!));
    await expect(focused()).resolves.toBe(2);
    await page.keyboard.press('ArrowUp');
    await expect(focused()).resolves.toBe(1);
    await page.keyboard.press('End');
    await expect(focused()).resolves.toBe((await rows().count()) - 1);
    await page.keyboard.press('Home');
    await expect(focused()).resolves.toBe(0);
    expect(await page.locator('#rows tr[tabindex="0"]').count()).toBe(1);
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement!.closest('#rows'))).resolves.toBeNull();
    // The focus ring is at least 3:1 against white, and so are the inputs' borders.
    const contrast = await page.evaluate(() => {
      const rgb = (c: string) => c.match(/\d+/g)!.slice(0, 3).map(Number);
      const lum = (c: string) => {
        const [r, g, b] = rgb(c).map((v) => {
          const s = v / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const ratio = (c: string) => 1.05 / (lum(c) + 0.05);
      const row = document.querySelector<HTMLElement>('#rows tr')!;
      row.focus();
      return {
        ring: ratio(getComputedStyle(row).outlineColor),
        border: ratio(getComputedStyle(document.getElementById('f-name')!).borderTopColor),
      };
    });
    expect(contrast.ring).toBeGreaterThanOrEqual(3);
    expect(contrast.border).toBeGreaterThanOrEqual(3);
  });

  it('offers the resource types and actions that the API lists, not a list of its own', async () => {
    const choices = (
      await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs/filters`).set(ws.admin.auth).expect(200)
    ).body as { resourceTypes: string[]; actions: string[] };
    const values = (multi: string) =>
      page
        .locator(`#${multi} input[type=checkbox]`)
        .evaluateAll((boxes: HTMLInputElement[]) => boxes.map((b) => b.value));
    await expect(values('f-type')).resolves.toEqual(choices.resourceTypes);
    await expect(values('f-action')).resolves.toEqual(choices.actions);
  });

  it('filters with checkbox multi-selects by plain click, summarises them as removable chips, and Back undoes each change', async () => {
    const requests = listRequests(page);
    await page.click('#f-user summary');
    await page.fill('#f-user input[type=search]', 'member');
    await expect(page.isHidden('#f-user label:has-text("Admin 1")')).resolves.toBe(true);
    await page.fill('#f-user input[type=search]', '');
    await pick('f-user', /^Admin 1/);
    await ready();
    await pick('f-user', /^Member 1/);
    await ready();
    expect(query().get('userId')!.split(',').sort()).toEqual([ws.admin.id, ws.member.id].sort());
    await pick('f-type', 'Segment');
    await ready();
    await pick('f-action', 'Updated');
    await ready();
    expect(requests).toHaveLength(4);
    expect(await chips()).toEqual([
      expect.stringMatching(/^User: Admin/),
      expect.stringMatching(/^User: Member/),
      'Type: Segment',
      'Action: Updated',
    ]);
    expect(new Set(await column(2))).toEqual(new Set(['Segment updated']));
    await expect(page.textContent('#f-action summary')).resolves.toContain('Updated');
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(DOCS, 'audit-logs-filtered.png') });

    await page.getByRole('button', { name: 'Remove filter Action: Updated' }).click();
    await ready();
    expect(query().get('action')).toBeNull();
    expect(new Set(await column(2))).toEqual(new Set(['Segment created', 'Segment updated']));

    await page.goBack();
    await ready();
    expect(query().get('action')).toBe('updated');
    await expect(page.locator('#f-action input[value=updated]').isChecked()).resolves.toBe(true);
    await page.goBack();
    await ready();
    expect(query().get('action')).toBeNull();
    expect(query().get('resourceType')).toBe('segment');

    // Typing is debounced: one request for the whole word.
    requests.length = 0;
    await page.locator('#f-name').pressSequentially('high-VALUE', { delay: 30 });
    await page.waitForFunction(() => new URL(location.href).searchParams.get('resourceName') === 'high-VALUE');
    await ready();
    expect(requests).toHaveLength(1);
    expect(await column(3)).toEqual(['High-value customers', 'High-value customers']);
    const shared = page.url();
    await page.reload();
    await ready();
    await expect(page.inputValue('#f-name')).resolves.toBe('high-VALUE');
    expect(page.url()).toBe(shared);

    await page.click('#clear');
    await ready();
    expect(await chips()).toEqual([]);
    expect(await rows().count()).toBe(Math.min(50, (await apiFirst({ limit: '200' })).length));
  });

  it('offers date presets and a custom range by day whose end day is included, with errors in the user’s terms', async () => {
    await page.selectOption('#f-range', '24h');
    await ready();
    expect(query().get('range')).toBe('24h');
    expect(await chips()).toEqual(['Last 24 hours']);
    const all = (await apiFirst({ limit: '200' })).length;
    expect(await rows().count()).toBe(Math.min(50, all));

    const [newest] = await apiFirst();
    const day = new Intl.DateTimeFormat('en-CA', { timeZone: TIMEZONE }).format(new Date(newest.occurredAt));
    await page.selectOption('#f-range', 'custom');
    await page.fill('#f-from-day', day);
    await page.fill('#f-to-day', day);
    await page.locator('#f-to-day').dispatchEvent('change');
    await ready();
    const from = query().get('from')!;
    const to = query().get('to')!;
    expect(localFormat(from, TIMEZONE)).toMatch(/12:00:00 AM E[SD]T$/);
    expect(localFormat(to, TIMEZONE)).toMatch(/12:00:00 AM E[SD]T$/);
    expect(new Date(to).getTime() - new Date(from).getTime()).toBeGreaterThanOrEqual(23 * 3_600_000);
    const expected = await apiFirst({ from, to, limit: '200' });
    expect(await rows().count()).toBe(Math.min(50, expected.length));
    expect((await chips())[0]).toMatch(/^Date from .* to .*\(included\)$/);

    // An end time includes its whole minute: the newest entry is shown with To = its own minute.
    const minute = new Intl.DateTimeFormat('en-GB', { timeZone: TIMEZONE, hour: '2-digit', minute: '2-digit' }).format(
      new Date(newest.occurredAt),
    );
    await page.fill('#f-to-time', minute);
    await page.locator('#f-to-time').dispatchEvent('change');
    await ready();
    await expect(rows().first().getAttribute('data-id')).resolves.toBe(newest.id);

    // From after To: the error sits at the field, in the days the user picked; nothing is requested.
    await page.fill('#f-to-time', '');
    await ready();
    const requests = listRequests(page);
    await page.fill('#f-from-day', '2026-12-20');
    await page.fill('#f-to-day', '2026-12-10');
    await page.locator('#f-to-day').dispatchEvent('change');
    await expect(page.textContent('#f-to-error')).resolves.toBe(
      'The end (Dec 10, 2026) is before the start (Dec 20, 2026).',
    );
    await expect(page.getAttribute('#f-to-day', 'aria-invalid')).resolves.toBe('true');
    expect(requests).toEqual([]);
    await page.fill('#f-from-day', '');
    await page.fill('#f-to-day', '');
    await ready();
    requests.length = 0;
    await page.fill('#f-from-time', '09:00');
    await page.locator('#f-from-time').dispatchEvent('change');
    await expect(page.textContent('#f-from-error')).resolves.toBe('Pick a day for this time.');
    expect(requests).toEqual([]);
    expect(await axeViolations(page)).toEqual([]);
    await page.click('#clear');
    await ready();
  });

  it('opens the detail of an entry with its diff, who acted, the creator and last editor, and a link to it', async () => {
    await page
      .getByRole('row', { name: /Segment updated High-value/ })
      .first()
      .click();
    await expect(page.textContent('#detail-changes')).resolves.toContain('definition.rules[0].value');
    await expect(page.locator('#detail-changes .before').first().textContent()).resolves.toBe('100');
    await expect(page.locator('#detail-changes .after').first().textContent()).resolves.toBe('250');
    await expect(page.textContent('#detail-meta')).resolves.toMatch(/Request id/);
    await expect(page.textContent('#detail-meta')).resolves.toMatch(/UTC \d{4}-\d\d-\d\dT/);
    await page.locator('#detail-owners dt').nth(1).waitFor();
    await expect(page.textContent('#detail-owners')).resolves.toMatch(
      /Created by\s*Member 1.*Last edited by\s*Member 1/s,
    );
    const id = query().get('entry')!;
    await expect(page.getAttribute('#entry-link', 'href')).resolves.toContain(`entry=${id}`);
    expect(await axeViolations(page)).toEqual([]);
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !new URL(location.href).searchParams.has('entry'));

    const updated = page.getByRole('row', { name: /Source updated Billing DB/ });
    await updated.focus();
    await page.keyboard.press('Enter');
    await expect(page.textContent('#detail-changes')).resolves.toContain('[REDACTED] secret');
    // A list of plain values reads as what was removed and added, not position by position.
    const regions = page.locator('#detail-changes tr', { hasText: 'config.regions' });
    await expect(regions.locator('.before').textContent()).resolves.toBe('removed GB');
    await expect(regions.locator('.after').textContent()).resolves.toBe('added US');
    await page.keyboard.press('Escape');

    // A creation shows its values in one column.
    const created = page.getByRole('row', { name: /Source created Billing DB/ });
    await created.focus();
    await page.keyboard.press('Enter');
    await expect(page.locator('#diff-before').evaluate((cell) => (cell as HTMLElement).hidden)).resolves.toBe(true);
    await expect(page.textContent('#diff-after')).resolves.toBe('Value');
    await expect(page.locator('#detail-changes tr').first().locator('td').count()).resolves.toBe(2);
    expect(await axeViolations(page)).toEqual([]);
    await page.keyboard.press('Escape');

    // ?entry= opens that entry's detail on load.
    await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&entry=${id}`);
    await page.locator('#detail[open]').waitFor();
    await expect(page.textContent('#detail-title')).resolves.toBe('Segment updated: High-value customers');
    await page.keyboard.press('Escape');
  });

  it('shows one resource’s whole history whatever its names were, as a removable chip, also from ?resourceId=', async () => {
    await page.getByRole('row', { name: /Segment updated Churn risk 2026/ }).click();
    await page.locator('#detail-owners dt').nth(1).waitFor();
    await expect(page.textContent('#detail-owners')).resolves.toMatch(
      /Created by\s*Admin 1.*Last edited by\s*Member 1/s,
    );
    await page.click('#history');
    await ready();
    expect(query().get('resourceId')).toBe(churn.id);
    expect(await column(3)).toEqual(['Churn risk 2026', 'Churn risk v2', 'Churn risk']);
    expect(await chips()).toEqual(['Resource: segment “Churn risk 2026”']);
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(DOCS, 'audit-logs-history.png') });

    await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&resourceId=${churn.id}`);
    await ready();
    await page.locator('#chips li').first().waitFor();
    expect(await chips()).toEqual(['Resource: segment “Churn risk 2026”']);
    expect(await rows().count()).toBe(3);
    await page.getByRole('button', { name: /Remove filter Resource/ }).click();
    await ready();
    expect(query().get('resourceId')).toBeNull();
    expect(await rows().count()).toBe(Math.min(50, (await apiFirst({ limit: '200' })).length));
  });

  it('restores an update after a confirmation showing the change reversed, listing the secrets it could not restore', async () => {
    await page.getByRole('row', { name: /Source updated Restorable/ }).click();
    await page.click('#restore');
    await expect(page.locator('#restore-changes tr').allInnerTexts()).resolves.toContain(
      'config.host\t"new.acme.test"\t"old.acme.test"',
    );
    await expect(page.textContent('#restore-summary')).resolves.toMatch(/go back to their values before this change/);
    await page.click('#restore-go');
    await expect(page.locator('#restore-result .ok').textContent()).resolves.toBe('Restored the source “Restorable”.');
    await expect(page.textContent('#restore-result')).resolves.toContain('config.password');
    const now = await t.http
      .get(`/api/workspaces/${ws.workspaceId}/sources/${restorable.id}`)
      .set(ws.admin.auth)
      .expect(200);
    expect((now.body as ResourceJson).config).toEqual({ host: 'old.acme.test', password: '********' });
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(DOCS, 'audit-logs-detail.png') });
    await page.keyboard.press('Escape');
    await ready();
    expect((await column(2))[0]).toBe('Source restored');
  });

  it('explains a refused restore (409) and offers none for a creation', async () => {
    const [first] = await apiFirst({ resourceId: conflicted.id, action: 'updated' }).then((e) => e.slice(-1));
    await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&entry=${first.id}`);
    await page.locator('#detail[open]').waitFor();
    await page.click('#restore');
    await page.click('#restore-go');
    await expect(page.locator('#restore-result .error').textContent()).resolves.toMatch(/^Not restored: .*type/);
    await page.keyboard.press('Escape');
    const [created] = await apiFirst({ resourceId: conflicted.id, action: 'created' });
    await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&entry=${created.id}`);
    await page.locator('#detail[open]').waitFor();
    await expect(page.isHidden('#restore')).resolves.toBe(true);
    await expect(page.textContent('#restore-note')).resolves.toMatch(/deleting the resource/);
    await page.keyboard.press('Escape');
  });

  it('names the resources a diff refers to, a deleted one as “(deleted)”, in one request, with their ids for hover and screen readers', async () => {
    const admin = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    const orders = await admin.create('models', { name: 'Orders model' });
    const doomed = await admin.create('models', { name: 'Doomed model' });
    const buyers = await admin.create('segments', { name: 'Buyers', modelId: doomed.id });
    await t.http.patch(admin.url('segments', buyers.id)).set(ws.admin.auth).send({ modelId: orders.id }).expect(200);
    await t.http.delete(admin.url('models', doomed.id)).set(ws.admin.auth).expect(204);
    const [alpha, beta, gamma] = [
      await admin.create('segments', { name: 'Alpha', modelId: orders.id }),
      await admin.create('segments', { name: 'Beta', modelId: orders.id }),
      await admin.create('segments', { name: 'Gamma', modelId: orders.id }),
    ];
    const braze = await admin.create('destinations', { name: 'Braze EU', segmentIds: [alpha.id, beta.id] });
    await t.http
      .patch(admin.url('destinations', braze.id))
      .set(ws.admin.auth)
      .send({ segmentIds: [beta.id, gamma.id] })
      .expect(200);
    const lookups: string[] = [];
    page.on('request', (r) => {
      if (/\/resources\?id=|\/audit-logs\?resourceId=/.test(r.url())) lookups.push(r.url());
    });

    const [moved] = await apiFirst({ resourceId: buyers.id, action: 'updated' });
    await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&entry=${moved.id}`);
    await page.locator('#detail[open]').waitFor();
    const modelRow = page.locator('#detail-changes tr', { hasText: 'modelId' });
    await modelRow.locator('a.ref').nth(1).waitFor();
    await expect(modelRow.locator('.before').innerText()).resolves.toBe('Doomed model (deleted)');
    await expect(modelRow.locator('.after').innerText()).resolves.toBe('Orders model');
    const ordersLink = modelRow.locator('.after a');
    await expect(ordersLink.getAttribute('title')).resolves.toBe(`Model ${orders.id}`);
    await expect(page.getByRole('link', { name: `Orders model (model ${orders.id})` }).count()).resolves.toBe(1);
    await expect(modelRow.locator('.before a').getAttribute('title')).resolves.toBe(`Model ${doomed.id}, deleted`);
    // One request for the live names, one for the deleted model's last name.
    expect(lookups.filter((u) => u.includes('/resources?id='))).toHaveLength(1);
    expect(lookups.filter((u) => u.includes(`resourceId=${doomed.id}`))).toHaveLength(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(DOCS, 'audit-logs-references.png') });
    await page.keyboard.press('Escape');

    const [changed] = await apiFirst({ resourceId: braze.id, action: 'updated' });
    await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&entry=${changed.id}`);
    await page.locator('#detail[open]').waitFor();
    const segments = page.locator('#detail-changes tr', { hasText: 'segmentIds' });
    await segments.locator('a.ref').nth(1).waitFor();
    await expect(segments.locator('.before').innerText()).resolves.toBe('removed Alpha');
    await expect(segments.locator('.after').innerText()).resolves.toBe('added Gamma');
    await page.keyboard.press('Escape');
    const [created] = await apiFirst({ resourceId: braze.id, action: 'created' });
    await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&entry=${created.id}`);
    await page.locator('#detail[open]').waitFor();
    const initial = page.locator('#detail-changes tr', { hasText: 'segmentIds' });
    await initial.locator('a.ref').nth(1).waitFor();
    await expect(initial.locator('td').allInnerTexts()).resolves.toEqual(['segmentIds', 'Alpha, Beta']);
    expect(await axeViolations(page)).toEqual([]);

    // Names are remembered: reopening the entry asks for none of them again.
    lookups.length = 0;
    await page.keyboard.press('Escape');
    await page.getByRole('row', { name: /Destination created Braze EU/ }).click();
    await initial.locator('a.ref').nth(1).waitFor();
    expect(lookups.filter((u) => u.includes('/resources?id='))).toEqual([]);
    await page.keyboard.press('Escape');
    // A name opens that resource's history.
    await page.getByRole('row', { name: /Segment updated Buyers/ }).click();
    await ordersLink.click();
    await ready();
    expect(query().get('resourceId')).toBe(orders.id);
    expect(await chips()).toEqual(['Resource: model “Orders model”']);
  });

  it('links an entry to every entry of its request, as a removable chip kept in the address, with the rows grouped', async () => {
    const admin = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    const swept = [
      await admin.create('sources', { name: 'Sweep 1' }),
      await admin.create('sources', { name: 'Sweep 2' }),
      await admin.create('sources', { name: 'Sweep 3' }),
    ];
    const bulk = await t.http
      .post(`/api/workspaces/${ws.workspaceId}/sources/bulk-delete`)
      .set(ws.admin.auth)
      .send({ ids: swept.map((r) => r.id) })
      .expect(200);
    const requestId = bulk.headers['x-request-id'];
    await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}`);
    await ready();
    // Consecutive rows of one request are drawn as a group.
    const sweptRows = page.getByRole('row', { name: /Source deleted Sweep/ });
    await expect(sweptRows.evaluateAll((r: HTMLElement[]) => r.map((tr) => tr.className))).resolves.toEqual([
      'grouped',
      'grouped',
      'grouped',
    ]);
    await page.getByRole('row', { name: /Source deleted Sweep 2/ }).click();
    const link = page.locator('#request-entries');
    await link.waitFor();
    await expect(link.textContent()).resolves.toBe('3 entries from this request');
    expect(await axeViolations(page)).toEqual([]);
    await link.click();
    await ready();
    expect(query().get('requestId')).toBe(requestId);
    expect(await chips()).toEqual([`Request: ${requestId}`]);
    expect((await column(3)).sort()).toEqual(['Sweep 1', 'Sweep 2', 'Sweep 3']);
    expect(await axeViolations(page)).toEqual([]);
    await page.reload();
    await ready();
    expect(await rows().count()).toBe(3);
    await page.goBack();
    await ready();
    expect(query().get('requestId')).toBeNull();
    expect(await rows().count()).toBeGreaterThan(3);
    await page.goForward();
    await ready();
    expect(await rows().count()).toBe(3);
    await page.getByRole('button', { name: `Remove filter Request: ${requestId}` }).click();
    await ready();
    expect(query().get('requestId')).toBeNull();
    expect(await chips()).toEqual([]);
    // A lone entry's request offers no such link.
    await page.getByRole('row', { name: /Source created Sweep 3/ }).click();
    await page.locator('#request-entries[data-count="1"]').waitFor({ state: 'attached' });
    await expect(link.isHidden()).resolves.toBe(true);
    await page.keyboard.press('Escape');
  });

  it('lists every resource with its creator and last editor in a Resources tab, filtered, each opening its history', async () => {
    await page.click('#tab-resources');
    await page.waitForFunction(() => document.getElementById('resources')!.dataset.state === 'ready');
    const resourceRows = page.locator('#r-rows tr');
    const churnRow = resourceRows.filter({ hasText: 'Churn risk 2026' });
    await expect(churnRow.locator('td').allInnerTexts()).resolves.toEqual([
      'Segment',
      'Churn risk 2026',
      'Admin 1',
      'Member 1',
      expect.stringMatching(/E[SD]T$/),
    ]);
    const settledResources = () =>
      page.waitForFunction(() => document.getElementById('resources')!.dataset.state === 'ready');
    await page.check('#r-others');
    await settledResources();
    expect(query().get('rOthers')).toBe('1');
    const names = await resourceRows.locator('td:nth-child(2)').allInnerTexts();
    expect(names).toContain('Churn risk 2026');
    expect(names).toContain('Conflicted');
    expect(names).not.toContain('Billing DB');
    await pick('r-created', /^Admin 1/);
    await settledResources();
    const creators = await resourceRows.locator('td:nth-child(3)').allInnerTexts();
    expect(creators.length).toBeGreaterThanOrEqual(2);
    expect(new Set(creators)).toEqual(new Set(['Admin 1']));
    await pick('r-updated', /^Member 1/);
    await settledResources();
    expect(new Set(await resourceRows.locator('td:nth-child(4)').allInnerTexts())).toEqual(new Set(['Member 1']));
    await pick('r-type', 'Segment');
    await settledResources();
    expect(await resourceRows.locator('td:nth-child(2)').allInnerTexts()).toEqual(['Churn risk 2026']);
    await page.fill('#r-name', 'no such name');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('rName') === 'no such name');
    await settledResources();
    expect(await resourceRows.count()).toBe(0);
    await page.fill('#r-name', 'CHURN');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('rName') === 'CHURN');
    await settledResources();
    expect(await resourceRows.locator('td:nth-child(2)').allInnerTexts()).toEqual(['Churn risk 2026']);
    const resourceChips = () => page.locator('#r-chips li span').allInnerTexts();
    expect(await resourceChips()).toEqual([
      'Type: Segment',
      'Creator: Admin 1',
      'Last editor: Member 1',
      'Name contains “CHURN”',
      'Edited by someone other than its creator',
    ]);
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(DOCS, 'resources.png') });
    await page.getByRole('link', { name: 'Churn risk 2026: view its history' }).click();
    await ready();
    expect(query().get('resourceId')).toBe(churn.id);
    expect(await column(3)).toEqual(['Churn risk 2026', 'Churn risk v2', 'Churn risk']);
    await page.goBack();
    await settledResources();
    expect(await resourceRows.count()).toBe(1);
    // A chip removes its filter as one history entry; "Clear all filters" removes them all.
    await page.getByRole('button', { name: 'Remove filter Type: Segment' }).click();
    await settledResources();
    expect(query().get('rType')).toBeNull();
    await expect(page.locator('#r-type input[value=segment]').isChecked()).resolves.toBe(false);
    expect(await resourceChips()).not.toContain('Type: Segment');
    await page.getByRole('button', { name: 'Remove filter Edited by someone other than its creator' }).click();
    await settledResources();
    expect(query().get('rOthers')).toBeNull();
    await page.goBack();
    await settledResources();
    expect(query().get('rOthers')).toBe('1');
    expect(await resourceChips()).toContain('Edited by someone other than its creator');
    await page.click('#r-clear');
    await settledResources();
    expect(await resourceChips()).toEqual([]);
    expect([...query().keys()].sort()).toEqual(['tab', 'workspace']);
    expect(await resourceRows.count()).toBe(
      Math.min(
        50,
        (await t.http.get(`/api/workspaces/${ws.workspaceId}/resources?limit=200`).set(ws.admin.auth)).body.items
          .length,
      ),
    );
    await page.click('#tab-log');
    await ready();
  });

  it('exports exactly the filtered view as CSV or NDJSON from the Export menu', async () => {
    await page.click('#clear');
    await ready();
    await pick('f-type', 'Segment');
    await ready();
    await page.click('#export-menu summary');
    const [csvFile] = await Promise.all([page.waitForEvent('download'), page.click('#export-menu [data-format=csv]')]);
    const csv = readFileSync(await csvFile.path(), 'utf8')
      .trim()
      .split('\n');
    expect(csv[0]).toBe(
      'occurredAt,actionName,resourceType,resourceName,userName,userEmail,resourceId,requestId,id,action,actorKind,actorName,changes',
    );
    expect(csvFile.suggestedFilename()).toBe('acme-audit-log-all-time.csv');
    const expected = await apiFirst({ resourceType: 'segment', limit: '200' });
    await page.click('#export-menu summary');
    const [ndjsonFile] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#export-menu [data-format=ndjson]'),
    ]);
    expect(ndjsonFile.suggestedFilename()).toBe('acme-audit-log-all-time.ndjson');
    const lines = readFileSync(await ndjsonFile.path(), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Entry);
    expect(lines.map((e) => e.id)).toEqual(expected.map((e) => e.id));
    expect(csv).toHaveLength(expected.length + 1);

    // The file says the range in the user's words and days (New York's, not UTC's).
    const download = async () => {
      await page.click('#export-menu summary');
      const [file] = await Promise.all([page.waitForEvent('download'), page.click('#export-menu [data-format=csv]')]);
      return file.suggestedFilename();
    };
    await page.selectOption('#f-range', '7d');
    await ready();
    await expect(download()).resolves.toBe('acme-audit-log-last-7-days.csv');
    await page.selectOption('#f-range', 'custom');
    await page.fill('#f-from-day', '2026-11-01');
    await page.fill('#f-to-day', '2026-11-26');
    await page.locator('#f-to-day').dispatchEvent('change');
    await ready();
    expect(query().get('to')).toBe('2026-11-27T05:00:00.000Z');
    await expect(download()).resolves.toBe('acme-audit-log-2026-11-01-to-2026-11-26.csv');
    await page.fill('#f-from-day', '');
    await page.locator('#f-from-day').dispatchEvent('change');
    await ready();
    await expect(download()).resolves.toBe('acme-audit-log-until-2026-11-26.csv');
    await page.click('#clear');
    await ready();
  });

  it('says when to retry after a 429, and retries on request', async () => {
    await page.route(/\/api\/workspaces\/[^/]+\/audit-logs\?/, (route) =>
      route.fulfill({
        status: 429,
        headers: { 'Retry-After': '42', 'Content-Type': 'application/json' },
        body: JSON.stringify({ statusCode: 429, message: 'ThrottlerException: Too Many Requests' }),
      }),
    );
    await page.reload();
    await page.locator('#retry-box').waitFor();
    await expect(page.textContent('#retry-text')).resolves.toMatch(/Try again in 42 seconds \(at .+\)\./);
    await page.unroute(/\/api\/workspaces\/[^/]+\/audit-logs\?/);
    await page.click('#retry');
    await rows().first().waitFor();
    await expect(page.isHidden('#retry-box')).resolves.toBe(true);
  });

  it('loads more with the cursor', async () => {
    const admin = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    for (let i = 0; i < 40; i++) await admin.create('sources', { name: `Lake ${i}` });
    await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}`);
    await ready();
    expect(await rows().count()).toBe(50);
    const total = (await apiFirst({ limit: '200' })).length;
    expect(total).toBeGreaterThan(50);
    for (let shown = 50; shown < total; shown += 50) {
      await page.click('#more');
      await ready();
    }
    expect(await rows().count()).toBe(total);
    await expect(page.isHidden('#more')).resolves.toBe(true);
  });

  it('in a +05:30 timezone, shows times and takes custom days in that zone', async () => {
    const kolkata = await newPage(KOLKATA, 1280);
    await signIn(kolkata);
    await rows(kolkata).first().waitFor();
    await ready(kolkata);
    const [newest] = await apiFirst();
    expect((await column(1, kolkata))[0]).toBe(localFormat(newest.occurredAt, KOLKATA));
    expect((await column(1, kolkata))[0]).toMatch(/GMT\+5:30$/);
    await expect(kolkata.textContent('#zone')).resolves.toBe(
      'Times are shown in your timezone, Asia/Kolkata (India Standard Time).',
    );
    await kolkata.selectOption('#f-range', 'custom');
    await kolkata.fill('#f-from-day', '2026-03-01');
    await kolkata.fill('#f-to-day', '2026-03-02');
    await kolkata.fill('#f-to-time', '06:19');
    await kolkata.locator('#f-to-time').dispatchEvent('change');
    await ready(kolkata);
    expect(query(kolkata).get('from')).toBe('2026-02-28T18:30:00.000Z');
    expect(query(kolkata).get('to')).toBe('2026-03-02T00:50:00.000Z');
    expect(await chips(kolkata)).toEqual(['Date from Mar 1, 2026 to Mar 2, 2026 06:19']);
    await kolkata.reload();
    await ready(kolkata);
    await expect(kolkata.inputValue('#f-to-time')).resolves.toBe('06:19');
    await expect(kolkata.inputValue('#f-from-day')).resolves.toBe('2026-03-01');
    expect(await axeViolations(kolkata)).toEqual([]);
  });

  it('on a 390 px phone: no horizontal scroll, rows as cards, filters behind a button', async () => {
    const phone = await newPage(TIMEZONE, 390, 844);
    await signIn(phone);
    await rows(phone).first().waitFor();
    await ready(phone);
    const width = () => phone.evaluate(() => document.documentElement.scrollWidth);
    await expect(width()).resolves.toBeLessThanOrEqual(390);
    await expect(phone.isHidden('#filters')).resolves.toBe(true);
    await expect(
      rows(phone)
        .first()
        .evaluate((tr) => getComputedStyle(tr).display),
    ).resolves.toBe('block');
    await expect(
      rows(phone)
        .first()
        .locator('td')
        .first()
        .evaluate((td) => getComputedStyle(td, '::before').content),
    ).resolves.toBe('"Date and time: "');
    expect(await axeViolations(phone)).toEqual([]);
    await phone.screenshot({ path: join(DOCS, 'audit-logs-phone.png') });
    await phone.click('#toggle-filters');
    await expect(phone.isVisible('#filters')).resolves.toBe(true);
    await expect(phone.getAttribute('#toggle-filters', 'aria-expanded')).resolves.toBe('true');
    await pick('f-type', 'Segment', phone);
    await ready(phone);
    await expect(width()).resolves.toBeLessThanOrEqual(390);
    await rows(phone).first().click();
    await phone.locator('#detail[open]').waitFor();
    await expect(width()).resolves.toBeLessThanOrEqual(390);
    expect(await axeViolations(phone)).toEqual([]);
    await phone.keyboard.press('Escape');
    await phone.click('#tab-resources');
    await phone.waitForFunction(() => document.getElementById('resources')!.dataset.state === 'ready');
    await expect(width()).resolves.toBeLessThanOrEqual(390);
    expect(await axeViolations(phone)).toEqual([]);
  });

  it('opens an entry taller than a phone’s screen at its title, the Close button a Tab away and apart from the diff', async () => {
    const [created] = await apiFirst({ resourceName: 'Billing DB', action: 'created' });
    const phone = await newPage(TIMEZONE, 390, 500);
    await signIn(phone, ws.admin.token, `/settings/audit-logs?workspace=${ws.workspaceId}&entry=${created.id}`);
    await phone.locator('#detail[open]').waitFor();
    await phone.locator('#detail-changes tr').first().waitFor();
    const dialog = phone.locator('#detail');
    await expect(dialog.evaluate((d) => d.scrollHeight > d.clientHeight)).resolves.toBe(true);
    await expect(dialog.evaluate((d) => d.scrollTop)).resolves.toBe(0);
    const title = await phone.locator('#detail-title').boundingBox();
    expect(title!.y).toBeGreaterThanOrEqual(0);
    await expect(phone.evaluate(() => document.activeElement!.id)).resolves.toBe('detail-title');
    // The Close button sits apart from the diff above it, not against its bottom border.
    const diff = await phone.locator('#detail table[aria-label="Changes"]').boundingBox();
    const close = await phone.locator('#detail form[method=dialog] button').boundingBox();
    expect(close!.y - (diff!.y + diff!.height)).toBeGreaterThanOrEqual(8);
    await phone.keyboard.press('Tab');
    await expect(phone.evaluate(() => document.activeElement!.id)).resolves.toBe('history');
    expect(await axeViolations(phone)).toEqual([]);
    await phone.keyboard.press('Escape');
    await expect(phone.locator('#detail').evaluate((d: HTMLDialogElement) => d.open)).resolves.toBe(false);
  });

  it('shows no rows of the previous filters while the dates are wrong, and says to correct them', async () => {
    const p = await newPage(TIMEZONE, 1280);
    await signIn(p);
    await rows(p).first().waitFor();
    await ready(p);
    await p.selectOption('#f-range', 'custom');
    await p.fill('#f-from-day', '2026-03-10');
    await p.locator('#f-from-day').dispatchEvent('change');
    await ready(p);
    await p.fill('#f-from-day', '');
    await p.locator('#f-from-day').dispatchEvent('change');
    await ready(p);
    expect(await rows(p).count()).toBeGreaterThan(0);
    await p.fill('#f-from-day', '2026-03-10');
    await p.fill('#f-to-day', '2026-03-01');
    await p.locator('#f-to-day').dispatchEvent('change');
    await expect(p.textContent('#f-to-error')).resolves.toBe(
      'The end (Mar 1, 2026) is before the start (Mar 10, 2026).',
    );
    await expect(p.textContent('#status')).resolves.toBe('Correct the dates to see entries.');
    expect(await rows(p).count()).toBe(0);
    await expect(p.isHidden('#more')).resolves.toBe(true);
    await p.fill('#f-to-day', '');
    await p.locator('#f-to-day').dispatchEvent('change');
    await ready(p);
    await expect(p.textContent('#status')).resolves.toMatch(/entries shown|No entries/);
  });

  it('opens ?entry=<id>, ?resourceId=<id> and ?tab= as the README says, without a workspace in the address', async () => {
    const [newest] = await apiFirst();
    const p = await newPage(TIMEZONE, 1280);
    await signIn(p, ws.admin.token, `/settings/audit-logs?entry=${newest.id}`);
    await p.locator('#detail[open]').waitFor();
    await expect(p.textContent('#detail-title')).resolves.toBe(`${newest.actionName}: ${newest.resourceName}`);
    expect(query(p).get('workspace')).toBe(ws.workspaceId);
    await p.keyboard.press('Escape');
    await p.goto(`${base}/settings/audit-logs?resourceId=${churn.id}`);
    await ready(p);
    expect(new Set(await column(3, p))).toEqual(new Set(['Churn risk', 'Churn risk v2', 'Churn risk 2026']));
    await p.goto(`${base}/?tab=members`);
    await p.waitForFunction(() => document.getElementById('members')!.dataset.state === 'ready');
    await expect(p.isVisible('#members')).resolves.toBe(true);
  });

  it('says when the service cannot be reached or the database is lost, offers Retry, and keeps the saved token', async () => {
    const p = await newPage(TIMEZONE, 1280);
    await signIn(p);
    await rows(p).first().waitFor();
    await ready(p);
    const list = /\/api\/workspaces\/[^/]+\/audit-logs\?/;
    const unavailable = {
      status: 503,
      headers: { 'Retry-After': '5', 'Content-Type': 'application/json' },
      body: JSON.stringify({
        statusCode: 503,
        message: 'The database is unavailable; nothing was changed. Retry shortly.',
        error: 'Service Unavailable',
      }),
    };
    // The server gone (connection refused): an explanation and Retry, not "Loading…" for ever.
    await p.route(list, (route) => route.abort('connectionrefused'));
    await p.selectOption('#f-range', '24h');
    await p.locator('#retry-box').waitFor();
    await expect(p.textContent('#retry-text')).resolves.toMatch(/cannot be reached/);
    // Announced, not only shown: the status above the table is emptied, so the reason is an alert.
    await expect(p.getByRole('alert').filter({ hasText: 'cannot be reached' }).count()).resolves.toBe(1);
    await expect(p.getAttribute('#log', 'aria-busy')).resolves.toBe('false');
    await expect(p.textContent('#status')).resolves.not.toContain('Loading');
    await p.unroute(list);
    await p.click('#retry');
    await ready(p);
    await rows(p).first().waitFor();
    await expect(p.isHidden('#retry-box')).resolves.toBe(true);
    // A lost database (503): the API's reason, and Retry.
    await p.route(list, (route) => route.fulfill(unavailable));
    await p.selectOption('#f-range', '7d');
    await p.locator('#retry-box').waitFor();
    await expect(p.textContent('#retry-text')).resolves.toContain('The database is unavailable');
    await p.unroute(list);
    await p.click('#retry');
    await ready(p);
    await rows(p).first().waitFor();
    // Opening the page while the database is lost does not forget the token: Sign in retries with it.
    await p.route(/\/api\/me$/, (route) => route.fulfill(unavailable));
    await p.reload();
    await p.locator('#sign-in').waitFor();
    await expect(p.textContent('#sign-in-error')).resolves.toContain('The database is unavailable');
    await expect(p.evaluate(() => localStorage.getItem('auditLog.token'))).resolves.toBe(ws.admin.token);
    await p.unroute(/\/api\/me$/);
    await p.click('#sign-in-form button[type=submit]');
    await rows(p).first().waitFor();
    // Members, unreachable: said so, not a blank tab.
    await p.route(/\/api\/workspaces\/[^/]+\/members$/, (route) => route.abort('connectionrefused'));
    await p.click('#tab-members');
    await p.waitForFunction(() => document.getElementById('members')!.dataset.state === 'ready');
    await expect(p.textContent('#m-status')).resolves.toMatch(/cannot be reached/);
    await p.unroute(/\/api\/workspaces\/[^/]+\/members$/);
  });

  it('says that a workspace has no resources yet, rather than that none match filters', async () => {
    const empty = await createWorkspace(t.app, 'Empty');
    const p = await newPage(TIMEZONE, 1280);
    await signIn(p, empty.admin.token);
    await rows(p).first().waitFor();
    await p.click('#tab-resources');
    await p.waitForFunction(() => document.getElementById('resources')!.dataset.state === 'ready');
    await expect(p.textContent('#r-status')).resolves.toBe('This workspace has no resources yet.');
    await p.fill('#r-name', 'nothing');
    await p.waitForFunction(() => /match/.test(document.getElementById('r-status')!.textContent));
    await expect(p.textContent('#r-status')).resolves.toBe('No resources match these filters.');
  });

  it('keeps a long name without spaces inside its column, the dates and actions on one line', async () => {
    const other = await createWorkspace(t.app, 'Long names');
    const p = await newPage(TIMEZONE, 1280);
    const name = `Customers_who_bought_${'x'.repeat(120)}`;
    await new ResourceFactory(t.http, other.workspaceId, other.admin.auth).create('segments', { name });
    await signIn(p, other.admin.token, `/settings/audit-logs?workspace=${other.workspaceId}&tab=resources`);
    await p.waitForFunction(() => document.getElementById('resources')!.dataset.state === 'ready');
    const fits = (table: string) =>
      p
        .locator(table)
        .evaluate((t: HTMLTableElement) => t.scrollWidth <= t.parentElement!.clientWidth && t.offsetWidth <= 1200);
    await expect(fits('#r-table')).resolves.toBe(true);
    const lines = (cell: string) =>
      p.locator(cell).evaluate((td) => {
        const range = document.createRange();
        range.selectNodeContents(td);
        return new Set(Array.from(range.getClientRects(), (r) => Math.round(r.bottom))).size;
      });
    await expect(lines('#r-rows tr:first-child td:last-child')).resolves.toBe(1);
    await p.click('#tab-log');
    await ready(p);
    await expect(column(3, p)).resolves.toContain(name);
    await expect(fits('#table')).resolves.toBe(true);
    await expect(lines('#rows tr:first-child td:first-child')).resolves.toBe(1);
    await expect(lines('#rows tr:first-child td:nth-child(2)')).resolves.toBe(1);
  });

  it('tells a member that the page is for admins only, and signs out', async () => {
    await page.click('#sign-out');
    await page.fill('#token', ws.member.token);
    await page.click('#sign-in-form button[type=submit]');
    await page.locator('#denied').waitFor();
    await expect(page.textContent('#denied h1')).resolves.toContain('admins only');
    expect(await axeViolations(page)).toEqual([]);
    await page.click('#sign-out');
    expect(await axeViolations(page)).toEqual([]);
    await page.fill('#token', 'alog_not-a-real-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('sign-in-error')!.textContent.length > 0);
    await expect(page.textContent('#sign-in-error')).resolves.toMatch(/unknown or was revoked/);
  });
});

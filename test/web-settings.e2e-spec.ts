/// <reference lib="dom" />
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';
import { axeViolations, BrowserPages, chromiumAvailable, launchChromium, localFormat } from './web-browser';

const TIMEZONE = 'America/New_York';
const KOLKATA = 'Asia/Kolkata';
const DOCS = join(__dirname, '../docs');
const available = chromiumAvailable();

type Member = { userId: string; name: string; email: string; role: string };
type Token = { id: string; label: string; createdAt: string; lastUsedAt: string | null };

/** Settings' Members and API tokens screens in real Chromium: as an admin, as a member, in +05:30, on a phone. */
(available ? describe : describe.skip)('Settings: Members and API tokens', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let base: string;
  let browser: Browser;
  let page: Page;
  let pages: BrowserPages;
  const newPage = (timezoneId: string, width: number, height?: number) => pages.open(timezoneId, width, height);

  beforeAll(async () => {
    t = await createTestApp();
    await t.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${((t.app.getHttpServer() as Server).address() as AddressInfo).port}`;
    ws = await createWorkspace(t.app, 'Acme');
    browser = await launchChromium();
    pages = new BrowserPages(browser, { clipboardOrigin: base });
    page = await newPage(TIMEZONE, 1280);
  });
  afterAll(async () => {
    expect(pages?.errors ?? []).toEqual([]);
    await pages?.close();
    await browser?.close();
    await t.close();
  });

  const signIn = async (p: Page, token: string, tab = 'members') => {
    await p.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&tab=${tab}`);
    await p.fill('#token', token);
    await p.click('#sign-in-form button[type=submit]');
    await settled(p, tab);
  };
  const settled = (p: Page, section: string) =>
    p.waitForFunction((id) => document.getElementById(id)!.dataset.state === 'ready', section);
  const members = async () =>
    (await t.http.get(`/api/workspaces/${ws.workspaceId}/members`).set(ws.admin.auth).expect(200)).body
      .items as Member[];
  const tokens = async (auth = ws.admin.auth) =>
    (await t.http.get('/api/me/tokens').set(auth).expect(200)).body.items as Token[];
  const memberRow = (name: string, p = page) => p.locator('#m-rows tr', { hasText: name });

  describe('Members (admins)', () => {
    it('lists the members with their roles, the signed-in admin marked "(you)"', async () => {
      await signIn(page, ws.admin.token);
      await expect(page.getAttribute('#tab-members', 'aria-current')).resolves.toBe('page');
      const listed = await page
        .locator('#m-rows tr')
        .evaluateAll((rows: HTMLTableRowElement[]) =>
          rows.map((row) => [row.cells[0].textContent, row.cells[1].textContent, row.querySelector('select')!.value]),
        );
      const expected = (await members()).map((m) => [
        m.userId === ws.admin.id ? `${m.name} (you)` : m.name,
        m.email,
        m.role,
      ]);
      expect(listed).toEqual(expected);
      expect(listed.map((row) => row[2]).sort()).toEqual(['admin', 'member']);
      await expect(page.textContent('#m-status')).resolves.toBe('2 members, 1 admin.');
      expect(await axeViolations(page)).toEqual([]);
    });

    it('adds a member by email, name and role, and shows the API’s 409 for one who is already a member', async () => {
      await page.fill('#m-email', 'carol@acme.test');
      await page.fill('#m-name', 'Carol');
      await page.selectOption('#m-role', 'member');
      await page.click('#add-member button[type=submit]');
      await memberRow('carol@acme.test').waitFor();
      await expect(page.textContent('#m-status')).resolves.toBe('Added carol@acme.test as a member.');
      expect((await members()).find((m) => m.email === 'carol@acme.test')).toMatchObject({
        name: 'Carol',
        role: 'member',
      });
      await expect(page.inputValue('#m-email')).resolves.toBe('');

      await page.fill('#m-email', 'carol@acme.test');
      await page.fill('#m-name', 'Carol again');
      await page.click('#add-member button[type=submit]');
      await page.waitForFunction(() => document.getElementById('m-error')!.textContent !== '');
      await expect(page.textContent('#m-error')).resolves.toBe(
        'carol@acme.test was not added: carol@acme.test is already a member of this workspace.',
      );
      expect((await members()).filter((m) => m.email === 'carol@acme.test')).toHaveLength(1);
      expect(await axeViolations(page)).toEqual([]);
      await page.fill('#m-email', '');
      await page.fill('#m-name', '');
    });

    it('changes a role, and shows the API’s 409 when the last admin would be demoted, keeping the role', async () => {
      await memberRow('carol@acme.test').getByRole('combobox', { name: 'Role of Carol' }).selectOption('admin');
      await page.waitForFunction(() => /Carol is now an admin/.test(document.getElementById('m-status')!.textContent));
      expect((await members()).find((m) => m.email === 'carol@acme.test')!.role).toBe('admin');
      await memberRow('carol@acme.test').getByRole('combobox', { name: 'Role of Carol' }).selectOption('member');
      await page.waitForFunction(() => /Carol is now a member/.test(document.getElementById('m-status')!.textContent));

      // The signed-in admin is now the only one: demoting them is refused, with the API's reason.
      const self = page.locator(`#m-rows tr[data-user="${ws.admin.id}"] select`);
      await self.selectOption('member');
      await page.waitForFunction(() => document.getElementById('m-error')!.textContent !== '');
      await expect(page.textContent('#m-error')).resolves.toMatch(
        /^Admin \d+ is still an admin: The last admin of a workspace cannot be demoted: make another member an admin first\.$/,
      );
      await expect(self.inputValue()).resolves.toBe('admin');
      expect((await members()).find((m) => m.userId === ws.admin.id)!.role).toBe('admin');
      expect(await axeViolations(page)).toEqual([]);
    });

    it('removes a member after a confirmation, by keyboard, and refuses to remove the last admin with the API’s 409', async () => {
      const remove = memberRow('carol@acme.test').getByRole('button', { name: 'Remove Carol…' });
      // Cancel first: nothing changes.
      await remove.focus();
      await page.keyboard.press('Enter');
      await page.locator('#confirm[open]').waitFor();
      await expect(page.evaluate(() => document.activeElement!.id)).resolves.toBe('confirm-cancel');
      await expect(page.textContent('#confirm-title')).resolves.toBe('Remove Carol?');
      expect(await axeViolations(page)).toEqual([]);
      await page.screenshot({ path: join(DOCS, 'settings-members.png') });
      await page.keyboard.press('Escape');
      await page.locator('#confirm').waitFor({ state: 'hidden' });
      expect((await members()).some((m) => m.email === 'carol@acme.test')).toBe(true);
      await expect(page.evaluate(() => document.activeElement!.getAttribute('aria-label'))).resolves.toBe(
        'Remove Carol…',
      );
      // Then confirm.
      await page.keyboard.press('Enter');
      await page.locator('#confirm[open]').waitFor();
      await page.keyboard.press('Shift+Tab');
      await expect(page.evaluate(() => document.activeElement!.id)).resolves.toBe('confirm-go');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.getElementById('m-status')!.textContent === 'Removed Carol.');
      expect((await members()).some((m) => m.email === 'carol@acme.test')).toBe(false);
      await expect(memberRow('carol@acme.test').count()).resolves.toBe(0);

      await page.locator(`#m-rows tr[data-user="${ws.admin.id}"] button`).click();
      await page.click('#confirm-go');
      await page.waitForFunction(() => document.getElementById('m-error')!.textContent !== '');
      await expect(page.textContent('#m-error')).resolves.toMatch(
        /was not removed: The last admin of a workspace cannot be removed: make another member an admin first\.$/,
      );
      expect((await members()).some((m) => m.userId === ws.admin.id)).toBe(true);
    });

    it('shows the changes in the Audit Logs tab, whose filters offer the new resource types', async () => {
      await page.click('#tab-log');
      await settled(page, 'log');
      await page.click('#f-type summary');
      await page.locator('#f-type').getByRole('checkbox', { name: 'Member', exact: true }).click();
      await page.keyboard.press('Escape');
      await settled(page, 'log');
      const actions = await page.locator('#rows tr td:nth-child(2)').allInnerTexts();
      expect(actions.slice(0, 4)).toEqual([
        'Member removed',
        'Member role changed',
        'Member role changed',
        'Member added',
      ]);
      await expect(
        page.locator('#f-type label', { hasText: 'API token' }).locator('input').getAttribute('value'),
      ).resolves.toBe('api_token');
      expect(await axeViolations(page)).toEqual([]);
    });
  });

  describe('API tokens (everyone)', () => {
    let created: string;

    it('creates a token and shows it once, with a copy button and a warning that it will not be shown again', async () => {
      await page.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&tab=tokens`);
      await settled(page, 'tokens');
      await page.fill('#t-label', 'CI export job');
      await page.click('#add-token button[type=submit]');
      await page.locator('#new-token').waitFor();
      created = (await page.textContent('#new-token-value'))!;
      expect(created).toMatch(/^\S{32,}$/);
      await expect(page.textContent('#new-token')).resolves.toContain('Copy it now: it will not be shown again.');
      await expect(page.evaluate(() => document.activeElement!.id)).resolves.toBe('new-token');
      // The token works, and it is this user's.
      const me = await t.http
        .get('/api/me')
        .set({ Authorization: `Bearer ${created}` })
        .expect(200);
      expect(me.body.user.id).toBe(ws.admin.id);

      await page.click('#copy-token');
      await page.waitForFunction(() => document.getElementById('copy-status')!.textContent !== '');
      await expect(page.textContent('#copy-status')).resolves.toBe('Copied to the clipboard.');
      await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(created);
      expect(await axeViolations(page)).toEqual([]);
      await page.screenshot({ path: join(DOCS, 'settings-tokens.png') });

      await page.click('#new-token-done');
      await expect(page.isHidden('#new-token')).resolves.toBe(true);
      expect(await page.content()).not.toContain(created);
      await page.reload();
      await settled(page, 'tokens');
      expect(await page.content()).not.toContain(created);
    });

    it('lists the tokens with when each was created and last used, in the browser’s timezone', async () => {
      // The token was used once above; its use is recorded off the request's path, so wait for it.
      let listed: Token | undefined;
      for (let tries = 0; !listed?.lastUsedAt && tries < 100; tries++) {
        if (tries) await new Promise((resolve) => setTimeout(resolve, 100));
        listed = (await tokens()).find((tk) => tk.label === 'CI export job');
      }
      expect(listed?.lastUsedAt).toEqual(expect.any(String));
      await page.reload();
      await settled(page, 'tokens');
      const row = page.locator('#t-rows tr', { hasText: 'CI export job' });
      await expect(row.locator('td').allInnerTexts()).resolves.toEqual([
        'CI export job',
        localFormat(listed!.createdAt, TIMEZONE),
        localFormat(listed!.lastUsedAt!, TIMEZONE),
        'Revoke…',
      ]);
      // A token never used says so.
      await t.http.post('/api/me/tokens').set(ws.admin.auth).send({ label: 'Spare' }).expect(201);
      await page.reload();
      await settled(page, 'tokens');
      await expect(
        page.locator('#t-rows tr', { hasText: 'Spare' }).locator('td:nth-child(3)').innerText(),
      ).resolves.toBe('Never');
      expect(await axeViolations(page)).toEqual([]);
    });

    it('revokes a token after a confirmation; the API refuses it at once', async () => {
      await page.getByRole('button', { name: 'Revoke CI export job…' }).click();
      await page.locator('#confirm[open]').waitFor();
      await expect(page.textContent('#confirm-title')).resolves.toBe('Revoke “CI export job”?');
      expect(await axeViolations(page)).toEqual([]);
      await page.click('#confirm-go');
      await page.waitForFunction(() => document.getElementById('t-status')!.textContent === 'Revoked “CI export job”.');
      await expect(page.locator('#t-rows tr', { hasText: 'CI export job' }).count()).resolves.toBe(0);
      await t.http
        .get('/api/me')
        .set({ Authorization: `Bearer ${created}` })
        .expect(401);
    });

    it('is there for a member, whose Audit Logs tab says it is for admins and who has no Members tab', async () => {
      const member = await newPage(TIMEZONE, 1280);
      await signIn(member, ws.member.token, 'tokens');
      await expect(member.isHidden('#tab-members')).resolves.toBe(true);
      await expect(member.isHidden('#tab-resources')).resolves.toBe(true);
      await member.fill('#t-label', 'Member laptop');
      await member.click('#add-token button[type=submit]');
      await member.locator('#new-token').waitFor();
      expect((await tokens(ws.member.auth)).map((tk) => tk.label)).toContain('Member laptop');
      expect(await axeViolations(member)).toEqual([]);
      await member.click('#tab-log');
      await member.locator('#denied').waitFor();
      await expect(member.textContent('#denied h1')).resolves.toBe('Audit Logs are for admins only');
      await expect(member.isHidden('#new-token')).resolves.toBe(true);
      expect(await axeViolations(member)).toEqual([]);
      await member.goto(`${base}/settings/audit-logs?workspace=${ws.workspaceId}&tab=members`);
      await member.locator('#denied').waitFor();
      await expect(member.textContent('#denied h1')).resolves.toBe('Members are managed by admins only');
    });
  });

  it('keeps a long token label and a long email inside their tables, the Revoke and Remove buttons in view', async () => {
    const label = `nightly_export_${'x'.repeat(130)}`;
    await t.http.post('/api/me/tokens').set(ws.admin.auth).send({ label }).expect(201);
    const email = `${'long'.repeat(15)}@${'domain'.repeat(10)}.example.test`;
    await t.http
      .post(`/api/workspaces/${ws.workspaceId}/members`)
      .set(ws.admin.auth)
      .send({ email, name: 'Long Email', role: 'member' })
      .expect(201);
    const p = await newPage(TIMEZONE, 1280);
    const fits = (table: string) =>
      p.locator(table).evaluate((t: HTMLTableElement) => t.scrollWidth <= t.parentElement!.clientWidth);
    await signIn(p, ws.admin.token, 'tokens');
    await expect(p.locator('#t-rows tr', { hasText: label }).count()).resolves.toBe(1);
    await expect(fits('#t-table')).resolves.toBe(true);
    await p.fill('#t-label', label);
    await p.click('#add-token button[type=submit]');
    await p.locator('#new-token').waitFor();
    await expect(p.locator('#new-token').evaluate((box) => box.scrollWidth <= box.clientWidth)).resolves.toBe(true);
    await p.click('#new-token-done');
    await p.click('#tab-members');
    await settled(p, 'members');
    await expect(memberRow('Long Email', p).count()).resolves.toBe(1);
    await expect(fits('#m-table')).resolves.toBe(true);
  });

  it('lines up each member’s name and email with the role and Remove controls of its row', async () => {
    const p = await newPage(TIMEZONE, 1280);
    await signIn(p, ws.admin.token);
    const middles = await memberRow('(you)', p).evaluate((row: HTMLTableRowElement) => {
      const middle = (node: Element) => {
        const range = document.createRange();
        range.selectNodeContents(node);
        const box = range.getBoundingClientRect();
        return box.top + box.height / 2;
      };
      const control = (selector: string) => {
        const box = row.querySelector(selector)!.getBoundingClientRect();
        return box.top + box.height / 2;
      };
      return [middle(row.cells[0]), middle(row.cells[1]), control('select'), control('button')];
    });
    for (const m of middles) expect(Math.abs(m - middles[2])).toBeLessThanOrEqual(3);
  });

  it('in a +05:30 timezone, shows when tokens were created in that zone', async () => {
    const kolkata = await newPage(KOLKATA, 1280);
    await signIn(kolkata, ws.admin.token, 'tokens');
    const [first] = await tokens();
    const row = kolkata.locator(`#t-rows tr[data-id="${first.id}"]`);
    await expect(row.locator('td:nth-child(2)').innerText()).resolves.toBe(localFormat(first.createdAt, KOLKATA));
    await expect(row.locator('td:nth-child(2)').innerText()).resolves.toMatch(/GMT\+5:30$/);
    expect(await axeViolations(kolkata)).toEqual([]);
  });

  it('on a 390 px phone: both screens without horizontal scroll, rows as cards, 0 axe violations', async () => {
    const phone = await newPage(TIMEZONE, 390, 844);
    const width = () => phone.evaluate(() => document.documentElement.scrollWidth);
    await signIn(phone, ws.admin.token, 'members');
    await expect(width()).resolves.toBeLessThanOrEqual(390);
    await expect(
      phone
        .locator('#m-rows tr')
        .first()
        .evaluate((tr) => getComputedStyle(tr).display),
    ).resolves.toBe('block');
    expect(await axeViolations(phone)).toEqual([]);
    await phone.click('#tab-tokens');
    await settled(phone, 'tokens');
    await phone.fill('#t-label', 'Phone');
    await phone.click('#add-token button[type=submit]');
    await phone.locator('#new-token').waitFor();
    await expect(width()).resolves.toBeLessThanOrEqual(390);
    expect(await axeViolations(phone)).toEqual([]);
  });
});

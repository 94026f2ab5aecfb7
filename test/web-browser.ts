/// <reference lib="dom" />
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/** What the page's browser tests share: Debian's Chromium, and axe-core run inside the page. */
export const CHROMIUM = '/usr/bin/chromium';
const AXE = join(__dirname, '../node_modules/axe-core/axe.min.js');

/** Whether the browser tests can run here; in CI a missing Chromium is an error, not a skip. */
export function chromiumAvailable(): boolean {
  const available = existsSync(CHROMIUM);
  if (!available) {
    if (process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium package.`);
    console.log(`Skipping the browser test: ${CHROMIUM} is missing (apt-get install chromium).`);
  }
  return available;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
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
}

/** axe-core run inside the page (evaluated, not injected as a script, so the CSP stays as it is). */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(readFileSync(AXE, 'utf8'));
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (...a: unknown[]) => Promise<AxeResults> } }).axe;
    type AxeResults = { violations: { id: string; nodes: { target: string[] }[] }[] };
    const results = await axe.run(document, { resultTypes: ['violations'] });
    return results.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(' | ')}`);
  });
}

/**
 * The pages one browser test opens, each in a context of its own (timezone, width), with what the
 * page threw or the app's Content-Security-Policy blocked collected in `errors`: anything there is a failure.
 */
export class BrowserPages {
  readonly errors: string[] = [];
  private readonly contexts: BrowserContext[] = [];

  constructor(
    private readonly browser: Browser,
    private readonly options: { clipboardOrigin?: string } = {},
  ) {}

  async open(timezoneId: string, width: number, height = 900): Promise<Page> {
    const context = await this.browser.newContext({
      timezoneId,
      locale: 'en-US',
      acceptDownloads: true,
      viewport: { width, height },
    });
    if (this.options.clipboardOrigin) {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: this.options.clipboardOrigin });
    }
    this.contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (error) => this.errors.push(error.message));
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) this.errors.push(message.text());
    });
    return page;
  }

  async close(): Promise<void> {
    for (const context of this.contexts) await context.close();
  }
}

/** An instant as the page shows it in the given timezone (en-US). */
export const localFormat = (iso: string, timeZone: string): string =>
  new Intl.DateTimeFormat('en-US', {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    second: '2-digit',
    timeZoneName: 'short',
    timeZone,
  }).format(new Date(iso));

import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { type Browser, type BrowserContextOptions, chromium, type Page } from 'playwright-core';

const ROOT = path.resolve(__dirname, '../../..');
/** Screenshots of every page the tests visit (docs/console/ holds the committed ones). */
export const SCREENSHOTS = path.join(ROOT, '.data/console-screenshots');
/** Debian's Chromium (.ci/run installs it); never a downloaded browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Builds the console once (`npm run console:build` → dist/console), as the gateway serves it. */
export function buildConsole(): void {
  const res = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '-c', 'apps/console/vite.config.mjs'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`console build failed:\n${res.stdout}\n${res.stderr}`);
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/**
 * A page that fails the test on what a shop network would show as broken: a console error (a CSP refusal
 * is one), an uncaught exception, or a request that leaves the gateway's origin. `options` go to the
 * browser context (e.g. `bypassCSP` to test the escaping without the CSP behind it).
 */
export async function consolePage(browser: Browser, origin: string, viewport = { width: 1366, height: 900 }, options: BrowserContextOptions = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true, ...options });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[34]/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(origin) && !r.url().startsWith('blob:')) problems.push(`request outside the origin: ${r.url()}`);
  });
  return { context, page, problems };
}

export async function signIn(page: Page, origin: string, key: string): Promise<void> {
  await page.goto(`${origin}/console/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

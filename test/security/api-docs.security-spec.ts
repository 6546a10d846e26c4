import type { AddressInfo } from 'node:net';

import type { Browser } from 'playwright-core';

import { consolePage, launchBrowser } from '../console/support/console-browser';
import { GatewaySession } from '../e2e/support/gateway-session';

/** Swagger UI's four constant inline styles are allowed by their hashes (bootstrap.ts DOCS_CSP), never 'unsafe-inline'. */
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-hashes' 'sha256-/jDKvbQ8cdux+c5epDIqkjHbXDaIY8RucT1PmAe8FG4=' 'sha256-eaPyLWVdqMc60xuz5bTp2yBRgVpQSoUggte1+40ONPU=' 'sha256-ezdv1bOGcoOD7FKudKN0Y2Mb763O6qVtM8LT2mtanIU=' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Records every CSP violation of the page into `window.cspViolations` (an init script runs outside the page's CSP). */
const RECORD_VIOLATIONS = `window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.effectiveDirective + ' ' + e.blockedURI));`;

/**
 * The API reference at /docs (Swagger UI from @nestjs/swagger) is a page the gateway's origin renders: every
 * answer under it — the page, its scripts, stylesheet, icons, the document — carries a CSP allowing only
 * what Swagger UI needs, and the page renders under it with no violation (docs/security.md, "Input hygiene, the
 * error envelope and authentication throttling").
 */
describe('API reference at /docs (docs/security.md: its CSP and page headers)', () => {
  const session = new GatewaySession();
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    await session.start();
    origin = `http://127.0.0.1:${(session.app.getHttpServer().address() as AddressInfo).port}`;
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await session.stop();
  });

  it('sends the CSP and page security headers with the page, every file under it and the document', async () => {
    const answers: Array<[string, number, RegExp]> = [
      ['/docs', 200, /^text\/html/],
      ['/docs/', 200, /^text\/html/],
      ['/docs/index.html', 200, /^text\/html/],
      ['/docs/swagger-ui-init.js', 200, /^application\/javascript/],
      ['/docs/swagger-ui-bundle.js', 200, /^(text|application)\/javascript/],
      ['/docs/swagger-ui-standalone-preset.js', 200, /^(text|application)\/javascript/],
      ['/docs/swagger-ui.css', 200, /^text\/css/],
      ['/docs/favicon-32x32.png', 200, /^image\/png/],
      ['/docs/favicon-16x16.png', 200, /^image\/png/],
      ['/docs/openapi.json', 200, /^application\/json/],
      ['/docs-yaml', 200, /^text\/yaml/],
      ['/docs/no-such-file.js', 404, /^application\/json/],
    ];
    for (const [url, status, type] of answers) {
      const res = await session.http().get(url);
      expect({ url, status: res.status, type: res.headers['content-type'] }).toEqual({ url, status, type: expect.stringMatching(type) });
      expect({ url, ...res.headers }).toMatchObject({
        url,
        'content-security-policy': DOCS_CSP,
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-resource-policy': 'same-origin',
        'referrer-policy': 'no-referrer',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
      });
    }
  });

  it('renders Swagger UI under that CSP with no violation, a tried-out call included', async () => {
    const { apiKey } = await session.tenant();
    const { context, page, problems } = await consolePage(browser, origin);
    await context.addInitScript(RECORD_VIOLATIONS);
    const answer = await page.goto(`${origin}/docs`);
    expect(answer?.headers()['content-security-policy']).toBe(DOCS_CSP);
    // The operations list, and the description rendered from its Markdown.
    await page.locator('#operations-stores-storesList').waitFor();
    expect(await page.locator('.opblock').count()).toBeGreaterThan(50);
    await expect(page.locator('.info .renderedMarkdown code').first().textContent()).resolves.toBe('Authorization: Bearer <API key>');
    // Authorize with a key (the dialog's form), then try an operation out: a same-origin fetch.
    await page.getByRole('button', { name: 'Authorize' }).first().click();
    await page.getByLabel('auth-bearer-value').fill(apiKey);
    await page.getByRole('button', { name: 'Apply credentials' }).click();
    await page.getByRole('button', { name: 'Remove authorization' }).waitFor();
    await page.getByRole('button', { name: 'Close', exact: true }).click();
    const operation = page.locator('#operations-stores-storesList');
    await operation.locator('.opblock-summary-control').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    await operation.getByRole('button', { name: 'Execute' }).click();
    await expect(operation.locator('.live-responses-table tr.response .response-col_status').textContent()).resolves.toBe('200');
    expect(await page.evaluate<string[]>('window.cspViolations')).toEqual([]);
    expect(problems.splice(0)).toEqual([]);

    // The recorder sees a violation when there is one: an injected inline script and style are refused, not applied.
    await page.evaluate(`{
      const script = document.createElement('script');
      script.textContent = 'window.injected = true';
      const style = document.createElement('style');
      style.textContent = 'body { display: none }';
      document.head.append(script, style);
    }`);
    await page.waitForFunction('window.cspViolations.length === 2');
    expect((await page.evaluate<string[]>('window.cspViolations')).sort()).toEqual(['script-src-elem inline', 'style-src-elem inline']);
    expect(await page.evaluate<unknown>('window.injected')).toBeUndefined();
    await expect(page.locator('body').isVisible()).resolves.toBe(true);
    expect(problems.splice(0).sort()).toEqual([
      expect.stringContaining('Applying inline style violates'),
      expect.stringContaining('Executing inline script violates'),
    ]);
    await context.close();
  });
});

import type { AddressInfo } from 'node:net';

import type { Browser, Page, Request } from 'playwright-core';

import { GatewaySession } from '../e2e/support/gateway-session';
import { buildConsole, consolePage, launchBrowser, screenshot, signIn } from './support/console-browser';

/**
 * The live event stream refused for good, in Debian's Chromium against the real gateway: a key without
 * `events:read` signs in (any valid key may), the gateway answers its `GET /v1/events/stream` 403 FORBIDDEN,
 * and the console shows that refusal in its header without asking again — a key's scopes never change, so
 * a retry would only be refused again (apps/console/src/events.ts). The page's clock is Playwright's fake
 * one: ten minutes of it pass in an instant, past every backoff (at most 10 s) and the longest Retry-After
 * the console would wait (10 min). Signing in again with a key that holds the scope starts a new stream.
 */
describe('ops console: a refused live stream', () => {
  const session = new GatewaySession();
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let origin: string;
  let adminKey: string;
  let fleetKey: string;
  /** Every request the page made for the live stream, in order. */
  const streamRequests: Request[] = [];

  const badge = () => page.getByTestId('stream-state');

  beforeAll(async () => {
    buildConsole();
    await session.start();
    origin = `http://127.0.0.1:${(session.app.getHttpServer().address() as AddressInfo).port}`;
    const tenant = await session.tenant('Stream Refused', ['admin']);
    adminKey = tenant.apiKey;
    // What the Fleet page reads, but not the live stream.
    fleetKey = (await session.apiKey(adminKey, ['terminals:read', 'stores:read', 'agents:read'], 'fleet, no events')).apiKey;
    browser = await launchBrowser();
    ({ page, problems } = await consolePage(browser, origin));
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/v1/events/stream') streamRequests.push(r);
    });
    // Fake timers in the page from its first script on (time still flows until the test moves it on).
    await page.clock.install();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await session.stop();
  });

  afterEach(() => {
    expect(problems.splice(0)).toEqual([]);
  });

  it("shows a 403's code and hint under the header and does not ask for the stream again; a key with events:read goes live", async () => {
    await signIn(page, origin, fleetKey);
    await badge().filter({ hasText: 'down · FORBIDDEN' }).waitFor();
    const refused = await streamRequests[0]!.response();
    expect(refused?.status()).toBe(403);
    await expect(page.getByTestId('stream-error').textContent()).resolves.toContain(
      'Live event stream: Not allowed (403) FORBIDDEN: API key lacks scope(s): events:read',
    );
    await expect(page.getByTestId('stream-error-hint').textContent()).resolves.toMatch(
      /^The API key lacks a scope this needs.*Sign in with a key that holds the scope the message names/,
    );
    await screenshot(page, 'stream-refused');

    // Ten minutes in the page: every backoff timer of a reconnect loop would have fired.
    await page.clock.runFor('10:00');
    await expect(badge().textContent()).resolves.toBe('down · FORBIDDEN');
    await page.getByTestId('stream-error').waitFor();

    // Signing out and in again with a key that holds events:read, in the same page, starts one new stream. Any
    // request of a reconnect loop left from the refused key went out before it, so the count says there was none.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').fill(adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await badge()
      .filter({ hasText: /^live$/ })
      .waitFor();
    expect(await page.getByTestId('stream-error').count()).toBe(0);
    const keys = await Promise.all(streamRequests.map(async (r) => (await r.allHeaders())['authorization']));
    expect(keys).toEqual([`Bearer ${fleetKey}`, `Bearer ${adminKey}`]);
  });
});

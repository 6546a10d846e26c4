import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import type { Browser, Page, Route } from 'playwright-core';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createLogger, luhnValid } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import { startInProcessAgent } from '../e2e/support/tunnel-harness';
import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { buildConsole, consolePage, launchBrowser, screenshot, signIn } from './support/console-browser';

const silent = createLogger({ name: 'test', level: 'silent' });

/**
 * The ops console in a real browser (Debian's Chromium through playwright-core) against the whole stack:
 * gateway (serving dist/console) → Redis command bus → device connector → WebSocket tunnel → agent →
 * Joinproto terminal simulator. Live presence and live operations come from the gateway's event stream.
 */
describe('ops console', () => {
  const session = new GatewaySession();
  const sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
  let connector: INestApplication;
  let connectorUrl: string;
  let browser: Browser;
  let origin: string;
  let adminKey: string;
  let readKey: string;
  let terminalId: string;
  let storeId: string;
  let credential: string;
  let stopAgent: (() => void) | undefined;
  let page: Page;
  let problems: string[];

  const post = (path: string, body: object) =>
    session
      .http()
      .post(path)
      .set({ Authorization: `Bearer ${adminKey}` })
      .set('Idempotency-Key', idem())
      .send(body);

  const startAgent = () => {
    stopAgent = startInProcessAgent(connectorUrl, credential).stop;
  };

  /** A resource as the API answers it now (the admin key). */
  const apiGet = async (path: string): Promise<Record<string, unknown>> =>
    (
      await session
        .http()
        .get(path)
        .set({ Authorization: `Bearer ${adminKey}` })
    ).body as Record<string, unknown>;

  /**
   * Answers the console's request with what the API answered when it was made, but only once `until` holds on the
   * server (after `meanwhile`): the order a loaded machine can give, made every time.
   */
  const answerLate = async (route: Route, meanwhile: () => void, until: () => Promise<boolean>, what: string) => {
    const response = await route.fetch();
    const json: unknown = await response.json();
    meanwhile();
    await waitFor(until, { what });
    await route.fulfill({ response, json });
  };

  const nav = (name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });
  /** The cards of one operation type (the heading starts with the type; a card's buttons say "Refund" too). */
  const cards = (type: string) => page.locator('article.op').filter({ has: page.locator('h3', { hasText: new RegExp(`^\\s*${type} `) }) });
  const row = () => page.locator(`tr[data-terminal="${terminalId}"]`);

  beforeAll(async () => {
    buildConsole();
    await session.start();
    origin = `http://127.0.0.1:${(session.app.getHttpServer().address() as AddressInfo).port}`;
    connector = await createConnectorApp(
      loadConfig('device-connector', connectorConfigSchema, {
        DATABASE_APP_URL: session.testDb.appUrl,
        REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
        PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
        CONNECTOR_INSTANCE_ID: 'console-1',
        LOG_LEVEL: 'silent',
      }),
      silent,
    );
    await connector.listen(0, '127.0.0.1');
    connectorUrl = `http://127.0.0.1:${(connector.getHttpServer().address() as AddressInfo).port}`;

    const tenant = await session.tenant('Console Chain', ['admin']);
    adminKey = tenant.apiKey;
    readKey = (await session.admin.createApiKey({ tenantId: tenant.tenantId, name: 'dashboard', scopes: ['read'] })).apiKey;
    const store = await post('/v1/stores', { name: 'Store on Main St', timeZone: 'Europe/Moscow' });
    storeId = store.body.id;
    const agent = await post('/v1/agents', { name: 'Till 1', storeId });
    const enrolled = await fetch(`${connectorUrl}/agent/enroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: agent.body.enrollmentToken }),
    });
    credential = ((await enrolled.json()) as { credential: string }).credential;
    const terminal = await post('/v1/terminals', {
      name: 'Checkout 1',
      storeId,
      agentId: agent.body.agent.id,
      protocol: 'joinproto',
      connection: { kind: 'tcp', host: '127.0.0.1', port: (await sim.listen(0)).port },
    });
    if (terminal.status !== 201) throw new Error(`terminal setup failed: ${JSON.stringify(terminal.body)}`);
    terminalId = terminal.body.id;
    browser = await launchBrowser();
    ({ page, problems } = await consolePage(browser, origin));
  }, 90_000);

  afterAll(async () => {
    stopAgent?.();
    await browser?.close();
    await connector?.close();
    await sim.close();
    await session.stop();
  });

  afterEach(() => {
    expect(problems.splice(0)).toEqual([]);
  });

  it('is served at /console with a self-only CSP, bundled whole, and refuses a wrong key', async () => {
    const index = await session.http().get('/console/');
    expect(index.status).toBe(200);
    expect(index.headers['content-security-policy']).toContain("default-src 'self'");
    expect(index.headers['content-security-policy']).not.toMatch(/unsafe|https?:/);
    expect(index.text).not.toMatch(/https?:\/\//);
    // Only the generated client's types reach the bundle, never its Node-only parts (node:crypto).
    const bundle = await session.http().get(/src="(\/console\/assets\/[^"]+\.js)"/.exec(index.text)![1]!);
    expect(bundle.status).toBe(200);
    expect(bundle.text).toContain('/v1/operations/{id}/events');
    expect(bundle.text).not.toMatch(/["'`]node:[a-z]|createHmac|timingSafeEqual/);
    await page.goto(`${origin}/console/`);
    await page.getByLabel('API key').fill('pok_not_a_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByTestId('signin-error').textContent()).resolves.toContain('401');
    // Under the error, what the code means and what to do (apps/console/src/api-errors.ts).
    await expect(page.getByTestId('signin-error-hint').textContent()).resolves.toMatch(
      /^The API key is missing, invalid, revoked or expired .*Sign in with a working key/,
    );
    // The refused key's 401 is the one error the browser may report here.
    expect(problems.splice(0)).toEqual([expect.stringContaining('status of 401')]);
    await screenshot(page, 'sign-in');
  });

  it('signs in with the keyboard, and the Fleet shows the terminal going online live', async () => {
    await page.goto(`${origin}/console/`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string | undefined>('document.activeElement?.id')).toBe('apiKey');
    await page.keyboard.type(adminKey);
    await page.keyboard.press('Enter');
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    // The first stop after sign-in is the skip link to the main landmark.
    await page.keyboard.press('Tab');
    await expect(page.evaluate<string | undefined>('document.activeElement?.textContent')).resolves.toBe('Skip to content');
    await expect(page.getByTestId('role').textContent()).resolves.toContain('admin');
    await row().waitFor();
    await page.getByTestId('stream-state').filter({ hasText: 'live' }).waitFor();
    expect(await row().getByTestId('presence').textContent()).not.toBe('online');
    startAgent();
    await row()
      .getByTestId('presence')
      .filter({ hasText: /^online$/ })
      .waitFor({ timeout: 20_000 });
    await expect(page.getByTestId('count-online').textContent()).resolves.toBe('1');
    // The key is in this tab's session storage, never in a URL or local storage.
    expect(await page.evaluate<number>('localStorage.length')).toBe(0);
    expect(page.url()).not.toContain(adminKey);
    await screenshot(page, 'fleet');
    // Tablet width: nothing scrolls sideways.
    await page.setViewportSize({ width: 768, height: 1024 });
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(768);
    await screenshot(page, 'fleet-tablet');
    await page.setViewportSize({ width: 1366, height: 900 });
  });

  it('takes a purchase on the terminal and follows it live to approved', async () => {
    await row().getByRole('link', { name: 'Take a payment' }).click();
    await page.getByRole('heading', { name: 'Take a payment' }).waitFor();
    await page.getByLabel('Amount').fill('15.00');
    await page.getByTestId('pay-submit').click();
    const card = page.locator('po-pay article.op');
    await card
      .getByTestId('op-state')
      .filter({ hasText: /^approved$/ })
      .waitFor({ timeout: 20_000 });
    await expect(card.locator('h3').textContent()).resolves.toContain('15.00 RUB');
    await screenshot(page, 'take-a-payment');
  });

  it('refunds the purchase from Live operations, followed live to approved', async () => {
    await nav('Live operations').click();
    const purchase = cards('purchase').filter({ has: page.getByTestId('op-state').filter({ hasText: 'approved' }) });
    await purchase.first().getByRole('button', { name: 'Timeline' }).click();
    // Its timeline: the steps the API recorded (GET /v1/operations/{id}/events), from creation to the result.
    const timeline = purchase.first().locator('ol.timeline');
    await timeline.locator('li[data-kind="created"]', { hasText: '∅ → pending' }).waitFor();
    await timeline.locator('li[data-kind="progress"]').first().waitFor();
    await timeline.locator('li', { hasText: '→ approved' }).waitFor();
    // The protocol frames, masked, folded under each arrow: the terminal's answer carries the card first 6 / last 4.
    const answer = timeline.locator('li[data-kind="frame"][data-direction="in"]', { hasText: 'Purchase (01)' });
    await answer.locator('summary').click();
    await expect(answer.locator('pre.frame-masked').textContent()).resolves.toMatch(/DF04=\d{6}\*+\d{4}/);
    // No card number anywhere (the merchant id DF13 is 15 digits, but no card: not Luhn-valid).
    const digitRuns = (await timeline.textContent())?.match(/\d{13,19}/g) ?? [];
    expect(digitRuns.filter((run) => luhnValid(run))).toEqual([]);
    // The refund's card is made from a read of the refund (GET /v1/operations/{id}) and then follows the stream. Each
    // such read made before the refund is final (the terminal holds it at the card until one was made) is answered
    // only once it is final on the server (so after its last event went out on the stream), with what it read then: a
    // card made from that read must still catch up. Before, it only listened for events from then on and stayed at its
    // first state (found under load by CI: a refund card that never left its first state).
    const purchaseId = (
      await session
        .http()
        .get(`/v1/operations?terminalId=${terminalId}`)
        .set({ Authorization: `Bearer ${adminKey}` })
    ).body.data[0].id as string;
    let refundFinal = false;
    let captured = 0;
    const stale = async (route: Route) => {
      const id = new URL(route.request().url()).pathname.split('/').pop()!;
      if (route.request().method() !== 'GET' || id === purchaseId || refundFinal) return route.continue();
      await answerLate(
        route,
        () => (captured += 1),
        async () => (await apiGet(`/v1/operations/${id}`)).state === 'approved',
        'the refund approved on the server',
      );
      refundFinal = true;
    };
    await page.route('**/v1/operations/*', stale);
    // The terminal waits for the card until the console has read the refund once (not final yet).
    sim.hold.at('card');
    await purchase.first().getByRole('button', { name: 'Refund' }).click();
    await waitFor(() => sim.hold.reached('card') && captured > 0, { what: 'the refund at the terminal and read by the console' });
    sim.hold.release();
    const refund = cards('refund');
    await refund
      .getByTestId('op-state')
      .filter({ hasText: /^approved$/ })
      .waitFor({ timeout: 20_000 });
    await page.unroute('**/v1/operations/*', stale);
    expect(refundFinal).toBe(true);
    await expect(cards('purchase').count()).resolves.toBe(1);
    await screenshot(page, 'live-operations');
    const ops = await session
      .http()
      .get(`/v1/operations?terminalId=${terminalId}`)
      .set({ Authorization: `Bearer ${adminKey}` });
    expect(ops.body.data.map((o: { type: string; state: string }) => `${o.type}:${o.state}`)).toEqual(['refund:approved', 'purchase:approved']);
  });

  it('shows the terminal page with its recent operations and configuration', async () => {
    await page.goto(`${origin}/console/#/terminals/${terminalId}`);
    await page.getByRole('heading', { name: 'Configuration' }).waitFor();
    const recent = page.getByRole('region', { name: 'Recent operations' });
    await recent.locator('tbody tr').nth(1).waitFor();
    await expect(recent.locator('tbody tr').count()).resolves.toBe(2);
    await screenshot(page, 'terminal');
  });

  it('shows the terminal going offline live when its agent is cut', async () => {
    await nav('Fleet').click();
    await row()
      .getByTestId('presence')
      .filter({ hasText: /^online$/ })
      .waitFor();
    stopAgent!();
    stopAgent = undefined;
    await row()
      .getByTestId('presence')
      .filter({ hasText: /^offline$/ })
      .waitFor({ timeout: 20_000 });
    await expect(row().locator('td').nth(5).textContent()).resolves.toContain('tunnel closed');
    await expect(page.getByTestId('count-offline').textContent()).resolves.toBe('1');
    await screenshot(page, 'fleet-offline');
  });

  it("keeps a terminal's presence event that arrived while the Fleet was being read", async () => {
    // The agent is cut (previous test): the terminal is offline. The Fleet's read of the terminals is answered, with
    // what it read then (offline), only once the agent is back and the terminal online on the server (its
    // terminal.online went out on the stream before the answer). Before, the answer undid the event: offline for good.
    await nav('Live operations').click();
    let answered = false;
    const late = async (route: Route) => {
      if (answered) return route.continue();
      await answerLate(route, startAgent, async () => (await apiGet(`/v1/terminals/${terminalId}`)).status === 'online', 'the terminal online on the server');
      answered = true;
    };
    const terminalsList = (url: URL) => url.pathname === '/v1/terminals';
    await page.route(terminalsList, late);
    try {
      await nav('Fleet').click();
      await row()
        .getByTestId('presence')
        .filter({ hasText: /^online$/ })
        .waitFor({ timeout: 20_000 });
      expect(answered).toBe(true);
    } finally {
      await page.unroute(terminalsList, late);
      stopAgent?.();
      stopAgent = undefined;
    }
  });

  it('opens a settlement with a planted discrepancy and downloads its CSV', async () => {
    const tenantId = (await session.owner.terminal.findUniqueOrThrow({ where: { id: terminalId } })).tenantId;
    const batch = '00000000-0000-4000-8000-000000000915';
    const planted = await session.owner.settlement.create({
      data: {
        tenantId,
        terminalId,
        storeId,
        businessDate: new Date('2026-03-02T00:00:00Z'),
        status: 'COMPLETED',
        trigger: 'manual',
        runKey: 'console-planted',
        attempts: 1,
        startedAt: new Date(),
        completedAt: new Date(),
        outcome: 'closed_with_mismatch',
        hasDiscrepancies: true,
        discrepancies: [{ batch, kind: 'amount_mismatch', bucket: 'debit', ours: 700, terminal: 0 }],
      },
    });
    await nav('Settlements').click();
    await page.getByTestId('calendar-month').waitFor();
    await page.goto(`${origin}/console/#/settlements?store=${storeId}&month=2026-03`);
    const day = page.getByRole('grid', { name: 'Settlements of Store on Main St, March 2026' }).locator('button[data-day="2026-03-02"]');
    await day.and(page.locator('[data-state="discrepancies"]')).waitFor();
    await expect(day.getAttribute('aria-label')).resolves.toBe('Monday 2 March 2026: 1 discrepancy');
    await day.click();
    const opened = page.getByTestId('open-day');
    await expect(opened.getByTestId('discrepancy-count').textContent()).resolves.toBe('1');
    await opened.getByTestId('discrepancies').getByText('amount_mismatch').waitFor();
    await screenshot(page, 'settlement');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('csv').click()]);
    expect(download.suggestedFilename()).toBe(`settlement-${planted.id}-discrepancies.csv`);
    const csv = await readFile((await download.path())!, 'utf8');
    expect(csv.split('\r\n')).toEqual([
      'settlement_id,terminal_id,business_date,batch,kind,bucket,direction,ours,terminal,amount,operation_id,rrn,reference,detail',
      `${planted.id},${terminalId},2026-03-02,${batch},amount_mismatch,debit,,700,0,,,,,`,
      '',
    ]);
  });

  it('shows a store month as a calendar, coloured and worded per day, walked with the keyboard; re-runs a failed day', async () => {
    const tenantId = (await session.owner.terminal.findUniqueOrThrow({ where: { id: terminalId } })).tenantId;
    const plant = (date: string, status: 'COMPLETED' | 'FAILED' | 'RUNNING') =>
      session.owner.settlement.create({
        data: {
          tenantId,
          terminalId,
          storeId,
          businessDate: new Date(`${date}T00:00:00Z`),
          status,
          trigger: 'schedule',
          runKey: `console-${date}`,
          attempts: 1,
        },
      });
    await plant('2026-02-02', 'COMPLETED');
    await plant('2026-02-03', 'FAILED');
    await plant('2026-02-04', 'RUNNING');
    await page.goto(`${origin}/console/#/settlements?store=${storeId}&month=2026-02`);
    const grid = page.getByRole('grid', { name: 'Settlements of Store on Main St, February 2026' });
    const day = (date: string) => grid.locator(`button[data-day="${date}"]`);
    await day('2026-02-03').and(page.locator('[data-state="failed"]')).waitFor();
    const labels = await Promise.all(['2026-02-02', '2026-02-03', '2026-02-04', '2026-02-05'].map((d) => day(d).getAttribute('aria-label')));
    expect(labels).toEqual([
      'Monday 2 February 2026: settled',
      'Tuesday 3 February 2026: failed',
      'Wednesday 4 February 2026: in progress',
      'Thursday 5 February 2026: no settlement',
    ]);
    // Colour is never the only cue: each day also says its state in words.
    await expect(day('2026-02-03').textContent()).resolves.toContain('failed');
    await screenshot(page, 'settlements-calendar');
    // Tablet width: the month still fits, nothing scrolls sideways.
    await page.setViewportSize({ width: 768, height: 1024 });
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(768);
    await page.setViewportSize({ width: 1366, height: 900 });

    // One day is in the tab order; the arrow keys move by day and week, Page Down / Up by month.
    const focused = () => page.evaluate<string | undefined>('document.activeElement?.dataset?.day');
    await page.getByRole('button', { name: 'This month' }).focus();
    await page.keyboard.press('Tab');
    await expect(focused()).resolves.toBe('2026-02-01');
    await page.keyboard.press('ArrowRight');
    await expect(focused()).resolves.toBe('2026-02-02');
    await page.keyboard.press('ArrowDown');
    await expect(focused()).resolves.toBe('2026-02-09');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('End');
    await expect(focused()).resolves.toBe('2026-02-08');
    await page.keyboard.press('PageDown');
    await page.getByRole('grid', { name: 'Settlements of Store on Main St, March 2026' }).waitFor();
    await expect(focused()).resolves.toBe('2026-03-01');
    await page.keyboard.press('PageUp');
    await day('2026-02-03').and(page.locator('[data-state="failed"]')).waitFor();
    await expect(focused()).resolves.toBe('2026-02-01');
    for (const key of ['ArrowRight', 'ArrowRight', 'Enter']) await page.keyboard.press(key);
    const opened = page.getByTestId('open-day');
    await opened.getByRole('heading', { name: /Tuesday 3 February 2026/ }).waitFor();
    await expect(opened.getByTestId('settlement-status').textContent()).resolves.toBe('failed');
    expect(page.url()).toContain('day=2026-02-03');

    await opened.getByRole('button', { name: 'Re-run the day' }).click();
    await expect(page.getByTestId('notice').textContent()).resolves.toContain('Re-run started');
    // The re-run is the day's latest run: pending (no worker here), so the day is in progress again.
    await day('2026-02-03').and(page.locator('[data-state="running"]')).waitFor();
    await expect(opened.getByTestId('settlement-status').textContent()).resolves.toBe('pending');
    const runs = await session.owner.settlement.findMany({
      where: { terminalId, businessDate: new Date('2026-02-03T00:00:00Z') },
      orderBy: { createdAt: 'asc' },
    });
    expect(runs.map((r) => `${r.trigger}:${r.status}`)).toEqual(['schedule:FAILED', 'manual:PENDING']);
  });

  it('plots the last 24 h from the stats endpoint (aggregated in PostgreSQL)', async () => {
    await nav('Plots').click();
    await expect(page.getByTestId('plots-total').textContent()).resolves.toMatch(/^2 operations since/);
    await expect(page.locator('#plot-timing canvas').count()).resolves.toBe(1);
    await expect(page.locator('#plot-timing .u-legend').textContent()).resolves.toContain('joinproto p99');
    await screenshot(page, 'plots');
    const bad = await session
      .http()
      .get('/v1/stats/operations?hours=0')
      .set({ Authorization: `Bearer ${adminKey}` });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
  });

  it('lists API keys (creating one shows it once) and the audit log', async () => {
    await nav('API keys').click();
    await page.getByRole('cell', { name: 'dashboard' }).waitFor();
    await page.getByLabel('Name').fill('till 7');
    await page.getByLabel('Role').selectOption('read');
    await page.getByRole('button', { name: 'Create key' }).click();
    await expect(page.getByTestId('new-key').textContent()).resolves.toMatch(/^pok_/);
    await page.getByRole('cell', { name: 'till 7' }).waitFor();
    await screenshot(page, 'api-keys');
    await nav('Audit log').click();
    await page.getByRole('cell', { name: 'api_key.create' }).first().waitFor();
    await page.getByRole('cell', { name: 'store.create' }).waitFor();
    await screenshot(page, 'audit-log');
  });

  it('shows webhooks, wallet payments and campaigns', async () => {
    await post('/v1/webhooks', { url: 'https://hooks.example.com/payorch', eventTypes: ['operation.completed'] });
    await nav('Webhooks').click();
    await page.getByRole('cell', { name: 'https://hooks.example.com/payorch' }).waitFor();
    await page.getByRole('button', { name: 'Delivery log' }).click();
    await page.getByRole('heading', { name: 'Deliveries to https://hooks.example.com/payorch' }).waitFor();
    await screenshot(page, 'webhooks');
    await nav('Wallet payments').click();
    await page.getByText('No wallet payment.').waitFor();
    await nav('Campaigns').click();
    await page.getByText('No campaign.').waitFor();
  });

  it("shows the API's 403 clearly to a key without the scope a page needs", async () => {
    const narrow = await session.admin.createApiKey({
      tenantId: (await session.owner.terminal.findUniqueOrThrow({ where: { id: terminalId } })).tenantId,
      name: 'fleet only',
      scopes: ['terminals:read', 'stores:read', 'agents:read', 'events:read'],
    });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, origin, narrow.apiKey);
    await row().waitFor();
    await nav('Live operations').click();
    await expect(page.getByTestId('notice').textContent()).resolves.toContain('Not allowed (403) FORBIDDEN: API key lacks scope(s): operations:read');
    // And what it means and what to do, inside the same alert.
    await expect(page.getByTestId('notice').getByTestId('notice-hint').textContent()).resolves.toMatch(
      /^The API key lacks a scope this needs.*Sign in with a key that holds the scope the message names/,
    );
  });

  it('a read key sees everything but cannot take a payment, refund or re-run', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, origin, readKey);
    await expect(page.getByTestId('role').textContent()).resolves.toContain('read');
    await row().waitFor();
    await expect(row().getByRole('link', { name: 'Take a payment' }).count()).resolves.toBe(0);
    await nav('Take a payment').click();
    await page.getByTestId('pay-forbidden').waitFor();
    expect(await page.getByTestId('pay-submit').isDisabled()).toBe(true);
    await screenshot(page, 'take-a-payment-read-key');
    await nav('Live operations').click();
    await page.locator('article.op').nth(1).waitFor();
    for (const button of await page.getByRole('button', { name: /^(Refund|Void)$/ }).all()) expect(await button.isDisabled()).toBe(true);
    // The API agrees: the same request with this key is a 403 the console would show.
    const res = await session
      .http()
      .post(`/v1/terminals/${terminalId}/operations`)
      .set({ Authorization: `Bearer ${readKey}` })
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 100 });
    expect(res.status).toBe(403);
  });
});

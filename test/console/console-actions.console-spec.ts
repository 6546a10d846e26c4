import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import type { Browser, Page } from 'playwright-core';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { loadConfig, workerConfigSchema } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { type AssistSandbox, SANDBOX_MERCHANT, startAssistSandbox, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { InProcessDispatcher } from '../e2e/support/in-process-dispatcher';
import { buildConsole, consolePage, launchBrowser, screenshot, signIn } from './support/console-browser';

const APPLE_PAY_TOKEN = {
  version: 'EC_v1',
  data: 'QXBwbGVQYXlFbmNyeXB0ZWREYXRhRm9yVGVzdHM=',
  signature: 'ZHVtbXktc2lnbmF0dXJl',
  header: { ephemeralPublicKey: 'ZHVtbXk=', publicKeyHash: 'ZHVtbXk=', transactionId: 'abc123' },
};

/**
 * The console's actions, clicked in Debian's Chromium: operation void / cancel / manual resolution of an
 * `unknown`, wallet capture / release / refund against the Assist sandbox, webhook redelivery after a failed
 * delivery, campaign pause / resume. The gateway drives two Joinproto simulators through the in-process
 * dispatcher: Checkout 1 (amount xx.55 waits for the card until interrupted, however long a person takes to
 * click) and Checkout 2, whose driver gives up after 300 ms and whose simulator loses the answer to 42.42,
 * so that operation is unknown. The worker delivers webhooks (one attempt, so a 500 fails the delivery).
 */
describe('ops console actions', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let sim: JoinprotoTerminalSimulator;
  let lossy: JoinprotoTerminalSimulator;
  let sandbox: AssistSandbox;
  let worker: INestApplication;
  let receiver: Server;
  let hookUrl: string;
  /** Requests the webhook receiver got (the event id of each), and how many more it answers with 500. */
  const received: string[] = [];
  let failNext = 0;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let origin: string;
  let auth: { Authorization: string };
  let storeId: string;
  let terminalId: string;
  let lossyTerminalId: string;
  let merchantId: string;

  const post = (path: string, body: object) => session.http().post(path).set(auth).set('Idempotency-Key', idem()).send(body);
  const nav = (name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });
  const card = (id: string) => page.locator(`article.op[data-operation="${id}"]`);
  const stateOf = (id: string, state: string) =>
    card(id)
      .getByTestId('op-state')
      .filter({ hasText: new RegExp(`^${state}$`) })
      .waitFor({ timeout: 20_000 });
  /** Starts a purchase through the API (not the console), `wait` ms for its outcome. */
  const purchase = async (amount: number, wait = 5000, terminal = terminalId) => {
    const res = await session
      .http()
      .post(`/v1/terminals/${terminal}/operations?wait=${wait}`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount, currency: 'RUB' });
    if (res.status !== 201) throw new Error(`purchase not started: ${JSON.stringify(res.body)}`);
    return res.body as { id: string; state: string };
  };

  beforeAll(async () => {
    buildConsole();
    sandbox = await startAssistSandbox();
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    await session.start({ WEBHOOK_ALLOW_HTTP: 'true', ASSIST_TIMEOUT_MS: '1000', WALLET_RESOLVE_DELAY_MS: '100', WALLET_RESOLVE_BACKOFF_MS: '200' });
    origin = `http://127.0.0.1:${(session.app.getHttpServer().address() as AddressInfo).port}`;

    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(String(req.headers['payorch-event-id']));
        res.statusCode = failNext > 0 ? 500 : 204;
        failNext = Math.max(0, failNext - 1);
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/payorch`;

    worker = await createWorkerApp(
      loadConfig('settlement-worker', workerConfigSchema, {
        DATABASE_APP_URL: session.testDb.appUrl,
        REDIS_URL: session.config.REDIS_URL,
        REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
        PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
        LOG_LEVEL: 'silent',
        // The webhook receiver and the Assist sandbox listen on loopback, which only the operator can allow.
        EGRESS_ALLOW_CIDRS: '127.0.0.0/8, ::1',
        WEBHOOK_ALLOW_HTTP: 'true',
        WEBHOOK_ATTEMPTS: '1',
        ASSIST_ORDERSTATE_TIMEOUT_MS: '1000',
        // No background sweep acts on its own here: what changes is what the test clicks.
        WEBHOOK_SWEEP_INTERVAL_MS: '600000',
        RECOVERY_INTERVAL_MS: '600000',
        SETTLEMENT_SYNC_INTERVAL_MS: '600000',
        WALLET_SWEEP_INTERVAL_MS: '600000',
        WALLET_SWEEP_OLDER_THAN_MS: '600000',
      }),
      createLogger({ name: 'test', level: 'silent' }),
    );
    await worker.init();

    const tenant = await session.tenant('Console Actions', ['admin']);
    auth = { Authorization: `Bearer ${tenant.apiKey}` };
    storeId = (await post('/v1/stores', { name: 'Store on Main St', timeZone: 'UTC' })).body.id;
    const terminal = async (name: string) => {
      const res = await post('/v1/terminals', { name, storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } });
      if (res.status !== 201) throw new Error(`terminal not created: ${JSON.stringify(res.body)}`);
      return res.body.id as string;
    };
    terminalId = await terminal('Checkout 1');
    lossyTerminalId = await terminal('Checkout 2');
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    dispatcher.route(terminalId, { port: (await sim.listen(0)).port });
    lossy = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, dropResponse: (r) => 'amount' in r && r.amount === 4242 });
    dispatcher.route(lossyTerminalId, { port: (await lossy.listen(0)).port, options: { commandTimeoutMs: 300 } });
    const merchant = await post('/v1/assist-merchants', {
      name: 'Shop at Assist',
      serverUrl: sandbox.url,
      merchantId: SANDBOX_MERCHANT.merchantId,
      login: SANDBOX_MERCHANT.login,
      password: SANDBOX_MERCHANT.password,
      salt: SANDBOX_MERCHANT.salt,
      privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
    });
    if (merchant.status !== 201) throw new Error(`merchant not created: ${JSON.stringify(merchant.body)}`);
    merchantId = merchant.body.id;

    browser = await launchBrowser();
    ({ page, problems } = await consolePage(browser, origin));
    await signIn(page, origin, tenant.apiKey);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.close();
    await dispatcher?.close();
    await sim?.close();
    await lossy?.close();
    await new Promise((resolve) => receiver?.close(resolve));
    await session.stop();
    await sandbox?.close();
  });

  afterEach(() => {
    expect(problems.splice(0)).toEqual([]);
  });

  it('voids an approved purchase and cancels one waiting for the card, from Live operations', async () => {
    await nav('Live operations').click();
    await page.getByTestId('stream-state').filter({ hasText: 'live' }).waitFor();
    const paid = await purchase(1500);
    expect(paid.state).toBe('approved');
    await stateOf(paid.id, 'approved');
    await card(paid.id).getByRole('button', { name: 'Void' }).click();
    const voided = page.locator('article.op').filter({ has: page.locator('h3', { hasText: /^\s*void / }) });
    await voided
      .getByTestId('op-state')
      .filter({ hasText: /^approved$/ })
      .waitFor({ timeout: 20_000 });
    await expect(voided.textContent()).resolves.toContain(`for ${paid.id.slice(0, 8)}`);

    // 20.55: the terminal waits for a card until it is interrupted.
    const waiting = await purchase(2055, 0);
    await stateOf(waiting.id, 'in_progress');
    await card(waiting.id).getByRole('button', { name: 'Cancel' }).click();
    await stateOf(waiting.id, 'canceled');
    await screenshot(page, 'operations-void-cancel');
    const states = await session.owner.terminalOperation.findMany({
      where: { terminalId },
      orderBy: { createdAt: 'asc' },
      select: { type: true, state: true },
    });
    expect(states.map((o) => `${o.type}:${o.state}`)).toEqual(['PURCHASE:APPROVED', 'VOID:APPROVED', 'PURCHASE:CANCELED']);
  });

  it('resolves an unknown operation by hand, and its timeline shows every recorded step with masked data', async () => {
    // 42.42: the terminal approves but its answer is lost, so the operation is unknown (never failed).
    const lost = await purchase(4242, 5000, lossyTerminalId);
    expect(lost.state).toBe('unknown');
    await page.getByLabel('State').selectOption('unknown');
    await stateOf(lost.id, 'unknown');
    const c = card(lost.id);
    await c.getByRole('button', { name: 'Resolve…' }).click();
    await c.getByLabel('True outcome').selectOption('approved');
    await c.getByLabel('What was checked').fill('terminal journal shows card 4111 1111 1111 1111 approved');
    await c.getByLabel('RRN (optional)').fill('123456789012');
    await c.getByLabel('Approval code (optional)').fill('A1B2C3');
    await c.getByRole('button', { name: 'Resolve', exact: true }).click();
    await stateOf(lost.id, 'approved');
    await expect(page.getByTestId('notice').textContent()).resolves.toContain('Resolved');

    await c.getByRole('button', { name: 'Timeline' }).click();
    const timeline = c.locator('ol.timeline');
    await timeline.locator('li[data-kind="resolved_manually"]', { hasText: 'unknown → approved' }).waitFor();
    const steps = await timeline.locator('li').evaluateAll((items) => items.map((li) => li.getAttribute('data-kind')));
    expect(steps[0]).toBe('created');
    expect(steps.at(-1)).toBe('resolved_manually');
    // The note's card number is masked by the API before the console ever sees it.
    await expect(timeline.textContent()).resolves.toContain('411111******1111');
    expect(await timeline.textContent()).not.toContain('4111 1111 1111 1111');
    // The note is stored masked too, so the card's result line (the operation's stateReason) never shows it.
    await expect(c.getByTestId('op-result').textContent()).resolves.toMatch(/auth A1B2C3 · RRN 123456789012 · .*411111\*{6}1111/);
    expect(await page.locator('main').textContent()).not.toContain('4111 1111 1111 1111');
    await screenshot(page, 'operation-timeline');
    expect(lossy.journal.filter((e) => e.amount === 4242)).toHaveLength(1);
  });

  /** A wallet payment through the API (Apple Pay token, the Assist sandbox); 201 expected. */
  const pay = async (orderNumber: string, amount: number, twoStage = false) => {
    const res = await post('/v1/wallet-payments', {
      merchantId,
      orderNumber,
      amount,
      currency: 'RUB',
      tokenType: 'apple_pay',
      token: APPLE_PAY_TOKEN,
      customer: { lastname: 'Ivanov', firstname: 'Ivan', email: 'ivan@example.com' },
      twoStage,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; orderNumber: string; state: string; assist: { billNumber: string } | null };
  };

  it('captures part of a two-stage wallet payment, releases the rest, refunds it; refunds part of a one-stage one', async () => {
    expect((await pay('CONSOLE-2STAGE', 10_000, true)).state).toBe('authorized');
    expect((await pay('CONSOLE-1STAGE', 5_000, false)).state).toBe('approved');
    await nav('Wallet payments').click();
    const state = page.getByTestId('wallet-state');
    const amount = page.getByLabel('Amount (empty = all)');
    const act = async (button: 'Capture' | 'Cancel / refund', value: string, expected: string) => {
      await amount.fill(value);
      await page.getByRole('button', { name: button, exact: true }).click();
      await state.filter({ hasText: new RegExp(`^${expected}$`) }).waitFor({ timeout: 20_000 });
    };

    await page.getByRole('button', { name: 'CONSOLE-2STAGE' }).click();
    await state.filter({ hasText: /^authorized$/ }).waitFor();
    await act('Capture', '40', 'partially_captured');
    await act('Cancel / refund', '', 'approved'); // releases the 60.00 not captured
    await screenshot(page, 'wallet');
    await act('Cancel / refund', '', 'refunded'); // refunds the 40.00 captured
    const ops = page.getByTestId('wallet-operations').locator('tbody tr');
    await expect(ops.allTextContents()).resolves.toEqual([
      expect.stringMatching(/capture\s*40\.00 RUB\s*succeeded/),
      expect.stringMatching(/cancel authorization\s*60\.00 RUB\s*succeeded/),
      expect.stringMatching(/refund\s*40\.00 RUB\s*succeeded/),
    ]);

    await page.getByRole('button', { name: 'CONSOLE-1STAGE' }).click();
    await page.getByRole('heading', { name: /^Order CONSOLE-1STAGE/ }).waitFor();
    await state.filter({ hasText: /^approved$/ }).waitFor();
    expect(await page.getByRole('button', { name: 'Capture', exact: true }).isDisabled()).toBe(true); // one-stage: nothing to capture
    await act('Cancel / refund', '20', 'partially_refunded');
    // Each click reached Assist exactly once.
    const journal = (order: string) => (sandbox.orders.get(order)?.operations ?? []).map((op) => `${op.operationtype}:${op.amount}`);
    expect(journal('CONSOLE-2STAGE')).toEqual(['100:100.00', '200:40.00', '300:60.00', '300:40.00']);
    expect(journal('CONSOLE-1STAGE')).toEqual(['100:50.00', '300:20.00']);
  });

  it('resolves an unknown wallet payment and an unknown capture by hand, shows who decided, and shows the 409 of a payment decided meanwhile', async () => {
    const get = async (id: string) => (await session.http().get(`/v1/wallet-payments/${id}`).set(auth)).body;
    // Every orderstate answer fails its checkvalue: the worker's resolution job reads and reads but can never tell, so
    // what is unknown stays unknown until a person decides (docs/wallet-payments.md §5, "Human resolution").
    sandbox.setMode('bad-checkvalue', { endpoint: 'orderstate' });
    try {
      // 100.05: charged, but Assist answered 2/1.
      const open = await pay('CONSOLE-UNKNOWN', 10_005);
      expect(open.state).toBe('unknown');
      const race = await pay('CONSOLE-RACE', 20_005);
      expect(race.state).toBe('unknown');
      const held = await pay('CONSOLE-LOST-CAPTURE', 10_000, true);
      expect(held.state).toBe('authorized');
      sandbox.setMode('lost-answer', { endpoint: 'charge', times: 1 });
      const capture = await session.http().post(`/v1/wallet-payments/${held.id}/capture`).set(auth).set('Idempotency-Key', idem()).send({ amount: 4_000 });
      expect(capture.body).toMatchObject({ state: 'authorized', operations: [{ kind: 'capture', state: 'unknown' }] });
      const captureId = capture.body.operations[0].id as string;
      await waitFor(async () => (await get(open.id)).error?.code === 'CHECKVALUE_MISMATCH', {
        what: 'the job to read an untrusted orderstate',
        timeoutMs: 20_000,
      });
      // The capture's job too: its operation's code is then the same (and the error-code filter matches it).
      await waitFor(async () => (await get(held.id)).operations[0]?.error?.code === 'CHECKVALUE_MISMATCH', {
        what: "the job to read the capture's untrusted orderstate",
        timeoutMs: 20_000,
      });

      // A read key sees the open payment (opened from its link) but cannot resolve it.
      const readKey = (
        await session.admin.createApiKey({
          tenantId: (await session.owner.walletPayment.findUniqueOrThrow({ where: { id: open.id } })).tenantId,
          name: 'read',
          scopes: ['read'],
        })
      ).apiKey;
      const reader = await consolePage(browser, origin);
      try {
        await signIn(reader.page, origin, readKey);
        await reader.page.goto(`${origin}/console/#/wallet?payment=${open.id}`);
        await reader.page.getByRole('heading', { name: /^Order CONSOLE-UNKNOWN/ }).waitFor();
        const button = reader.page.getByRole('button', { name: 'Resolve payment…' });
        expect(await button.isDisabled()).toBe(true);
        expect(await button.getAttribute('title')).toBe('Needs an operate or admin key');
        expect(reader.problems).toEqual([]);
      } finally {
        await reader.context.close();
      }

      // The filters: what needs a person, by error code and by an operation's state (both in the URL).
      await nav('Wallet payments').click();
      const orders = page.locator('tr[data-wallet-payment] button.link');
      await page.getByRole('button', { name: 'CONSOLE-UNKNOWN' }).waitFor();
      await page.getByLabel('Error code').fill('checkvalue_mismatch');
      await page.getByRole('button', { name: 'Filter', exact: true }).click();
      // The payments whose own code it is, and the one whose capture's code it is.
      await waitFor(async () => (await orders.allTextContents()).sort().join() === 'CONSOLE-LOST-CAPTURE,CONSOLE-RACE,CONSOLE-UNKNOWN', {
        what: 'the list filtered by error code',
      });
      expect(page.url()).toContain('#/wallet?errorCode=CHECKVALUE_MISMATCH');
      expect(await page.getByLabel('Error code').inputValue()).toBe('CHECKVALUE_MISMATCH');
      await page.goto(`${origin}/console/#/wallet?operationState=unknown`);
      await waitFor(async () => (await orders.allTextContents()).join() === 'CONSOLE-LOST-CAPTURE', { what: 'the list filtered by operation state' });
      expect(await page.getByLabel('Operation state').inputValue()).toBe('unknown');

      // The unknown capture, resolved as succeeded with its billnumber: the payment moves with it.
      await page.getByRole('button', { name: 'CONSOLE-LOST-CAPTURE' }).click();
      const row = page.locator(`tr[data-wallet-operation="${captureId}"]`);
      await row.getByRole('button', { name: 'Resolve…' }).click();
      const form = page.getByTestId('resolve-form');
      await expect(
        form
          .getByLabel('True outcome')
          .locator('option')
          .evaluateAll((o) => o.map((x) => x.getAttribute('value'))),
      ).resolves.toEqual(['succeeded', 'failed']);
      await form.getByLabel('True outcome').selectOption('succeeded');
      await form.getByLabel('What was checked').fill('back office: Charge 40.00 Success');
      const chargeBill = sandbox.orders.get('CONSOLE-LOST-CAPTURE')!.operations[1]!.billnumber;
      await form.getByLabel('Billnumber (optional)').fill(chargeBill);
      await form.getByRole('button', { name: 'Resolve', exact: true }).click();
      await expect(page.getByTestId('resolution-confirmation').textContent()).resolves.toContain(
        'Record the capture of 40.00 RUB on order CONSOLE-LOST-CAPTURE as succeeded',
      );
      await screenshot(page, 'wallet-resolve');
      const sent = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith(`/operations/${captureId}/resolve`));
      await page.getByRole('button', { name: 'Confirm resolution' }).click();
      expect((await sent).headers()['idempotency-key']).toMatch(/^console-[0-9a-f-]{36}$/);
      await page
        .getByTestId('wallet-state')
        .filter({ hasText: /^partially_captured$/ })
        .waitFor({ timeout: 20_000 });
      await row
        .getByTestId('wallet-operation-state')
        .filter({ hasText: /^succeeded$/ })
        .waitFor();
      const opResolution = row.getByTestId('wallet-operation-resolution');
      await expect(opResolution.textContent()).resolves.toMatch(
        /Resolved by\s*a person: API key [0-9a-f]{8} \(this key\)[\s\S]*Note\s*back office: Charge 40\.00 Success/,
      );
      await expect(opResolution.textContent()).resolves.toContain(chargeBill);
      expect(await page.getByTestId('resolve-form').count()).toBe(0);
      await expect(page.getByTestId('notice').textContent()).resolves.toContain(`Resolved by hand: operation ${captureId.slice(0, 8)} is succeeded`);

      // The unknown payment, resolved as approved: only the paid verdict of a one-stage payment is offered.
      await page.goto(`${origin}/console/#/wallet?state=unknown&payment=${open.id}`);
      await page.getByRole('heading', { name: /^Order CONSOLE-UNKNOWN/ }).waitFor();
      await page.getByRole('button', { name: 'Resolve payment…' }).click();
      await expect(
        form
          .getByLabel('True outcome')
          .locator('option')
          .evaluateAll((o) => o.map((x) => x.getAttribute('value'))),
      ).resolves.toEqual(['approved', 'declined', 'rejected']);
      const bill = sandbox.orders.get('CONSOLE-UNKNOWN')!.billnumber;
      await form.getByLabel('True outcome').selectOption('approved');
      await form.getByLabel('What was checked').fill('back office: order Approved 100.05 RUB, card 4111 1111 1111 1111');
      await form.getByLabel('Billnumber (optional)').fill(bill);
      await form.getByRole('button', { name: 'Resolve', exact: true }).click();
      await expect(page.getByTestId('resolution-confirmation').textContent()).resolves.toContain(
        'Record order CONSOLE-UNKNOWN as approved: 100.05 RUB taken as paid (authorised and captured).',
      );
      await page.getByRole('button', { name: 'Confirm resolution' }).click();
      await page
        .getByTestId('wallet-state')
        .filter({ hasText: /^approved$/ })
        .waitFor({ timeout: 20_000 });
      const shown = await page.getByTestId('wallet-resolution').textContent();
      expect(shown).toMatch(/Resolved by\s*a person: API key [0-9a-f]{8} \(this key\)/);
      // The note's card number is masked by the API before the console ever sees it.
      expect(shown).toContain('back office: order Approved 100.05 RUB, card 411111******1111');
      expect(shown).toContain(bill);
      expect(await page.locator('main').textContent()).not.toContain('4111 1111 1111 1111');
      const stored = await get(open.id);
      expect(stored).toMatchObject({ state: 'approved', resolution: { by: 'human', billNumber: bill }, assist: { billNumber: bill, source: 'manual' } });
      await expect(page.locator(`time[datetime="${stored.resolution.at}"]`).count()).resolves.toBe(1);
      await screenshot(page, 'wallet-resolved');

      // Decided by someone else between the form and the confirmation: the API's 409 is shown, nothing changes.
      await page.goto(`${origin}/console/#/wallet?payment=${race.id}`);
      await page.getByRole('heading', { name: /^Order CONSOLE-RACE/ }).waitFor();
      await page.getByRole('button', { name: 'Resolve payment…' }).click();
      await form.getByLabel('True outcome').selectOption('declined');
      await form.getByLabel('What was checked').fill('back office: Declined');
      await form.getByRole('button', { name: 'Resolve', exact: true }).click();
      await page.getByTestId('resolution-confirmation').waitFor();
      const other = await session
        .http()
        .post(`/v1/wallet-payments/${race.id}/resolve`)
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ state: 'rejected', note: 'no order at Assist' });
      expect(other.status).toBe(200);
      await page.getByRole('button', { name: 'Confirm resolution' }).click();
      await expect(page.getByTestId('notice').textContent()).resolves.toMatch(/Error 409 WALLET_PAYMENT_NOT_UNKNOWN: .+/);
      await expect(page.getByTestId('notice-hint').textContent()).resolves.toMatch(
        /another person decided first\. Nothing to decide: the page shows what it became\.$/,
      );
      await page
        .getByTestId('wallet-state')
        .filter({ hasText: /^rejected$/ })
        .waitFor({ timeout: 20_000 });
      expect(await page.getByTestId('resolution-confirmation').count()).toBe(0);
      await expect(page.getByTestId('wallet-resolution').textContent()).resolves.toContain('no order at Assist');
      expect(await get(race.id)).toMatchObject({ state: 'rejected', resolution: { note: 'no order at Assist' } });
      // The browser logs the refused request: that one, and nothing else, is expected.
      const refused = problems.findIndex((p) => /status of 409/.test(p));
      expect(refused).toBeGreaterThanOrEqual(0);
      problems.splice(refused, 1);

      const audit = await session.owner.auditLog.findMany({
        where: { resourceId: { in: [open.id, held.id, race.id] }, action: { startsWith: 'wallet_payment.resolve' } },
        select: { action: true, resourceId: true },
      });
      expect(audit.map((a) => `${a.action}:${a.resourceId}`).sort()).toEqual(
        [`wallet_payment.resolve:${open.id}`, `wallet_payment.resolve:${race.id}`, `wallet_payment.resolve_operation:${held.id}`].sort(),
      );
      // A person's verdict sends nothing to Assist: one payment each, one (lost) charge.
      expect(sandbox.orders.get('CONSOLE-LOST-CAPTURE')!.operations.map((op) => `${op.operationtype}:${op.amount}`)).toEqual(['100:100.00', '200:40.00']);
    } finally {
      sandbox.setMode('normal', { endpoint: 'orderstate' });
    }
  }, 60_000);

  it("shows a webhook endpoint's failed delivery and redelivers it", async () => {
    const hook = await post('/v1/webhooks', { url: hookUrl, eventTypes: ['operation.completed'], description: 'till backend' });
    expect(hook.status).toBe(201);
    failNext = 1;
    const paid = await purchase(1700);
    expect(paid.state).toBe('approved');
    await nav('Webhooks').click();
    await page.getByRole('cell', { name: hookUrl }).waitFor();
    await page.getByRole('button', { name: 'Delivery log' }).click();
    const status = page.getByTestId('delivery-status');
    // The log follows the delivery while the worker works on it: one attempt, answered 500.
    await status.filter({ hasText: /^failed$/ }).waitFor({ timeout: 20_000 });
    await page.getByRole('cell', { name: /^500/ }).waitFor();
    await page.getByRole('button', { name: 'Redeliver' }).click();
    await expect(page.getByTestId('notice').textContent()).resolves.toContain('queued again');
    await status.filter({ hasText: /^delivered$/ }).waitFor({ timeout: 20_000 });
    await screenshot(page, 'webhooks-redelivered');
    expect(received).toHaveLength(2);
    expect(received[0]).toBe(received[1]); // the same event, delivered again
  });

  it('pauses and resumes a campaign', async () => {
    // A maintenance window hours away: the campaign runs (waits for its window) and nothing reaches the terminal.
    const hour = (new Date().getUTCHours() + 6) % 24;
    const window = { start: `${String(hour).padStart(2, '0')}:00`, end: `${String(hour).padStart(2, '0')}:30` };
    const created = await post('/v1/campaigns', {
      name: 'Key rollout',
      operation: { type: 'load_keys' },
      selector: { terminalIds: [terminalId] },
      policy: { waveSize: { percent: 100 }, maintenanceWindow: window },
    });
    expect(created.status).toBe(201);
    await nav('Campaigns').click();
    const row = page.locator(`tr[data-campaign="${created.body.id}"]`);
    const state = row.getByTestId('campaign-state');
    await state.filter({ hasText: /^running$/ }).waitFor();
    await row.getByRole('button', { name: 'Pause' }).click();
    await state.filter({ hasText: /^paused$/ }).waitFor();
    await expect(row.textContent()).resolves.toContain('operator');
    await row.getByRole('button', { name: 'Key rollout' }).click();
    await page.getByRole('heading', { name: 'Waves of Key rollout' }).waitFor();
    await screenshot(page, 'campaigns');
    await row.getByRole('button', { name: 'Resume' }).click();
    await state.filter({ hasText: /^running$/ }).waitFor();
    const audit = await session.owner.auditLog.findMany({ where: { resourceId: created.body.id }, orderBy: { createdAt: 'asc' }, select: { action: true } });
    expect(audit.map((a) => a.action)).toEqual(['campaign.create', 'campaign.pause', 'campaign.resume']);
  });
});

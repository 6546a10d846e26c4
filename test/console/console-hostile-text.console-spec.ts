import type { AddressInfo } from 'node:net';

import type { Browser, Page } from 'playwright-core';
import { Redis } from 'ioredis';

import { publishEvent, type PublishedEvent } from '@payorch/db';
import { notifyCommitted } from '@payorch/operations';

import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { buildConsole, consolePage, launchBrowser, signIn } from './support/console-browser';

/**
 * Text the console shows one person that another controls: a tenant's names, descriptions and labels, a
 * hostile terminal's answers (response message, RRN, terminal info, display texts, protocol frames), a
 * webhook receiver's answer, Assist's order data, audit details, the live event stream. Each is markup
 * aimed at the page: it must show as text on every page, nothing of it may become an element or run.
 *
 * Two layers, tested apart: Lit's bindings alone (the CSP bypassed: an injected handler would run) and the
 * gateway's CSP, whose Trusted Types refuse any HTML string put into the page (docs/console.md, "Security headers").
 */
describe('ops console and hostile text', () => {
  const session = new GatewaySession();
  let publisher: Redis;
  let browser: Browser;
  let origin: string;
  let adminKey: string;
  let tenantId: string;
  let storeId: string;
  let terminalId: string;
  let settlementId: string;
  let unknownPaymentId: string;
  let resolvedPaymentId: string;
  let approvedOpId: string;
  let failedOpId: string;
  let runningOpId: string;

  /** Markup that breaks out of an attribute or a text node and runs, tagged with where it was planted. */
  const hostile = (where: string) => `"'><img src=x onerror=__xss.push('${where}')><svg onload=__xss.push('${where}')>`;
  /** The part of `hostile(where)` that must be on the page as text (also inside JSON, which escapes the `"`). */
  const asText = (where: string) => `<img src=x onerror=__xss.push('${where}')>`;

  const post = (path: string, body: object) =>
    session
      .http()
      .post(path)
      .set({ Authorization: `Bearer ${adminKey}` })
      .set('Idempotency-Key', idem())
      .send(body);
  const created = async (path: string, body: object) => {
    const res = await post(path, body);
    if (res.status !== 201) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  /** A committed, numbered event on the tenant's live stream (what a connector's commit publishes). */
  const emit = async (input: Parameters<typeof publishEvent>[2]): Promise<PublishedEvent> => {
    const event = await session.appDb.withTenant(tenantId, (tx) => publishEvent(tx, tenantId, input));
    await session.appDb.eventsSettled();
    await notifyCommitted(publisher, session.config.REDIS_KEY_PREFIX, [event]);
    return event;
  };

  beforeAll(async () => {
    buildConsole();
    await session.start();
    publisher = new Redis(session.config.REDIS_URL);
    origin = `http://127.0.0.1:${(session.app.getHttpServer().address() as AddressInfo).port}`;
    const tenant = await session.tenant('Hostile Chain', ['admin']);
    ({ tenantId, apiKey: adminKey } = tenant);

    // What a tenant's own users type (the API takes any text in names and descriptions).
    const store = await created('/v1/stores', { name: hostile('store-name'), address: hostile('store-address'), timeZone: 'Europe/Moscow' });
    storeId = store.id;
    const agent = await created('/v1/agents', { name: hostile('agent-name'), storeId });
    const terminal = await created('/v1/terminals', {
      name: hostile('terminal-name'),
      storeId,
      agentId: agent.agent.id,
      protocol: 'joinproto',
      connection: { kind: 'tcp', host: '127.0.0.1', port: 9 },
      labels: { lane: hostile('label') },
    });
    terminalId = terminal.id;
    await created('/v1/api-keys', { name: hostile('key-name'), scopes: ['read'] });
    const webhook = await created('/v1/webhooks', {
      url: 'https://hooks.example.com/payorch',
      eventTypes: ['operation.completed'],
      description: hostile('webhook-description'),
    });

    // What a hostile terminal says about itself and in its answers.
    await session.owner.terminal.update({
      where: { id: terminalId },
      data: { terminalId: hostile('tid'), merchantId: hostile('mid'), info: { model: hostile('info-model'), serial: hostile('info-serial') } },
    });
    const operation = (state: 'APPROVED' | 'FAILED' | 'IN_PROGRESS', fields: object) =>
      session.owner.terminalOperation.create({
        data: {
          tenantId,
          terminalId,
          storeId,
          type: 'PURCHASE',
          amount: 1500n,
          currency: 'RUB',
          state,
          idempotencyKey: idem(),
          requestHash: 'hostile',
          ...fields,
        },
      });
    approvedOpId = (
      await operation('APPROVED', {
        responseMessage: hostile('response-message'),
        rrn: hostile('rrn'),
        approvalCode: hostile('approval-code'),
        maskedPan: hostile('masked-pan'),
        completedAt: new Date(),
      })
    ).id;
    failedOpId = (await operation('FAILED', { stateReason: hostile('state-reason'), completedAt: new Date() })).id;
    runningOpId = (await operation('IN_PROGRESS', {})).id;
    await session.owner.operationEvent.createMany({
      data: [
        { tenantId, operationId: approvedOpId, kind: 'progress', data: { text: hostile('step-data') } },
        { tenantId, operationId: approvedOpId, kind: 'frame', data: { direction: 'in', summary: hostile('frame-summary'), masked: hostile('frame-masked') } },
      ],
    });
    settlementId = (
      await session.owner.settlement.create({
        data: {
          tenantId,
          terminalId,
          storeId,
          businessDate: new Date('2026-03-02T00:00:00Z'),
          status: 'COMPLETED',
          trigger: 'manual',
          runKey: 'hostile',
          attempts: 1,
          outcome: hostile('outcome'),
          batches: [{ batchNumber: hostile('batch-number') }],
          hasDiscrepancies: true,
          discrepancies: [{ batch: hostile('batch'), kind: 'amount_mismatch', detail: hostile('discrepancy-detail'), [hostile('column')]: 1 }],
        },
      })
    ).id;

    // What a webhook receiver answers, what Assist says about an order, and a verdict's note.
    const event = await emit({ type: 'operation.completed', subjectType: 'operation', subjectId: approvedOpId, data: { operationId: approvedOpId } });
    await session.owner.webhookDelivery.create({
      data: { tenantId, endpointId: webhook.id, eventId: event.id, status: 'FAILED', attempts: 1, lastStatusCode: 500, lastError: hostile('receiver-answer') },
    });
    const merchant = await session.owner.assistMerchant.create({
      data: { tenantId, merchantId: '700001', name: hostile('merchant'), secretsEncrypted: 'unused', serverUrl: 'https://assist.example.com' },
    });
    const payment = (fields: { orderNumber: string } & Record<string, unknown>) =>
      session.owner.walletPayment.create({
        data: {
          tenantId,
          merchantId: merchant.id,
          amount: 10_000n,
          currency: 'RUB',
          idempotencyKey: idem(),
          requestHash: 'hostile',
          tokenType: 'APPLE_PAY',
          ...fields,
        },
      });
    unknownPaymentId = (
      await payment({
        orderNumber: hostile('order-number'),
        state: 'UNKNOWN',
        error: { code: 'ORDER_NOT_PROVEN', field: null, firstCode: null, secondCode: null, message: hostile('wallet-error'), source: 'assist' },
      })
    ).id;
    resolvedPaymentId = (
      await payment({
        orderNumber: 'ORDER-2',
        state: 'APPROVED',
        assistOrder: { billNumber: hostile('bill-number'), orderState: hostile('order-state'), source: 'manual', duplicate: false, operations: [] },
        resolution: {
          by: 'human',
          at: new Date().toISOString(),
          actor: { type: 'admin', id: hostile('actor') },
          note: hostile('resolution-note'),
          billNumber: hostile('resolution-bill'),
        },
      })
    ).id;

    // A campaign's name, and what the audit log keeps.
    await session.owner.campaign.create({
      data: {
        tenantId,
        name: hostile('campaign-name'),
        operationType: 'LOAD_KEYS',
        policy: {},
        selector: {},
        state: 'PAUSED',
        pauseReason: 'operator',
        idempotencyKey: idem(),
      },
    });
    await session.owner.auditLog.create({
      data: {
        tenantId,
        action: 'terminal.update',
        actorType: 'api_key',
        resourceType: 'terminal',
        resourceId: terminalId,
        details: { note: hostile('audit-details') },
      },
    });
    browser = await launchBrowser();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await publisher?.quit();
    await session.stop();
  });

  /** Elements hostile text would have made, and the handlers that ran (`__xss`, set before the console loads). */
  const INJECTED = `({
    elements: [...document.querySelectorAll('img, svg, iframe, object, embed, script:not([src]), [onerror], [onload], a[href^="javascript:" i]')].map((e) => e.outerHTML),
    ran: window.__xss,
  })`;

  async function expectShownAsText(page: Page, ...where: string[]): Promise<void> {
    for (const w of where)
      await page
        .locator('main')
        .filter({ hasText: asText(w) })
        .waitFor();
    await expect(page.evaluate(INJECTED)).resolves.toEqual({ elements: [], ran: [] });
  }

  /** Every page with planted text, through the real console, signed in with the admin key. */
  async function tour(page: Page): Promise<void> {
    const go = (hash: string) => page.goto(`${origin}/console/${hash}`);
    await page.getByTestId('stream-state').filter({ hasText: 'live' }).waitFor();

    await go('#/fleet');
    await expectShownAsText(page, 'store-name', 'store-address', 'agent-name', 'terminal-name', 'tid');
    // Presence from the live stream: the reason an event carries.
    await emit({ type: 'terminal.offline', subjectType: 'terminal', subjectId: terminalId, data: { terminalId, detail: hostile('live-reason') } });
    await expectShownAsText(page, 'live-reason');

    await go(`#/terminals/${terminalId}`);
    await expectShownAsText(page, 'terminal-name', 'tid', 'mid', 'label', 'info-model', 'info-serial');

    await go('#/operations');
    await expectShownAsText(page, 'response-message', 'rrn', 'approval-code', 'masked-pan', 'state-reason');
    // A display text from the terminal, live, on the card of the operation still running.
    await emit({
      type: 'operation.progress',
      subjectType: 'operation',
      subjectId: runningOpId,
      data: { operationId: runningOpId, progress: 'display', text: hostile('display-text') },
    });
    await page.locator(`article.op[data-operation="${runningOpId}"]`).getByTestId('op-progress').waitFor();
    await expectShownAsText(page, 'display-text');
    await page
      .locator(`article.op[data-operation="${approvedOpId}"]`)
      .getByRole('button', { name: /^Timeline/ })
      .click();
    await expectShownAsText(page, 'step-data', 'frame-summary', 'frame-masked');
    await expect(page.locator(`article.op[data-operation="${failedOpId}"]`).getByTestId('op-result').textContent()).resolves.toContain(asText('state-reason'));

    await go('#/pay');
    await page.getByTestId('pay-submit').waitFor();
    await page
      .locator('select[name="terminal"]')
      .filter({ hasText: asText('terminal-name') })
      .waitFor();
    await expectShownAsText(page, 'terminal-name');

    await go(`#/settlements?store=${storeId}&month=2026-03&day=2026-03-02`);
    await expectShownAsText(page, 'store-name', 'outcome', 'batch-number', 'batch', 'discrepancy-detail', 'column');
    await go(`#/settlements/${settlementId}`);
    await expectShownAsText(page, 'outcome', 'discrepancy-detail', 'column');

    await go(`#/wallet?payment=${unknownPaymentId}`);
    await expectShownAsText(page, 'order-number', 'wallet-error');
    await page.getByRole('button', { name: 'Resolve payment…' }).click();
    await page.getByTestId('resolve-form').waitFor();
    await expect(page.getByTestId('resolve-form').getAttribute('aria-label')).resolves.toBe(`Resolve order ${hostile('order-number')}`);
    await expectShownAsText(page, 'order-number');
    await go(`#/wallet?payment=${resolvedPaymentId}`);
    await expectShownAsText(page, 'bill-number', 'order-state', 'actor', 'resolution-note', 'resolution-bill');

    await go('#/webhooks');
    await expectShownAsText(page, 'webhook-description');
    await page.getByRole('button', { name: 'Delivery log' }).click();
    await expectShownAsText(page, 'receiver-answer');

    await go('#/campaigns');
    await expectShownAsText(page, 'campaign-name');
    // An attribute keeps the whole text as its value: nothing breaks out of it.
    await expect(page.locator('progress').getAttribute('aria-label')).resolves.toBe(`Progress of ${hostile('campaign-name')}`);

    await go('#/audit');
    await expectShownAsText(page, 'audit-details');

    await go('#/api-keys');
    await expectShownAsText(page, 'key-name');

    await go('#/plots');
    await page.locator('#plot-timing canvas').waitFor();
    await expectShownAsText(page);
  }

  for (const [layer, bypassCSP] of [
    ['escaping alone (the CSP bypassed)', true],
    ['escaping and the CSP', false],
  ] as const) {
    it(`shows every planted text as text, on every page and live: ${layer}`, async () => {
      const { context, page, problems } = await consolePage(browser, origin, undefined, { bypassCSP });
      try {
        await context.addInitScript('window.__xss = []');
        await signIn(page, origin, adminKey);
        await tour(page);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });
  }

  it("refuses an HTML string put into the console's page (Trusted Types): only Lit's templates make markup", async () => {
    const { context, page, problems } = await consolePage(browser, origin);
    try {
      await context.addInitScript('window.__xss = []');
      await signIn(page, origin, adminKey);
      await page.getByRole('heading', { name: 'Fleet' }).waitFor();
      // What a raw sink would do with a terminal's name: the browser refuses it before parsing.
      const sinks = await page.evaluate(`(() => {
        const name = ${JSON.stringify(hostile('raw-sink'))};
        const main = document.querySelector('main');
        const tries = {
          innerHTML: () => { main.querySelector('h1').innerHTML = name; },
          insertAdjacentHTML: () => main.insertAdjacentHTML('beforeend', name),
          outerHTML: () => { main.querySelector('h1').outerHTML = name; },
        };
        return Object.fromEntries(Object.entries(tries).map(([sink, run]) => {
          try { run(); return [sink, 'parsed']; } catch (e) { return [sink, e.name]; }
        }));
      })()`);
      expect(sinks).toEqual({ innerHTML: 'TypeError', insertAdjacentHTML: 'TypeError', outerHTML: 'TypeError' });
      await expect(page.evaluate(INJECTED)).resolves.toEqual({ elements: [], ran: [] });
      await expect(page.getByRole('heading', { name: 'Fleet' }).count()).resolves.toBe(1);
      // Each refusal is reported on the console as the CSP's; nothing else went wrong.
      expect(problems).toEqual(Array(3).fill(expect.stringContaining('TrustedHTML')));
    } finally {
      await context.close();
    }
  });
});

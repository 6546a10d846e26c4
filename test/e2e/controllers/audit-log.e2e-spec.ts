import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { ModulesContainer } from '@nestjs/core';
import type request from 'supertest';

import { insertOperation } from '@payorch/operations';
import { type AssistSandbox, SANDBOX_MERCHANT, startAssistSandbox, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { type Caller, ControllerSuite, expectError, expectInvalid, expectStatus } from '../support/controller-suite';
import { idem } from '../support/gateway-session';
import { InProcessDispatcher } from '../support/in-process-dispatcher';

const APPLE_PAY_TOKEN = {
  version: 'EC_v1',
  data: 'ZGF0YQ==',
  signature: 'c2ln',
  header: { ephemeralPublicKey: 'ZHVtbXk=', publicKeyHash: 'ZHVtbXk=', transactionId: 't1' },
};
const connection = { kind: 'tcp', host: '127.0.0.1', port: 9 };

/** Every mutating route of the running gateway, as `POST /v1/stores/:id` (read from the controllers' Nest metadata). */
function mutatingRoutes(suite: ControllerSuite): string[] {
  const routes: string[] = [];
  for (const module of suite.session.app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const type = wrapper.metatype as (new (...args: never[]) => unknown) | null;
      if (!type) continue;
      const base = String(Reflect.getMetadata(PATH_METADATA, type) ?? '');
      for (const name of Object.getOwnPropertyNames(type.prototype)) {
        const handler = (type.prototype as Record<string, unknown>)[name];
        if (name === 'constructor' || typeof handler !== 'function') continue;
        const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
        if (method === undefined || method === RequestMethod.GET || method === RequestMethod.HEAD || method === RequestMethod.OPTIONS) continue;
        const path = `/${[base, String(Reflect.getMetadata(PATH_METADATA, handler) ?? '')].filter((p) => p && p !== '/').join('/')}`.replace(/\/+/g, '/');
        routes.push(`${RequestMethod[method]} ${path}`);
      }
    }
  }
  return routes.sort();
}

describe('AuditController (v1/audit-log)', () => {
  const suite = new ControllerSuite();
  let dispatcher: InProcessDispatcher;
  let sim: JoinprotoTerminalSimulator;
  let sandbox: AssistSandbox;
  let storeId: string;
  let terminalId: string;

  async function operation(state: 'PENDING' | 'UNKNOWN'): Promise<string> {
    const { row } = await suite.session.appDb.withTenant(suite.a.tenantId, (tx) =>
      insertOperation(tx, {
        tenantId: suite.a.tenantId,
        terminalId,
        storeId,
        type: 'purchase',
        amount: 700,
        currency: 'RUB',
        idempotencyKey: idem(),
        requestHash: 'h',
      }),
    );
    if (state !== 'PENDING') await suite.session.owner.terminalOperation.update({ where: { id: row.id }, data: { state } });
    return row.id;
  }

  beforeAll(async () => {
    suite.session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    sandbox = await startAssistSandbox();
    await suite.start({ ASSIST_TIMEOUT_MS: '2000' });
    storeId = (await suite.create('/v1/stores', { name: 'S', timeZone: 'UTC' })).id;
    terminalId = (await suite.create('/v1/terminals', { name: 'POS', storeId, protocol: 'joinproto', connection })).id;
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    dispatcher.route(terminalId, { port: (await sim.listen(0)).port });
  });
  afterAll(async () => {
    await suite.stop();
    await dispatcher?.close();
    await sim?.close();
    await sandbox?.close();
  });

  /**
   * One successful call per mutating route (creating what it needs). A route missing here fails the
   * walk below: a new mutating route must be added with its case, and so be shown to audit.
   */
  const cases: Record<string, () => Promise<request.Response>> = {
    'POST /v1/stores': () => suite.call('post', '/v1/stores', { body: { name: 'audited', timeZone: 'UTC' } }),
    'PATCH /v1/stores/:id': () => suite.call('patch', `/v1/stores/${storeId}`, { body: { name: 'renamed' } }),
    'DELETE /v1/stores/:id': async () => suite.call('delete', `/v1/stores/${(await suite.create('/v1/stores', { name: 'gone', timeZone: 'UTC' })).id}`),
    'POST /v1/terminals': () => suite.call('post', '/v1/terminals', { body: { name: 'T2', storeId, protocol: 'joinproto', connection } }),
    'PATCH /v1/terminals/:id': () => suite.call('patch', `/v1/terminals/${terminalId}`, { body: { name: 'POS 1' } }),
    'DELETE /v1/terminals/:id': async () =>
      suite.call('delete', `/v1/terminals/${(await suite.create('/v1/terminals', { name: 'gone', storeId, protocol: 'joinproto', connection })).id}`),
    'POST /v1/agents': () => suite.call('post', '/v1/agents', { body: { name: 'till', storeId } }),
    'PATCH /v1/agents/:id': async () =>
      suite.call('patch', `/v1/agents/${(await suite.create('/v1/agents', { name: 'a', storeId })).agent.id}`, { body: { name: 'b' } }),
    'POST /v1/agents/:id/enrollment-token': async () =>
      suite.call('post', `/v1/agents/${(await suite.create('/v1/agents', { name: 'a', storeId })).agent.id}/enrollment-token`),
    'POST /v1/agents/:id/revoke': async () => suite.call('post', `/v1/agents/${(await suite.create('/v1/agents', { name: 'a', storeId })).agent.id}/revoke`),
    'DELETE /v1/agents/:id': async () => suite.call('delete', `/v1/agents/${(await suite.create('/v1/agents', { name: 'a', storeId })).agent.id}`),
    'POST /v1/egress-rules': () => suite.call('post', '/v1/egress-rules', { body: { host: 'acq.example.com', port: 443 } }),
    'PATCH /v1/egress-rules/:id': async () =>
      suite.call('patch', `/v1/egress-rules/${(await suite.create('/v1/egress-rules', { host: 'p.example.com', port: 443 })).id}`, { body: { port: 8443 } }),
    'DELETE /v1/egress-rules/:id': async () =>
      suite.call('delete', `/v1/egress-rules/${(await suite.create('/v1/egress-rules', { host: 'd.example.com', port: 443 })).id}`),
    'POST /v1/webhooks': () => suite.call('post', '/v1/webhooks', { body: { url: 'https://hooks.example.com/a', eventTypes: ['*'] } }),
    'PATCH /v1/webhooks/:id': async () => suite.call('patch', `/v1/webhooks/${(await hook()).id}`, { body: { enabled: false } }),
    'DELETE /v1/webhooks/:id': async () => suite.call('delete', `/v1/webhooks/${(await hook()).id}`),
    'POST /v1/webhooks/:id/rotate-secret': async () => suite.call('post', `/v1/webhooks/${(await hook()).id}/rotate-secret`),
    'POST /v1/webhooks/:id/deliveries/:deliveryId/redeliver': async () => {
      const endpoint = await hook();
      const event = await suite.session.owner.domainEvent.create({
        data: { tenantId: suite.a.tenantId, type: 'terminal.online', subjectType: 'terminal', subjectId: null, data: {} },
      });
      const delivery = await suite.session.owner.webhookDelivery.create({
        data: { tenantId: suite.a.tenantId, endpointId: endpoint.id, eventId: event.id, status: 'FAILED', attempts: 3 },
      });
      return suite.call('post', `/v1/webhooks/${endpoint.id}/deliveries/${delivery.id}/redeliver`);
    },
    'POST /v1/settlement-schedules': () => suite.call('post', '/v1/settlement-schedules', { body: { terminalId, localTime: '23:00' } }),
    'PATCH /v1/settlement-schedules/:id': async () =>
      suite.call('patch', `/v1/settlement-schedules/${(await schedule()).id}`, { body: { localTime: '22:00' } }),
    'DELETE /v1/settlement-schedules/:id': async () => suite.call('delete', `/v1/settlement-schedules/${(await schedule()).id}`),
    'POST /v1/terminals/:id/settlements': () => suite.call('post', `/v1/terminals/${terminalId}/settlements`),
    'POST /v1/assist-merchants': () => suite.call('post', '/v1/assist-merchants', { body: merchantSettings() }),
    'PATCH /v1/assist-merchants/:id': async () => suite.call('patch', `/v1/assist-merchants/${(await merchant()).id}`, { body: { name: 'renamed' } }),
    'DELETE /v1/assist-merchants/:id': async () => suite.call('delete', `/v1/assist-merchants/${(await merchant()).id}`),
    'POST /v1/wallet-payments': async () => suite.call('post', '/v1/wallet-payments', { body: await walletPayment() }),
    'POST /v1/wallet-payments/:id/capture': async () =>
      suite.call('post', `/v1/wallet-payments/${(await suite.create('/v1/wallet-payments', await walletPayment(true))).id}/capture`, { body: {} }),
    'POST /v1/wallet-payments/:id/cancel': async () =>
      suite.call('post', `/v1/wallet-payments/${(await suite.create('/v1/wallet-payments', await walletPayment(true))).id}/cancel`, { body: {} }),
    'POST /v1/wallet-payments/:id/resolve': async () => {
      // Charged by the sandbox but answered 2/1 (amounts ending in 05): unknown, for a person to decide.
      const open = await suite.create('/v1/wallet-payments', { ...(await walletPayment()), amount: 10_005 });
      return suite.call('post', `/v1/wallet-payments/${open.id}/resolve`, { body: { state: 'declined', note: 'not in the back office' } });
    },
    'POST /v1/wallet-payments/:id/operations/:operationId/resolve': async () => {
      const held = await suite.create('/v1/wallet-payments', await walletPayment(true));
      sandbox.setMode('lost-answer', { endpoint: 'charge', times: 1 });
      const captured = await suite.call('post', `/v1/wallet-payments/${held.id}/capture`, { body: { amount: 4_000 } });
      expectStatus(captured, 200);
      const operationId = (captured.body as { operations: { id: string }[] }).operations[0]!.id;
      return suite.call('post', `/v1/wallet-payments/${held.id}/operations/${operationId}/resolve`, {
        body: { state: 'failed', note: 'no charge in the back office' },
      });
    },
    'POST /v1/terminals/:id/operations': () =>
      suite.call('post', `/v1/terminals/${terminalId}/operations`, { body: { type: 'purchase', amount: 1500, currency: 'RUB' }, query: { wait: 5000 } }),
    'POST /v1/operations/:id/cancel': async () => suite.call('post', `/v1/operations/${await operation('PENDING')}/cancel`),
    'POST /v1/operations/:id/resolve': async () =>
      suite.call('post', `/v1/operations/${await operation('UNKNOWN')}/resolve`, { body: { state: 'failed', note: 'never reached the host' } }),
    'POST /v1/campaigns': () => suite.call('post', '/v1/campaigns', { body: campaignBody() }),
    'POST /v1/campaigns/:id/pause': async () => suite.call('post', `/v1/campaigns/${(await campaign()).id}/pause`),
    'POST /v1/campaigns/:id/resume': async () => {
      const { id } = await campaign();
      expectStatus(await suite.call('post', `/v1/campaigns/${id}/pause`), 200);
      return suite.call('post', `/v1/campaigns/${id}/resume`);
    },
    'POST /v1/campaigns/:id/cancel': async () => suite.call('post', `/v1/campaigns/${(await campaign()).id}/cancel`),
    'POST /v1/api-keys': () => suite.call('post', '/v1/api-keys', { body: { name: 'k', scopes: ['read'] } }),
    'POST /v1/api-keys/:id/revoke': async () =>
      suite.call('post', `/v1/api-keys/${(await suite.create('/v1/api-keys', { name: 'k', scopes: ['read'] })).id}/revoke`),
  };
  const campaignBody = () => ({ name: 'logs', operation: { type: 'upload_logs' }, selector: { terminalIds: [terminalId] } });
  const campaign = () => suite.create('/v1/campaigns', campaignBody());
  const hook = () => suite.create('/v1/webhooks', { url: 'https://hooks.example.com/x', eventTypes: ['*'] });
  // Disabled: a store has one enabled schedule at most (409 settlement_schedule_exists), and each case makes its own.
  const schedule = () => suite.create('/v1/settlement-schedules', { storeId, localTime: '23:30', enabled: false });
  // One settings row per Assist account: the routes' own rows get Merchant_IDs of their own; payments use the sandbox's.
  let accounts = 0;
  const merchantSettings = (merchantId = String(100_000 + ++accounts)) => ({
    name: 'Sandbox',
    serverUrl: sandbox.url,
    ...SANDBOX_MERCHANT,
    merchantId,
    privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
  });
  const merchant = (merchantId?: string) => suite.create('/v1/assist-merchants', merchantSettings(merchantId));
  let merchantId: string | undefined;
  const walletPayment = async (twoStage = false) => ({
    merchantId: (merchantId ??= (await merchant(SANDBOX_MERCHANT.merchantId)).id),
    amount: 10_000,
    currency: 'RUB',
    tokenType: 'apple_pay',
    token: APPLE_PAY_TOKEN,
    customer: { lastname: 'Ivanov', firstname: 'Ivan', email: 'ivan@example.com' },
    twoStage,
  });

  it('every mutating route writes an audit row in its own request (a new route without a case fails here)', async () => {
    const routes = mutatingRoutes(suite);
    expect(routes.length).toBeGreaterThan(30);
    expect(routes.filter((r) => !(r in cases))).toEqual([]);
    const silent: string[] = [];
    for (const route of routes) {
      const res = await cases[route]!();
      expect({ route, status: res.status < 300 ? 'ok' : res.status, body: res.status < 300 ? null : res.body }).toEqual({ route, status: 'ok', body: null });
      const rows = await suite.session.owner.auditLog.findMany({ where: { requestId: res.headers['x-request-id'] as string } });
      if (rows.length === 0 || rows.some((r) => r.tenantId !== suite.a.tenantId || r.actorType !== 'api_key')) silent.push(route);
    }
    expect(silent).toEqual([]);
  });

  it('lists the tenant entries newest first with filters and a cursor', async () => {
    const s1 = await suite.create('/v1/stores', { name: 'f1', timeZone: 'UTC' });
    // The create a minute ago (no waiting on the clock): `from`/`to` at 30 s ago split the two entries.
    await suite.session.owner.auditLog.updateMany({ where: { resourceId: s1.id }, data: { createdAt: new Date(Date.now() - 60_000) } });
    const before = new Date(Date.now() - 30_000).toISOString();
    await suite.call('patch', `/v1/stores/${s1.id}`, { body: { name: 'f2' } });
    const byResource = await suite.call('get', '/v1/audit-log', { query: { resourceType: 'store', resourceId: s1.id } });
    expectStatus(byResource, 200);
    expect(byResource.body.data.map((e: { action: string }) => e.action)).toEqual(['store.update', 'store.create']);
    expect(byResource.body.data[0]).toMatchObject({
      actorType: 'api_key',
      resourceType: 'store',
      resourceId: s1.id,
      details: { fields: ['name'] },
      requestId: expect.any(String),
    });
    const since = await suite.call('get', '/v1/audit-log', { query: { resourceId: s1.id, from: before } });
    expect(since.body.data.map((e: { action: string }) => e.action)).toEqual(['store.update']);
    const until = await suite.call('get', '/v1/audit-log', { query: { resourceId: s1.id, to: before } });
    expect(until.body.data.map((e: { action: string }) => e.action)).toEqual(['store.create']);
    const byAction = await suite.call('get', '/v1/audit-log', { query: { action: 'store.update', limit: 200 } });
    expect(byAction.body.data.every((e: { action: string }) => e.action === 'store.update')).toBe(true);
    // The read-only key's actor id filters to nothing it did not do.
    const keyId = byResource.body.data[0].actorId as string;
    const byKey = await suite.call('get', '/v1/audit-log', { query: { apiKeyId: keyId, limit: 1 } });
    expect(byKey.body.data[0].actorId).toBe(keyId);
    const page2 = await suite.call('get', '/v1/audit-log', { query: { apiKeyId: keyId, limit: 1, cursor: byKey.body.nextCursor } });
    expectStatus(page2, 200);
    expect(page2.body.data[0].id).not.toBe(byKey.body.data[0].id);
    // A read key (dashboards) reads the log.
    const read = await suite.session.admin.createApiKey({ tenantId: suite.a.tenantId, name: 'dash', scopes: ['read'] });
    expectStatus(await suite.call('get', '/v1/audit-log', { as: { tenantId: suite.a.tenantId, apiKey: read.apiKey } }), 200);
  });

  it('validates the query with 400 naming the fields', async () => {
    expectInvalid(await suite.call('get', '/v1/audit-log', { query: { from: 'yesterday' } }), 'from');
    expectInvalid(await suite.call('get', '/v1/audit-log', { query: { apiKeyId: 'nope' } }), 'apiKeyId');
    expectInvalid(await suite.call('get', '/v1/audit-log', { query: { from: '2026-02-02T00:00:00Z', to: '2026-02-01T00:00:00Z' } }), 'to');
    expectInvalid(await suite.call('get', '/v1/audit-log', { query: { resource_type: 'store' } }));
    expectInvalid(await suite.call('get', '/v1/audit-log', { query: { cursor: 'x' } }), 'cursor');
    expectError(await suite.call('get', '/v1/audit-log', { as: { tenantId: 'x', apiKey: 'pok_nope' } }), 401, 'UNAUTHENTICATED');
  });

  it("never shows another tenant's entries (RLS)", async () => {
    const storeOfB = await suite.create('/v1/stores', { name: 'B', timeZone: 'UTC' }, suite.b as Caller);
    const res = await suite.call('get', '/v1/audit-log', { query: { resourceId: storeOfB.id } });
    expectStatus(res, 200);
    expect(res.body.data).toEqual([]);
    expect((await suite.call('get', '/v1/audit-log', { as: suite.b, query: { resourceId: storeOfB.id } })).body.data).toHaveLength(1);
    expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.auditLog.count({ where: { resourceId: storeOfB.id } }))).toBe(0);
  });
});

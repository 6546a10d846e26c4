import { type AssistSandbox, SANDBOX_MERCHANT, startAssistSandbox, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';

import {
  ControllerSuite,
  expectError,
  expectIdsChecked,
  expectInvalid,
  expectNotFound,
  expectStatus,
  expectWritesForbidden,
  UNKNOWN_ID,
} from '../support/controller-suite';

const APPLE_PAY_TOKEN = {
  version: 'EC_v1',
  data: 'ZGF0YQ==',
  signature: 'c2ln',
  header: { ephemeralPublicKey: 'ZHVtbXk=', publicKeyHash: 'ZHVtbXk=', transactionId: 't1' },
};

describe('WalletPaymentsController (v1/wallet-payments)', () => {
  const suite = new ControllerSuite();
  let sandbox: AssistSandbox;
  let merchantId: string;
  let merchantOfB: string;
  let paymentOfB: string;
  const payment = (extra: Record<string, unknown> = {}) => ({
    merchantId,
    amount: 10_000,
    currency: 'RUB',
    tokenType: 'apple_pay',
    token: APPLE_PAY_TOKEN,
    customer: { lastname: 'Ivanov', firstname: 'Ivan', email: 'ivan@example.com' },
    ...extra,
  });

  beforeAll(async () => {
    sandbox = await startAssistSandbox();
    await suite.start({ ASSIST_TIMEOUT_MS: '2000' });
    const settings = {
      name: 'Sandbox',
      serverUrl: sandbox.url,
      ...SANDBOX_MERCHANT,
      privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
    };
    merchantId = (await suite.create('/v1/assist-merchants', settings)).id;
    merchantOfB = (await suite.create('/v1/assist-merchants', settings, suite.b)).id;
    paymentOfB = (await suite.create('/v1/wallet-payments', { ...payment(), merchantId: merchantOfB }, suite.b)).id;
  });
  afterAll(async () => {
    await suite.stop();
    await sandbox?.close();
  });

  it('answers each route with its status code', async () => {
    const paid = await suite.call('post', '/v1/wallet-payments', { body: payment() });
    expectStatus(paid, 201);
    expect(paid.body).toMatchObject({
      state: 'approved',
      amount: 10_000,
      currency: 'RUB',
      tokenType: 'apple_pay',
      merchantId,
    });
    expect(JSON.stringify(paid.body)).not.toContain(APPLE_PAY_TOKEN.data);
    const list = await suite.call('get', '/v1/wallet-payments', {
      query: { state: 'approved', tokenType: 'apple_pay', merchantId },
    });
    expectStatus(list, 200);
    expect(list.body.data.map((p: { id: string }) => p.id)).toEqual([paid.body.id]);
    const got = await suite.call('get', `/v1/wallet-payments/${paid.body.id}`);
    expectStatus(got, 200);
    expect(got.body.id).toBe(paid.body.id);
  });

  it('validates bodies, queries and ids with 400 naming the fields; nothing is charged or stored', async () => {
    const charges = sandbox.stats.charges;
    const stored = await suite.session.owner.walletPayment.count();
    expectInvalid(await suite.call('post', '/v1/wallet-payments', { body: {} }), 'amount', 'currency', 'customer', 'merchantId', 'token', 'tokenType');
    expectInvalid(await suite.call('post', '/v1/wallet-payments', { body: payment({ amount: 10.5 }) }), 'amount');
    expectInvalid(await suite.call('post', '/v1/wallet-payments', { body: payment({ amount: -1 }) }), 'amount');
    expectInvalid(await suite.call('post', '/v1/wallet-payments', { body: payment({ currency: 'rub' }) }), 'currency');
    expectInvalid(await suite.call('post', '/v1/wallet-payments', { body: payment({ tokenType: 'PAYPAL' }) }), 'tokenType');
    expectInvalid(await suite.call('post', '/v1/wallet-payments', { body: payment({ merchantId: 'shop' }) }), 'merchantId');
    expectInvalid(
      await suite.call('post', '/v1/wallet-payments', {
        body: payment({ customer: { lastname: 'L', firstname: 'F' } }),
      }),
      'customer.email',
    );
    // Assist's parameter rules (checked after the shape): still a 400 naming the body field.
    expectInvalid(await suite.call('post', '/v1/wallet-payments', { body: payment({ clientIp: 'not-an-ip' }) }), 'clientIp');
    expectInvalid(await suite.call('get', '/v1/wallet-payments', { query: { state: 'PAID' } }), 'state');
    expectInvalid(await suite.call('get', '/v1/wallet-payments', { query: { merchantId: '1' } }), 'merchantId');
    expect(sandbox.stats.charges).toBe(charges);
    expect(await suite.session.owner.walletPayment.count()).toBe(stored);
  });

  it("answers 404 for an unknown payment, a payment of another tenant, and merchant settings that are not the tenant's", async () => {
    await expectIdsChecked(
      suite,
      [
        { method: 'get', path: (id) => `/v1/wallet-payments/${id}` },
        { method: 'post', path: (id) => `/v1/wallet-payments/${id}/capture`, body: {} },
        { method: 'post', path: (id) => `/v1/wallet-payments/${id}/cancel`, body: { amount: 100 } },
      ],
      { otherTenants: paymentOfB },
    );
    expect(await suite.session.owner.walletPaymentOperation.count({ where: { paymentId: paymentOfB } })).toBe(0);
    expect(sandbox.stats.chargeRequests + sandbox.stats.cancelRequests).toBe(0);
    const charges = sandbox.stats.charges;
    for (const other of [UNKNOWN_ID, merchantOfB]) expectNotFound(await suite.call('post', '/v1/wallet-payments', { body: payment({ merchantId: other }) }));
    expect(sandbox.stats.charges).toBe(charges);
    expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.walletPayment.findUnique({ where: { id: paymentOfB } }))).toBeNull();
  });

  it('refuses a read-only key on the mutating route (403) and lets it read', async () => {
    const charges = sandbox.stats.charges;
    await expectWritesForbidden(
      suite,
      [
        { method: 'post', path: '/v1/wallet-payments', body: payment() },
        { method: 'post', path: `/v1/wallet-payments/${paymentOfB}/capture` },
        { method: 'post', path: `/v1/wallet-payments/${paymentOfB}/cancel` },
      ],
      'wallet:write',
    );
    expect(sandbox.stats.charges).toBe(charges);
    expectStatus(await suite.call('get', '/v1/wallet-payments', { as: suite.readOnly }), 200);
  });

  it('requires an Idempotency-Key on a payment, a capture and a cancel', async () => {
    expectError(await suite.call('post', '/v1/wallet-payments', { body: payment(), idempotencyKey: false }), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    const held = await suite.create('/v1/wallet-payments', payment({ twoStage: true }));
    for (const action of ['capture', 'cancel']) {
      expectError(await suite.call('post', `/v1/wallet-payments/${held.id}/${action}`, { body: {}, idempotencyKey: false }), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    }
  });

  it('validates capture / cancel bodies (400 naming the field) and answers the lifecycle conflicts with their codes', async () => {
    const held = await suite.create('/v1/wallet-payments', payment({ twoStage: true }));
    for (const amount of [0, -5, 1.5, '100']) expectInvalid(await suite.call('post', `/v1/wallet-payments/${held.id}/capture`, { body: { amount } }), 'amount');
    expectInvalid(await suite.call('post', `/v1/wallet-payments/${held.id}/cancel`, { body: { amount: 1, reason: 'x' } }));
    expectError(await suite.call('post', `/v1/wallet-payments/${held.id}/capture`, { body: { amount: 10_001 } }), 422, 'WALLET_AMOUNT_EXCEEDS_AUTHORIZED');
    const captured = await suite.call('post', `/v1/wallet-payments/${held.id}/capture`, { body: { amount: 4_000 } });
    expectStatus(captured, 200);
    expect(captured.body).toMatchObject({
      state: 'partially_captured',
      twoStage: true,
      amounts: { authorized: 10_000, captured: 4_000, released: 0, refunded: 0 },
    });

    const paid = await suite.create('/v1/wallet-payments', payment());
    expectError(await suite.call('post', `/v1/wallet-payments/${paid.id}/capture`, { body: {} }), 409, 'WALLET_PAYMENT_ONE_STAGE');
    expectError(await suite.call('post', `/v1/wallet-payments/${paid.id}/cancel`, { body: { amount: 10_001 } }), 422, 'WALLET_AMOUNT_EXCEEDS_CAPTURED');
    expectStatus(await suite.call('post', `/v1/wallet-payments/${paid.id}/cancel`, { body: {} }), 200);
    expectError(await suite.call('post', `/v1/wallet-payments/${paid.id}/cancel`, { body: {} }), 409, 'WALLET_PAYMENT_ALREADY_CANCELED');
  });
});

import { SANDBOX_MERCHANT, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';

import { ControllerSuite, expectError, expectIdsChecked, expectInvalid, expectStatus, expectWritesForbidden } from '../support/controller-suite';

describe('AssistMerchantsController (v1/assist-merchants)', () => {
  const suite = new ControllerSuite();
  const merchant = (extra: Record<string, unknown> = {}) => ({
    name: 'Shop at Assist',
    serverUrl: 'https://payments.example.com/',
    merchantId: SANDBOX_MERCHANT.merchantId,
    login: SANDBOX_MERCHANT.login,
    password: SANDBOX_MERCHANT.password,
    salt: SANDBOX_MERCHANT.salt,
    privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
    ...extra,
  });
  let settings: Record<string, any>;
  let settingsOfB: Record<string, any>;

  beforeAll(async () => {
    await suite.start();
    settings = await suite.create('/v1/assist-merchants', merchant());
    settingsOfB = await suite.create('/v1/assist-merchants', merchant({ name: 'B' }), suite.b);
  });
  afterAll(() => suite.stop());

  it('answers each route with its status code; secrets are write-only', async () => {
    const created = await suite.call('post', '/v1/assist-merchants', {
      body: merchant({ name: 'Second', merchantId: '100201', privateKeyPem: undefined }),
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      name: 'Second',
      serverUrl: 'https://payments.example.com',
      hasPassword: true,
      hasSalt: true,
      hasPrivateKey: false,
    });
    for (const secret of [SANDBOX_MERCHANT.password, SANDBOX_MERCHANT.salt, 'PRIVATE KEY']) expect(JSON.stringify(created.body)).not.toContain(secret);
    const id = created.body.id as string;
    expectStatus(await suite.call('get', '/v1/assist-merchants'), 200);
    expectStatus(await suite.call('get', `/v1/assist-merchants/${id}`), 200);
    const patched = await suite.call('patch', `/v1/assist-merchants/${id}`, {
      body: { name: 'Second b', privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM },
    });
    expectStatus(patched, 200);
    expect(patched.body).toMatchObject({ name: 'Second b', hasPrivateKey: true });
    expectStatus(await suite.call('delete', `/v1/assist-merchants/${id}`), 204);
  });

  it('validates bodies, queries and ids with 400 naming the fields, never echoing a secret', async () => {
    expectInvalid(await suite.call('post', '/v1/assist-merchants', { body: {} }), 'name', 'serverUrl', 'merchantId', 'login', 'password', 'salt');
    expectInvalid(await suite.call('post', '/v1/assist-merchants', { body: merchant({ merchantId: 'M-1' }) }), 'merchantId');
    expectInvalid(
      await suite.call('post', '/v1/assist-merchants', {
        body: merchant({ serverUrl: 'http://payments.example.com' }),
      }),
      'serverUrl',
    );
    expectInvalid(await suite.call('post', '/v1/assist-merchants', { body: merchant({ login: 'short' }) }), 'login');
    const badKey = await suite.call('post', '/v1/assist-merchants', {
      body: merchant({
        privateKeyPem: '-----BEGIN PRIVATE KEY-----\nnot-a-key-at-all\n-----END PRIVATE KEY-----',
      }),
    });
    expectInvalid(badKey, 'privateKeyPem');
    expect(JSON.stringify(badKey.body)).not.toContain('not-a-key-at-all');
    expectInvalid(
      await suite.call('post', '/v1/assist-merchants', {
        body: merchant({ tenantId: suite.b.tenantId }),
      }),
      '(body)',
    );
    expectInvalid(await suite.call('patch', `/v1/assist-merchants/${settings.id}`, { body: {} }), '(body)');
    expectInvalid(await suite.call('patch', `/v1/assist-merchants/${settings.id}`, { body: { password: 'x' } }), 'password');
    expectInvalid(await suite.call('get', '/v1/assist-merchants', { query: { limit: 1000 } }), 'limit');
  });

  it('refuses a server the egress policy denies with 400 EGRESS_DENIED naming serverUrl', async () => {
    const res = await suite.call('post', '/v1/assist-merchants', {
      body: merchant({ serverUrl: 'https://assist.internal.test' }),
    });
    expectError(res, 400, 'EGRESS_DENIED');
    expect(res.body.error.details).toMatchObject({ field: 'serverUrl' });
  });

  it('answers 409 RESOURCE_IN_USE deleting settings a payment refers to', async () => {
    const used = await suite.create('/v1/assist-merchants', merchant({ name: 'Used', merchantId: '100202' }));
    await suite.session.owner.walletPayment.create({
      data: {
        tenantId: suite.a.tenantId,
        merchantId: used.id,
        orderNumber: 'o-1',
        amount: 100n,
        currency: 'RUB',
        tokenType: 'APPLE_PAY',
        idempotencyKey: 'k-1',
        requestHash: 'h',
        state: 'APPROVED',
      },
    });
    expectError(await suite.call('delete', `/v1/assist-merchants/${used.id}`), 409, 'RESOURCE_IN_USE');
  });

  it('answers 409 ASSIST_MERCHANT_DUPLICATE for a second row of one Assist account, however spelled, on create and PATCH', async () => {
    // Assist's order numbers are unique per account, not per settings row: one account, one row per tenant.
    for (const same of [
      merchant({ name: 'Again' }),
      merchant({ name: 'Again', serverUrl: 'HTTPS://Payments.Example.com:443/' }),
      merchant({ name: 'Again', merchantId: `0${SANDBOX_MERCHANT.merchantId}` }),
    ]) {
      const res = await suite.call('post', '/v1/assist-merchants', { body: same });
      expectError(res, 409, 'ASSIST_MERCHANT_DUPLICATE');
      expect(res.body.error.details).toEqual({ existingId: settings.id });
    }
    const other = await suite.create('/v1/assist-merchants', merchant({ name: 'Other account', merchantId: '100203' }));
    const moved = await suite.call('patch', `/v1/assist-merchants/${other.id}`, { body: { merchantId: SANDBOX_MERCHANT.merchantId } });
    expectError(moved, 409, 'ASSIST_MERCHANT_DUPLICATE');
    expect(moved.body.error.details).toEqual({ existingId: settings.id });
    // Another tenant's settings for the same account are its own business (settingsOfB exists).
    expect(settingsOfB).toMatchObject({ merchantId: SANDBOX_MERCHANT.merchantId, serverUrl: 'https://payments.example.com' });
  });

  it("accepts settings for an Assist account another tenant's settings name, and raises it to the operator", async () => {
    // One counted so far: B's settings in beforeAll name A's account.
    const shared = async () => {
      const metrics = await suite.session.http().get('/metrics');
      const sample = /^payorch_assist_accounts_shared_total(?:\{[^}]*\})? (\S+)$/m.exec(metrics.text as string);
      return Number(sample?.[1]);
    };
    const before = await shared();
    expect(before).toBeGreaterThanOrEqual(1);
    // An account no other tenant names: no alert.
    const own = await suite.create('/v1/assist-merchants', merchant({ name: 'B own', merchantId: '100207' }), suite.b);
    expect(await shared()).toBe(before);
    // Moved onto an account A's settings name (however spelled): answered as usual — a refusal would tell B that
    // another tenant of the platform holds that account —, and counted.
    await suite.create('/v1/assist-merchants', merchant({ name: 'A second', merchantId: '100209' }));
    const moved = await suite.call('patch', `/v1/assist-merchants/${own.id}`, {
      body: { merchantId: '0100209', serverUrl: 'https://PAYMENTS.example.com/' },
      as: suite.b,
    });
    expectStatus(moved, 200);
    expect(moved.body).toMatchObject({ id: own.id, merchantId: '0100209' });
    expect(await shared()).toBe(before + 1);
    // A rename is not a move.
    expectStatus(await suite.call('patch', `/v1/assist-merchants/${own.id}`, { body: { name: 'B renamed' }, as: suite.b }), 200);
    expect(await shared()).toBe(before + 1);
  });

  it('answers 404 for unknown settings and for settings of another tenant', async () => {
    await expectIdsChecked(
      suite,
      [
        { method: 'get', path: (id) => `/v1/assist-merchants/${id}` },
        {
          method: 'patch',
          path: (id) => `/v1/assist-merchants/${id}`,
          body: { name: 'Taken over' },
        },
        { method: 'delete', path: (id) => `/v1/assist-merchants/${id}` },
      ],
      { otherTenants: settingsOfB.id },
    );
    expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.assistMerchant.findUnique({ where: { id: settingsOfB.id } }))).toBeNull();
    expect(await suite.session.owner.assistMerchant.findUniqueOrThrow({ where: { id: settingsOfB.id } })).toMatchObject({ name: 'B' });
  });

  it('refuses a read-only key on every mutating route (403)', async () => {
    await expectWritesForbidden(
      suite,
      [
        { method: 'post', path: '/v1/assist-merchants', body: merchant() },
        { method: 'patch', path: `/v1/assist-merchants/${settings.id}`, body: { name: 'x' } },
        { method: 'delete', path: `/v1/assist-merchants/${settings.id}` },
      ],
      'wallet:write',
    );
    expectStatus(await suite.call('get', `/v1/assist-merchants/${settings.id}`, { as: suite.readOnly }), 200);
    expect(await suite.session.owner.assistMerchant.findUniqueOrThrow({ where: { id: settings.id } })).toMatchObject({ name: 'Shop at Assist' });
  });
});

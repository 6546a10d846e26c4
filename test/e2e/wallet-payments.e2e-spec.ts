import type { INestApplication } from '@nestjs/common';

import { createWorkerApp } from '../../apps/settlement-worker/src/bootstrap';
import { loadConfig, workerConfigSchema } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { type AssistSandbox, SANDBOX_MERCHANT, startAssistSandbox, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';

import { GatewaySession, idem } from './support/gateway-session';

/** Wallet token shapes (dummy content) as the ecommerce backend receives them from the wallet. */
const APPLE_PAY_TOKEN = {
  version: 'EC_v1',
  data: 'QXBwbGVQYXlFbmNyeXB0ZWREYXRhRm9yVGVzdHM=',
  signature: 'ZHVtbXktc2lnbmF0dXJl',
  header: { ephemeralPublicKey: 'ZHVtbXk=', publicKeyHash: 'ZHVtbXk=', transactionId: 'abc123' },
};
const GOOGLE_PAY_TOKEN = JSON.stringify({
  signature: 'MEUCIQDummyGoogleSignature',
  intermediateSigningKey: { signedKey: '{}', signatures: ['MEUCIQDummy'] },
  protocolVersion: 'ECv2',
  signedMessage: '{"encryptedMessage":"R29vZ2xlRW5jcnlwdGVk","ephemeralPublicKey":"ZHVtbXk=","tag":"ZHVtbXk="}',
});
const SAMSUNG_PAY_TOKEN = { type: 'S', version: '100', data: 'U2Ftc3VuZ1BheUpXRVRva2Vu' };
const TOKENS = { apple_pay: APPLE_PAY_TOKEN, google_pay: GOOGLE_PAY_TOKEN, samsung_pay: SAMSUNG_PAY_TOKEN } as const;
/** Strings that must never be stored: the encrypted token payloads. */
const TOKEN_SECRETS = ['QXBwbGVQYXlFbmNyeXB0ZWREYXRhRm9yVGVzdHM=', 'R29vZ2xlRW5jcnlwdGVk', 'U2Ftc3VuZ1BheUpXRVRva2Vu'];

const customer = { lastname: 'Иванов', firstname: 'Иван', email: 'ivan@example.com' };

describe('wallet payments API (Assist TokenPay through the gateway, real Postgres + Redis + sandbox)', () => {
  const session = new GatewaySession();
  let sandbox: AssistSandbox;
  let worker: INestApplication;
  let auth: { Authorization: string };
  let tenantId: string;
  let merchantId: string;

  const merchantBody = () => ({
    name: 'Shop at Assist',
    serverUrl: sandbox.url,
    merchantId: SANDBOX_MERCHANT.merchantId,
    login: SANDBOX_MERCHANT.login,
    password: SANDBOX_MERCHANT.password,
    salt: SANDBOX_MERCHANT.salt,
    privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
  });

  const pay = (body: Record<string, unknown>, key = idem(), headers = auth) =>
    session.http().post('/v1/wallet-payments').set(headers).set('Idempotency-Key', key).send(body);

  const payment = (amount: number, tokenType: keyof typeof TOKENS = 'apple_pay', extra: Record<string, unknown> = {}) => ({
    merchantId,
    amount,
    currency: 'RUB',
    tokenType,
    token: TOKENS[tokenType],
    customer,
    ...extra,
  });

  /** Polls GET until `until` holds (the worker resolves in the background). */
  const paymentWhen = (id: string, until: (body: Record<string, any>) => boolean, timeoutMs = 15_000) =>
    waitFor(
      async () => {
        const res = await session.http().get(`/v1/wallet-payments/${id}`).set(auth);
        expect(res.status).toBe(200);
        return until(res.body) && (res.body as Record<string, any>);
      },
      { timeoutMs, intervalMs: 100, what: `payment ${id} in the expected state` },
    );

  beforeAll(async () => {
    sandbox = await startAssistSandbox();
    await session.start({
      ASSIST_TIMEOUT_MS: '1000',
      WALLET_RESOLVE_DELAY_MS: '100',
      WALLET_RESOLVE_BACKOFF_MS: '200',
      WALLET_RESOLVE_ATTEMPTS: '20',
    });
    const workerConfig = loadConfig('settlement-worker', workerConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_URL: session.config.REDIS_URL,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      LOG_LEVEL: 'silent',
      // The Assist sandbox listens on loopback, which only the operator can allow.
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8, ::1',
      WORKER_CONCURRENCY: '2',
      ASSIST_ORDERSTATE_TIMEOUT_MS: '1000',
      WALLET_SWEEP_INTERVAL_MS: '600000',
      WALLET_SWEEP_OLDER_THAN_MS: '600000',
    });
    worker = await createWorkerApp(workerConfig, createLogger({ name: 'test', level: 'silent' }));
    await worker.init();

    const tenant = await session.tenant();
    tenantId = tenant.tenantId;
    auth = { Authorization: `Bearer ${tenant.apiKey}` };
    const created = await session.http().post('/v1/assist-merchants').set(auth).set('Idempotency-Key', idem()).send(merchantBody());
    if (created.status !== 201) throw new Error(`merchant settings not created: ${JSON.stringify(created.body)}`);
    merchantId = created.body.id;
  });

  afterAll(async () => {
    await worker?.close();
    await session.stop();
    await sandbox?.close();
  });

  describe('merchant settings', () => {
    it('never returns the secrets and stores them only sealed, bound to tenant and row', async () => {
      const got = await session.http().get(`/v1/assist-merchants/${merchantId}`).set(auth);
      expect(got.status).toBe(200);
      expect(got.body).toEqual({
        id: merchantId,
        name: 'Shop at Assist',
        serverUrl: sandbox.url,
        merchantId: SANDBOX_MERCHANT.merchantId,
        login: SANDBOX_MERCHANT.login,
        hasAssistPublicKey: false,
        hasPassword: true,
        hasSalt: true,
        hasPrivateKey: true,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      const row = await session.owner.assistMerchant.findUniqueOrThrow({ where: { id: merchantId } });
      expect(row.secretsEncrypted).toMatch(/^pe1\./);
      for (const secret of [SANDBOX_MERCHANT.password, SANDBOX_MERCHANT.salt, 'PRIVATE KEY', TEST_MERCHANT_PRIVATE_KEY_PEM.split('\n')[1]!]) {
        expect(JSON.stringify(row)).not.toContain(secret);
      }
      const audits = await session.owner.auditLog.findMany({ where: { resourceId: merchantId } });
      expect(JSON.stringify(audits)).not.toContain(SANDBOX_MERCHANT.password);
    });

    it('validates the server URL, credentials and RSA key on input, naming the field', async () => {
      const res = await session
        .http()
        .post('/v1/assist-merchants')
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ ...merchantBody(), serverUrl: 'http://assist.example.com', password: 'short', privateKeyPem: 'not a key' });
      expect(res.status).toBe(400);
      const fields = (res.body.error.details.issues as { field: string }[]).map((i) => i.field).sort();
      expect(fields).toEqual(['password', 'privateKeyPem', 'serverUrl']);
      expect(res.body.error.message).toContain('serverUrl: must be an https:// URL');
      expect(JSON.stringify(res.body)).not.toContain('short');
    });

    it('re-seals the secrets on change and keeps the ones not given', async () => {
      // Another Assist account: one settings row per account.
      const created = await session
        .http()
        .post('/v1/assist-merchants')
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ ...merchantBody(), merchantId: '100300' });
      const patched = await session
        .http()
        .patch(`/v1/assist-merchants/${created.body.id}`)
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ privateKeyPem: null, name: 'Unsigned' });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ name: 'Unsigned', hasPrivateKey: false, hasPassword: true, login: SANDBOX_MERCHANT.login });
      const deleted = await session.http().delete(`/v1/assist-merchants/${created.body.id}`).set(auth).set('Idempotency-Key', idem());
      expect(deleted.status).toBe(204);
    });

    it('requires the wallet scopes', async () => {
      const { apiKey } = await session.tenant(undefined, ['wallet:read']);
      const res = await pay(payment(1000), idem(), { Authorization: `Bearer ${apiKey}` });
      expect(res.status).toBe(403);
      expect(res.body.error.details).toEqual({ missing: ['wallet:write'] });
    });
  });

  describe('paying', () => {
    it.each(['apple_pay', 'google_pay', 'samsung_pay'] as const)('approves a one-stage %s payment and stores no token', async (tokenType) => {
      const charges = sandbox.stats.charges;
      const res = await pay(payment(10_000, tokenType));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        state: 'approved',
        amount: 10_000,
        currency: 'RUB',
        tokenType,
        merchantId,
        orderNumber: res.body.id,
        testMode: false,
        error: null,
        continueUrl: null,
        customer,
        assist: { orderState: 'Approved', source: 'tokenpay', duplicate: false, amount: '100.00', currency: 'RUB' },
      });
      expect(res.body.assist.operations[0]).toMatchObject({ type: 'Approve', state: 'Success', responseCode: 'AS000' });
      expect(res.body.completedAt).not.toBeNull();
      expect(sandbox.stats.charges).toBe(charges + 1);

      const row = await session.owner.walletPayment.findUniqueOrThrow({ where: { id: res.body.id } });
      const stored = JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      for (const secret of TOKEN_SECRETS) expect(stored).not.toContain(secret);
      const events = await session.owner.domainEvent.findMany({ where: { subjectId: res.body.id }, orderBy: { createdAt: 'asc' } });
      expect(events.map((e) => [e.type, (e.data as { state: string }).state])).toEqual([
        ['wallet_payment.created', 'pending'],
        ['wallet_payment.updated', 'processing'],
        ['wallet_payment.updated', 'approved'],
      ]);
      expect(events.every((e) => e.subjectType === 'wallet_payment' && e.tenantId === tenantId)).toBe(true);
    });

    it('declines (.01) without charging', async () => {
      const charges = sandbox.stats.charges;
      const res = await pay(payment(10_001));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ state: 'declined', assist: { orderState: 'Declined' } });
      expect(sandbox.stats.charges).toBe(charges);
    });

    it('authorizes a two-stage payment (Delay=1)', async () => {
      const res = await pay(payment(25_000, 'samsung_pay', { twoStage: true, orderNumber: 'ORDER-2STAGE-1' }));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ state: 'authorized', orderNumber: 'ORDER-2STAGE-1', assist: { orderState: 'Delayed' } });
    });

    it('sends a non-tokenized Google Pay card to continueUrl (REQUIRES_ACTION), then resolves it after 3-D Secure', async () => {
      const res = await pay(payment(10_003, 'google_pay'));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ state: 'requires_action', maskedPan: '411111****1111', completedAt: null });
      expect(res.body.continueUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/pay\/pay\.cfm\?CFSID=/);

      // The payer completes 3-D Secure; the resolution job then reads the approved order.
      const page = await fetch(res.body.continueUrl);
      expect(page.status).toBe(200);
      const resolved = await paymentWhen(res.body.id, (p) => p.state === 'approved');
      expect(resolved).toMatchObject({ continueUrl: null, maskedPan: '411111****1111', assist: { source: 'orderstate' } });
    });

    it('keeps an in-process order (.02) PROCESSING and lets the job settle it', async () => {
      const res = await pay(payment(10_002, 'apple_pay'));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ state: 'processing', completedAt: null, assist: { orderState: 'In Process' } });
      await paymentWhen(res.body.id, (p) => p.state === 'approved');
    });

    it("stores Assist's refusal (17/211) as REJECTED with the spec's codes", async () => {
      const res = await pay(payment(10_004));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        state: 'rejected',
        assist: null,
        error: { source: 'assist', code: 'LIMIT_EXCEEDED', firstCode: 17, secondCode: 211 },
      });
      expect(res.body.error.message).toContain('[17/211]');
    });

    it('answers a spec-rule violation with 400 naming the body field, and stores nothing', async () => {
      const before = await session.owner.walletPayment.count();
      const res = await pay(payment(1000, 'apple_pay', { customer: { ...customer, email: 'not-an-email' }, clientIp: '10.0.0' }));
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details.issues).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ field: 'customer.email', assistField: 'Email', code: 'INVALID_CHARACTERS' }),
          expect.objectContaining({ field: 'clientIp', assistField: 'ClientIP', code: 'INVALID_FORMAT' }),
        ]),
      );
      const base64 = Buffer.from(JSON.stringify(APPLE_PAY_TOKEN)).toString('base64');
      const b64 = await pay(payment(1000, 'apple_pay', { token: base64 }));
      expect(b64.status).toBe(400);
      expect(b64.body.error.details.issues[0]).toMatchObject({ field: 'token', code: 'TOKEN_IS_BASE64' });
      expect(JSON.stringify(b64.body)).not.toContain(base64);
      const item = await pay(payment(1000, 'apple_pay', { chequeItems: [{ product: 'Tea', price: 1000, quantity: '0', amount: 1000 }] }));
      expect(item.status).toBe(400);
      expect(item.body.error.details.issues[0]).toMatchObject({
        field: 'chequeItems.0.quantity',
        assistField: 'ChequeItems[0].quantity',
        code: 'INVALID_VALUE',
      });
      expect(await session.owner.walletPayment.count()).toBe(before);
    });

    it('an idempotent retry returns the same payment and Assist charges once; another body with the key is 409', async () => {
      const charges = sandbox.stats.charges;
      const key = idem();
      const body = payment(30_000);
      const first = await pay(body, key);
      expect(first.status).toBe(201);
      const again = await pay(body, key);
      expect(again.status).toBe(201);
      expect(again.body.id).toBe(first.body.id);
      // Even after the gateway-wide idempotency record is gone, the payment row answers the retry.
      await session.owner.idempotencyRecord.deleteMany({ where: { key } });
      const later = await pay(body, key);
      expect(later.body).toMatchObject({ id: first.body.id, state: 'approved' });
      expect(sandbox.stats.charges).toBe(charges + 1);
      expect(await session.owner.walletPayment.count({ where: { idempotencyKey: key } })).toBe(1);

      const other = await pay({ ...body, amount: 30_100 }, key);
      expect(other.status).toBe(409);
      expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    });

    it('refuses an order number already used with the merchant (Assist order numbers are never reused)', async () => {
      const first = await pay(payment(1000, 'apple_pay', { orderNumber: 'ORDER-DUP-1' }));
      expect(first.status).toBe(201);
      const second = await pay(payment(1000, 'apple_pay', { orderNumber: 'ORDER-DUP-1' }));
      expect(second.status).toBe(409);
      expect(second.body.error.code).toBe('CONFLICT');
    });
  });

  describe('unknown outcomes', () => {
    it('lost answer → UNKNOWN → the resolution job stores APPROVED without a second charge', async () => {
      sandbox.setMode('hang', { times: 1 });
      const charges = sandbox.stats.charges;
      const tokenpayRequests = sandbox.stats.tokenpayRequests;
      const res = await pay(payment(40_000, 'google_pay'));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ state: 'unknown', error: { source: 'transport', code: 'TIMEOUT' }, completedAt: null });
      expect(sandbox.stats.charges).toBe(charges + 1); // Assist did charge; only the answer was lost

      const resolved = await paymentWhen(res.body.id, (p) => p.state === 'approved');
      expect(resolved).toMatchObject({ error: null, assist: { orderState: 'Approved', source: 'orderstate' } });
      expect(resolved.resolutionAttempts).toBeGreaterThanOrEqual(1);
      expect(sandbox.stats.charges).toBe(charges + 1);
      expect(sandbox.stats.tokenpayRequests).toBe(tokenpayRequests + 1); // never re-sent
      const last = await session.owner.domainEvent.findFirstOrThrow({ where: { subjectId: res.body.id }, orderBy: { createdAt: 'desc' } });
      expect(last.data).toMatchObject({ state: 'approved', previousState: 'unknown' });
    });

    it('an ambiguous Assist error (2/1, charged) is UNKNOWN, then resolved as APPROVED', async () => {
      const res = await pay(payment(10_005));
      expect(res.body).toMatchObject({ state: 'unknown', error: { source: 'assist', code: 'INTERNAL_ERROR', firstCode: 2, secondCode: 1 } });
      await paymentWhen(res.body.id, (p) => p.state === 'approved');
    });

    it('a bad checkvalue is never trusted: the payment stays UNKNOWN until a verified answer arrives', async () => {
      sandbox.setMode('bad-checkvalue', { times: 1 });
      sandbox.setMode('bad-checkvalue', { endpoint: 'orderstate' });
      try {
        const res = await pay(payment(50_000));
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({ state: 'unknown', error: { source: 'integrity', code: 'CHECKVALUE_MISMATCH' } });
        const stuck = await paymentWhen(res.body.id, (p) => p.resolutionAttempts >= 2);
        expect(stuck).toMatchObject({ state: 'unknown', error: { code: 'CHECKVALUE_MISMATCH' }, assist: null });

        sandbox.setMode('normal', { endpoint: 'orderstate' });
        await paymentWhen(res.body.id, (p) => p.state === 'approved');
      } finally {
        sandbox.setMode('normal', { endpoint: 'all' });
      }
    });
  });

  describe('reading and isolation', () => {
    it('lists with filters and cursor pagination', async () => {
      const first = await session.http().get('/v1/wallet-payments').query({ state: 'approved', limit: 2 }).set(auth);
      expect(first.status).toBe(200);
      expect(first.body.data).toHaveLength(2);
      expect(first.body.data.every((p: { state: string }) => p.state === 'approved')).toBe(true);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const second = await session.http().get('/v1/wallet-payments').query({ state: 'approved', limit: 2, cursor: first.body.nextCursor }).set(auth);
      expect(second.body.data.map((p: { id: string }) => p.id)).not.toContain(first.body.data[0].id);
      const byOrder = await session.http().get('/v1/wallet-payments').query({ orderNumber: 'ORDER-2STAGE-1' }).set(auth);
      expect(byOrder.body.data.map((p: { state: string }) => p.state)).toEqual(['authorized']);
      const google = await session.http().get('/v1/wallet-payments').query({ tokenType: 'google_pay', limit: 200 }).set(auth);
      expect(google.body.data.length).toBeGreaterThanOrEqual(3);
      expect(google.body.data.every((p: { tokenType: string }) => p.tokenType === 'google_pay')).toBe(true);
    });

    it("a tenant cannot pay with another tenant's merchant settings nor read its payments (404, enforced by RLS)", async () => {
      const other = await session.tenant();
      const otherAuth = { Authorization: `Bearer ${other.apiKey}` };
      const theirs = await pay(payment(1000), idem(), otherAuth);
      expect(theirs.status).toBe(404);
      expect(theirs.body.error.code).toBe('NOT_FOUND');
      expect((await session.http().get(`/v1/assist-merchants/${merchantId}`).set(otherAuth)).status).toBe(404);

      const mine = (await session.http().get('/v1/wallet-payments').set(auth)).body.data[0] as { id: string };
      const read = await session.http().get(`/v1/wallet-payments/${mine.id}`).set(otherAuth);
      expect(read.status).toBe(404);
      expect((await session.http().get('/v1/wallet-payments').set(otherAuth)).body.data).toEqual([]);
      // The same lookups through the tenant-scoped client: RLS, not a WHERE clause, hides the rows.
      const seen = await session.appDb.withTenant(other.tenantId, async (tx) => ({
        payment: await tx.walletPayment.findUnique({ where: { id: mine.id } }),
        merchant: await tx.assistMerchant.findUnique({ where: { id: merchantId } }),
      }));
      expect(seen).toEqual({ payment: null, merchant: null });
    });

    it('keeps merchant settings that payments reference (409 RESOURCE_IN_USE)', async () => {
      const res = await session.http().delete(`/v1/assist-merchants/${merchantId}`).set(auth).set('Idempotency-Key', idem());
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('RESOURCE_IN_USE');
    });
  });
});

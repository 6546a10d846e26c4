import { randomBytes, randomUUID } from 'node:crypto';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import { toOrderAmount } from '@payorch/assist-tokenpay';
import { type GatewayConfig, gatewayConfigSchema, loadConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { SecretBox, type TenantContext } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase, testRedisPrefix, testRedisUrl } from '@payorch/testing';
import { type AssistSandbox, SANDBOX_MERCHANT, startAssistSandbox, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';
import { createAssistClient, sealMerchantSecrets, transitionWalletPayment, type WalletPaymentRow } from '@payorch/wallet-payments';

import { createGatewayApp } from '../bootstrap';
import type { CreateWalletPaymentDto } from './dto/wallet-payment.dto';
import { WalletPaymentsService } from './wallet-payments.service';

const APPLE_PAY_TOKEN = { version: 'EC_v1', data: 'ZGF0YQ==', signature: 'c2ln', header: { transactionId: 't' } };

/**
 * The gateway's side of a wallet payment against the resolution job, the other writer of its state (real
 * Postgres + Redis + Assist sandbox). The HTTP idempotency record is not involved: these call the service as a
 * request does once that record expired (24 h).
 */
describe(`${WalletPaymentsService.name} (real Postgres + Redis + Assist sandbox)`, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let sandbox: AssistSandbox;
  let config: GatewayConfig;
  let app: INestApplication;
  let sut: WalletPaymentsService;
  let ctx: TenantContext;
  let merchantRowId: string;

  const payment = (amount: number, extra: Partial<CreateWalletPaymentDto> = {}): CreateWalletPaymentDto =>
    ({
      merchantId: merchantRowId,
      amount,
      currency: 'RUB',
      tokenType: 'APPLE_PAY',
      token: APPLE_PAY_TOKEN,
      customer: { lastname: 'L', firstname: 'F', email: 'a@b.cd' },
      ...extra,
    }) as CreateWalletPaymentDto;

  /**
   * What the worker's resolution job does with a PENDING payment (apps/settlement-worker, which an app cannot
   * import): reads the order at Assist and, as Assist does not know it, rejects it through the state's owner.
   */
  async function resolveAsTheWorkerDoes(row: WalletPaymentRow) {
    const client = createAssistClient(
      { serverUrl: sandbox.url, merchantId: SANDBOX_MERCHANT.merchantId },
      { ...SANDBOX_MERCHANT, privateKeyPem: null, assistPublicKeyPem: null },
    );
    const expected = { orderAmount: toOrderAmount(row.amount, row.currency), orderCurrency: row.currency };
    expect(await client.resolveOrder(row.orderNumber, expected)).toMatchObject({ status: 'not_found' });
    const written = await db.withTenant(ctx, (tx) =>
      transitionWalletPayment(tx, {
        paymentId: row.id,
        from: ['PENDING'],
        change: {
          state: 'REJECTED',
          completedAt: new Date(),
          error: { source: 'payorch', code: 'ORDER_NOT_FOUND', message: 'Assist has no order with this number', firstCode: 10, secondCode: null, field: null },
        },
        countResolutionAttempt: true,
      }),
    );
    expect(written?.row.state).toBe('REJECTED');
  }

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    sandbox = await startAssistSandbox();
    config = loadConfig('api-gateway', gatewayConfigSchema, {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_URL: testRedisUrl(),
      REDIS_KEY_PREFIX: testRedisPrefix('gw-wallet'),
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: 'silent',
      // The Assist sandbox listens on loopback, which only the operator can allow.
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8, ::1',
      ASSIST_TIMEOUT_MS: '1000',
    });
    app = await createGatewayApp(config, { logger: createLogger({ name: 'test', level: 'silent' }) });
    await app.init();
    sut = app.get(WalletPaymentsService);

    const tenantId = (await owner.tenant.create({ data: { name: 'Wallet tenant' } })).id;
    ctx = { tenantId, actor: { type: 'api_key', id: null }, requestId: 'req-wallet' };
    merchantRowId = randomUUID();
    await owner.assistMerchant.create({
      data: {
        id: merchantRowId,
        tenantId,
        name: 'sandbox',
        merchantId: SANDBOX_MERCHANT.merchantId,
        serverUrl: sandbox.url,
        secretsEncrypted: sealMerchantSecrets(SecretBox.fromConfig(config.PAYORCH_MASTER_KEY), tenantId, merchantRowId, {
          login: SANDBOX_MERCHANT.login,
          password: SANDBOX_MERCHANT.password,
          salt: SANDBOX_MERCHANT.salt,
          privateKeyPem: TEST_MERCHANT_PRIVATE_KEY_PEM,
          assistPublicKeyPem: null,
        }),
      },
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    const redis = new Redis(config.REDIS_URL);
    await deleteRedisPrefix(redis, config.REDIS_KEY_PREFIX);
    await redis.quit();
    await db?.close();
    await owner?.$disconnect();
    await sandbox?.close();
    await testDb?.drop();
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('sends nothing when the resolution job moved the payment out of PENDING first, and answers with the stored row', async () => {
    // The job runs between the gateway's insert and its PENDING → PROCESSING compare-and-set.
    const gateway = sut as unknown as { insert: (...args: unknown[]) => Promise<WalletPaymentRow | null> };
    const insert = gateway.insert.bind(sut);
    jest.spyOn(gateway, 'insert').mockImplementationOnce(async (...args) => {
      const row = await insert(...args);
      if (row) await resolveAsTheWorkerDoes(row);
      return row;
    });
    const { tokenpayRequests, charges } = sandbox.stats;

    const answer = await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000));
    expect(answer).toMatchObject({ state: 'rejected', error: expect.objectContaining({ code: 'ORDER_NOT_FOUND' }) });
    expect(sandbox.stats).toMatchObject({ tokenpayRequests, charges });
    expect(sandbox.orders.has(answer.orderNumber)).toBe(false);
    const events = await owner.domainEvent.findMany({ where: { subjectId: answer.id }, orderBy: { createdAt: 'asc' } });
    expect(events.map((e) => [e.type, (e.data as { state: string }).state])).toEqual([
      ['wallet_payment.created', 'pending'],
      ['wallet_payment.updated', 'rejected'],
    ]);
  });

  it('replays a capture for its Idempotency-Key only with the same request; another amount or action is IDEMPOTENCY_KEY_REUSED', async () => {
    const paid = await sut.create(ctx, `pay-${randomUUID()}`, payment(10_000, { twoStage: true }));
    expect(paid).toMatchObject({ state: 'authorized' });
    const key = `capture-${randomUUID()}`;
    expect(await sut.operate(ctx, key, paid.id, 'capture', { amount: 3_000 })).toMatchObject({ state: 'partially_captured' });
    const { chargeRequests, cancelRequests } = sandbox.stats;

    expect(await sut.operate(ctx, key, paid.id, 'capture', { amount: 3_000 })).toMatchObject({
      state: 'partially_captured',
      amounts: expect.objectContaining({ captured: 3_000 }),
    });
    await expect(sut.operate(ctx, key, paid.id, 'capture', { amount: 4_000 })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    await expect(sut.operate(ctx, key, paid.id, 'cancel', { amount: 3_000 })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    await expect(sut.operate(ctx, key, paid.id, 'capture', {})).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(sandbox.stats).toMatchObject({ chargeRequests, cancelRequests });
    expect(await owner.walletPaymentOperation.count({ where: { paymentId: paid.id } })).toBe(1);
  });

  it('sends once and stores the answer when nothing interferes', async () => {
    const { tokenpayRequests } = sandbox.stats;
    const answer = await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000));
    expect(answer).toMatchObject({ state: 'approved', error: null });
    expect(sandbox.stats.tokenpayRequests).toBe(tokenpayRequests + 1);
  });
});

import { randomBytes, randomUUID } from 'node:crypto';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import { toOrderAmount } from '@payorch/assist-tokenpay';
import { type GatewayConfig, gatewayConfigSchema, loadConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { TenantContext } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase, testRedisPrefix, testRedisUrl } from '@payorch/testing';
import { type AssistSandbox, SANDBOX_MERCHANT, startAssistSandbox } from '@payorch/testing/assist-sandbox';
import { createSandboxMerchant, SANDBOX_APPLE_PAY_TOKEN } from '@payorch/testing/assist-sandbox/merchant';
import { createAssistClient, transitionWalletPayment, type WalletPaymentRow } from '@payorch/wallet-payments';

import { AssistMerchantsService } from '../assist-merchants/assist-merchants.service';
import { createGatewayApp } from '../bootstrap';
import { type CreateWalletPaymentDto, listWalletPaymentsQuery, resolveWalletOperationSchema, resolveWalletPaymentSchema } from './dto/wallet-payment.dto';
import { WalletPaymentsService } from './wallet-payments.service';

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
      token: SANDBOX_APPLE_PAY_TOKEN,
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
    merchantRowId = await createSandboxMerchant(owner, config.PAYORCH_MASTER_KEY, { tenantId, serverUrl: sandbox.url, name: 'sandbox' });
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

  /** Merchant settings stored as they are (no API checks): `serverUrl` reaches the sandbox, the account is the sandbox's. */
  const merchantRow = (tenantId: string, serverUrl: string, extra: { duplicateOfId?: string } = {}) =>
    createSandboxMerchant(owner, config.PAYORCH_MASTER_KEY, { tenantId, serverUrl, name: 'sandbox again', ...extra });

  const noMoney = { authorized: 0, captured: 0, released: 0, refunded: 0 };

  describe('an order number reused at one Assist account through a second settings row', () => {
    it("never takes over the first payment's order: Assist refuses the duplicate, the payment is REJECTED (ORDER_NUMBER_TAKEN), no money", async () => {
      // Two rows of one tenant for one Assist account: the second reaches the same server under another name (an
      // alias no origin normalisation can fold, so the one-row-per-account index cannot stop it).
      const alias = await merchantRow(ctx.tenantId, sandbox.url.replace('127.0.0.1', 'localhost'));
      const orderNumber = `shop-${randomUUID()}`;
      const first = await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000, { orderNumber }));
      expect(first).toMatchObject({ state: 'approved', amounts: { authorized: 7_000, captured: 7_000 } });
      const { charges, tokenpayRequests } = sandbox.stats;

      const second = await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000, { orderNumber, merchantId: alias }));
      expect(second).toMatchObject({
        state: 'rejected',
        assist: null,
        amounts: noMoney,
        error: { source: 'payorch', code: 'ORDER_NUMBER_TAKEN', firstCode: 11 },
      });
      expect(second.error?.message).toContain(first.id);
      expect(sandbox.stats).toMatchObject({ charges, tokenpayRequests: tokenpayRequests + 1 });
      expect(await owner.walletPayment.findUniqueOrThrow({ where: { id: second.id } })).toMatchObject({ refusedAsDuplicate: true });
      // Nothing to refund: the first payment's money stays the first payment's.
      await expect(sut.operate(ctx, `refund-${randomUUID()}`, second.id, 'cancel', {})).rejects.toMatchObject({ code: 'WALLET_PAYMENT_NOT_CANCELABLE' });
    });

    it('of another tenant on the same Assist account: a recent order is not adopted (UNKNOWN, ORDER_NOT_PROVEN), an older one is REJECTED', async () => {
      // Its own sandbox, whose clock can date the first order in the past.
      let shiftMs = 0;
      const own = await startAssistSandbox({ now: () => new Date(Date.now() + shiftMs) });
      try {
        const other = { ...ctx, tenantId: (await owner.tenant.create({ data: { name: 'Same Assist account' } })).id };
        const rowA = await merchantRow(ctx.tenantId, own.url);
        const rowB = await merchantRow(other.tenantId, own.url);

        const recent = `shop-${randomUUID()}`;
        expect(await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000, { orderNumber: recent, merchantId: rowA }))).toMatchObject({ state: 'approved' });
        // Created seconds before: only the clock tells it from a replay of this payment's own request, and not well enough.
        const unproven = await sut.create(other, `pay-${randomUUID()}`, payment(7_000, { orderNumber: recent, merchantId: rowB }));
        expect(unproven).toMatchObject({ state: 'unknown', assist: null, amounts: noMoney, error: { code: 'ORDER_NOT_PROVEN', firstCode: 11 } });

        const older = `shop-${randomUUID()}`;
        shiftMs = -10 * 60_000;
        expect(await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000, { orderNumber: older, merchantId: rowA }))).toMatchObject({ state: 'approved' });
        shiftMs = 0;
        const rejected = await sut.create(other, `pay-${randomUUID()}`, payment(7_000, { orderNumber: older, merchantId: rowB }));
        expect(rejected).toMatchObject({ state: 'rejected', assist: null, amounts: noMoney, error: { code: 'ORDER_NUMBER_TAKEN', firstCode: 11 } });
        expect(own.stats.charges).toBe(2);
      } finally {
        await own.close();
      }
    });

    it('settings the migration marked as a duplicate of another row take no new payment, and their order numbers stay taken', async () => {
      const marked = await merchantRow(ctx.tenantId, sandbox.url, { duplicateOfId: merchantRowId });
      const { tokenpayRequests } = sandbox.stats;
      await expect(sut.create(ctx, `pay-${randomUUID()}`, payment(7_000, { merchantId: marked }))).rejects.toMatchObject({
        code: 'ASSIST_MERCHANT_DUPLICATE',
        details: { existingId: merchantRowId },
      });
      // A payment it made before the migration: its order number is the account's, not the row's.
      const orderNumber = `old-${randomUUID()}`;
      await owner.walletPayment.create({
        data: {
          tenantId: ctx.tenantId,
          merchantId: marked,
          orderNumber,
          amount: 7_000n,
          currency: 'RUB',
          tokenType: 'APPLE_PAY',
          idempotencyKey: `old-${orderNumber}`,
          requestHash: 'h',
          state: 'APPROVED',
        },
      });
      await expect(sut.create(ctx, `pay-${randomUUID()}`, payment(7_000, { orderNumber }))).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(sandbox.stats.tokenpayRequests).toBe(tokenpayRequests);
    });
  });

  describe('one settings row per Assist account and tenant', () => {
    const body = (extra: Record<string, unknown> = {}) => ({
      name: 'Sandbox',
      serverUrl: sandbox.url,
      merchantId: SANDBOX_MERCHANT.merchantId,
      login: SANDBOX_MERCHANT.login,
      password: SANDBOX_MERCHANT.password,
      salt: SANDBOX_MERCHANT.salt,
      ...extra,
    });

    it('refuses a second row for the account (however its address is spelled) and a PATCH onto it with 409 ASSIST_MERCHANT_DUPLICATE', async () => {
      const merchants = app.get(AssistMerchantsService);
      const tenant = { ...ctx, tenantId: (await owner.tenant.create({ data: { name: 'Settings' } })).id };
      const first = await merchants.create(tenant, body());
      for (const spelling of [
        body(),
        body({ serverUrl: `${sandbox.url.replace('http:', 'HTTP:')}/pay/` }),
        body({ merchantId: `00${SANDBOX_MERCHANT.merchantId}` }),
      ]) {
        await expect(merchants.create(tenant, spelling)).rejects.toMatchObject({ code: 'ASSIST_MERCHANT_DUPLICATE', details: { existingId: first.id } });
      }
      const elsewhere = await merchants.create(tenant, body({ merchantId: '100200' }));
      await expect(merchants.update(tenant, elsewhere.id, { merchantId: SANDBOX_MERCHANT.merchantId })).rejects.toMatchObject({
        code: 'ASSIST_MERCHANT_DUPLICATE',
        details: { existingId: first.id },
      });
      expect(await merchants.update(tenant, elsewhere.id, { name: 'Renamed' })).toMatchObject({ merchantId: '100200' });
      // Two at once: the unique index decides, the loser is the same 409 (never a 500).
      const racing = await Promise.allSettled([
        merchants.create(tenant, body({ merchantId: '300400' })),
        merchants.create(tenant, body({ merchantId: '300400' })),
      ]);
      expect(racing.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(racing.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'ASSIST_MERCHANT_DUPLICATE' } });
      expect(await owner.assistMerchant.count({ where: { tenantId: tenant.tenantId } })).toBe(3);
      // Another tenant may hold the same account (its own contract with Assist is not ours to judge).
      const someoneElse = { ...ctx, tenantId: (await owner.tenant.create({ data: { name: 'Other' } })).id };
      await expect(merchants.create(someoneElse, body())).resolves.toMatchObject({ merchantId: SANDBOX_MERCHANT.merchantId });
    });

    it('a PATCH giving a marked duplicate an account of its own opens it to payments again', async () => {
      const merchants = app.get(AssistMerchantsService);
      const marked = await merchantRow(ctx.tenantId, sandbox.url, { duplicateOfId: merchantRowId });
      await expect(merchants.update(ctx, marked, { name: 'still a duplicate' })).resolves.toMatchObject({ name: 'still a duplicate' });
      await expect(merchants.update(ctx, marked, { serverUrl: `${sandbox.url}/` })).rejects.toMatchObject({ code: 'ASSIST_MERCHANT_DUPLICATE' });
      await merchants.update(ctx, marked, { merchantId: '555666' });
      expect(await owner.assistMerchant.findUniqueOrThrow({ where: { id: marked } })).toMatchObject({ duplicateOfId: null, merchantId: '555666' });
    });
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

  describe('human resolution (POST …/resolve, …/operations/{operationId}/resolve)', () => {
    /** A payment Assist charged but answered 2/1 (sandbox amounts ending in 05): UNKNOWN, and no worker runs here. */
    async function unknownPayment(amount: number, extra: Partial<CreateWalletPaymentDto> = {}) {
      const paid = await sut.create(ctx, `pay-${randomUUID()}`, payment(amount, extra));
      expect(paid).toMatchObject({ state: 'unknown', amounts: noMoney, error: { code: 'INTERNAL_ERROR' } });
      return { ...paid, billNumber: sandbox.orders.get(paid.orderNumber)!.billnumber };
    }
    /** The payment's events since it became UNKNOWN (the verdict's, whoever decided). */
    const updates = async (id: string) => {
      const all = await owner.domainEvent.findMany({ where: { subjectId: id }, orderBy: { createdAt: 'asc' }, select: { type: true, data: true } });
      return all.slice(all.findIndex((e) => (e.data as { state: string }).state === 'unknown') + 1);
    };
    const audits = (id: string, action: string) => owner.auditLog.findMany({ where: { resourceId: id, action }, orderBy: { createdAt: 'asc' } });
    /** What the resolution job writes once it read the order and found it this payment's (from the state it read). */
    const jobAdopts = (row: { id: string }, from: 'UNKNOWN' = 'UNKNOWN') =>
      db.withTenant(ctx, (tx) =>
        transitionWalletPayment(tx, {
          paymentId: row.id,
          from: [from],
          change: { state: 'APPROVED', error: null, completedAt: new Date(), amounts: { authorized: 10_005n, captured: 10_005n, released: 0n, refunded: 0n } },
          countResolutionAttempt: true,
        }),
      );

    it('resolves an unknown one-stage payment to approved with the amounts of a paid order, its billnumber, one event and an audit row', async () => {
      const open = await unknownPayment(10_005);
      const note = 'Assist back office: Approved, card 4111111111111111';
      const key = `resolve-${randomUUID()}`;
      // The body as the route's pipe hands it over (a card number in the note masked).
      const resolved = await sut.resolve(ctx, key, open.id, resolveWalletPaymentSchema.parse({ state: 'approved', note, billNumber: open.billNumber }));
      expect(resolved).toMatchObject({
        state: 'approved',
        error: null,
        completedAt: expect.any(String),
        amounts: { authorized: 10_005, captured: 10_005, released: 0, refunded: 0 },
        assist: { billNumber: open.billNumber, orderState: 'Approved', source: 'manual', duplicate: false, amount: '100.05', currency: 'RUB' },
      });
      const [event, ...more] = await updates(open.id);
      expect(more).toEqual([]);
      expect(event).toMatchObject({
        type: 'wallet_payment.updated',
        data: {
          state: 'approved',
          previousState: 'unknown',
          capturedAmount: '10005',
          resolvedBy: 'human',
          note: 'Assist back office: Approved, card 411111******1111',
          billNumber: open.billNumber,
          actorType: 'api_key',
        },
      });
      const [entry] = await audits(open.id, 'wallet_payment.resolve');
      expect(entry).toMatchObject({ actorType: 'api_key', requestId: 'req-wallet' });
      expect(entry!.details).toMatchObject({ state: 'approved', billNumber: open.billNumber, previousErrorCode: 'INTERNAL_ERROR', idempotencyKey: key });
      // The verdict is final: a refund goes to Assist under the billnumber the person gave.
      expect(await sut.operate(ctx, `refund-${randomUUID()}`, open.id, 'cancel', { amount: 1_005 })).toMatchObject({
        state: 'partially_refunded',
        amounts: { captured: 10_005, refunded: 1_005 },
      });
    });

    it("says on the row who decided: resolution {by human, actor, masked note, billNumber, at} in the row, GET and the list; the job's verdict has none", async () => {
      const person: TenantContext = { ...ctx, actor: { type: 'admin', id: 'ops@console' } };
      const open = await unknownPayment(10_005);
      expect(open.resolution).toBeNull();
      const body = resolveWalletPaymentSchema.parse({
        state: 'approved',
        note: 'back office: Approved, card 4111 1111 1111 1111',
        billNumber: open.billNumber,
      });
      const resolved = await sut.resolve(person, `resolve-${randomUUID()}`, open.id, body);
      const resolution = {
        by: 'human',
        actor: { type: 'admin', id: 'ops@console' },
        note: 'back office: Approved, card 411111******1111',
        billNumber: open.billNumber,
        at: resolved.completedAt,
      };
      expect(resolved.resolution).toEqual(resolution);
      // Stored by the compare-and-set that applied the verdict: the row itself, not only the event and the audit log.
      const row = await owner.walletPayment.findUniqueOrThrow({ where: { id: open.id } });
      expect(row).toMatchObject({ state: 'APPROVED', resolution });
      expect(JSON.stringify(row.resolution)).not.toContain('4111 1111 1111 1111');
      expect((await sut.get(ctx, open.id)).resolution).toEqual(resolution);
      const listed = await sut.list(ctx, listWalletPaymentsQuery.parse({ orderNumber: open.orderNumber }));
      expect(listed.data.map((p) => p.resolution)).toEqual([resolution]);
      // A later operation moves the payment; the verdict stays on it.
      await sut.operate(ctx, `refund-${randomUUID()}`, open.id, 'cancel', { amount: 1_005 });
      expect(await sut.get(ctx, open.id)).toMatchObject({ state: 'partially_refunded', resolution, operations: [{ kind: 'refund', resolution: null }] });

      // Without a billnumber, and rejected: the resolution says so (null), the note masked the same way.
      const rejected = await unknownPayment(30_005);
      const none = await sut.resolve(
        person,
        `resolve-${randomUUID()}`,
        rejected.id,
        resolveWalletPaymentSchema.parse({ state: 'rejected', note: 'no order for 5555555555554444' }),
      );
      expect(none).toMatchObject({
        state: 'rejected',
        resolution: { by: 'human', actor: person.actor, note: 'no order for 555555******4444', billNumber: null, at: none.completedAt },
      });

      // The resolution job's verdict, and a payment Assist answered: no resolution.
      const byJob = await unknownPayment(10_005);
      await jobAdopts(byJob);
      expect(await sut.get(ctx, byJob.id)).toMatchObject({ state: 'approved', resolution: null });
      expect(await owner.walletPayment.findUniqueOrThrow({ where: { id: byJob.id } })).toMatchObject({ state: 'APPROVED', resolution: null });
      expect(await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000))).toMatchObject({ state: 'approved', resolution: null });
    });

    it('a two-stage payment resolves to authorized (held, nothing captured) and is then captured; a paid verdict that does not fit is 422', async () => {
      const held = await unknownPayment(10_005, { twoStage: true });
      const oneStage = await unknownPayment(20_005);
      await expect(sut.resolve(ctx, `resolve-${randomUUID()}`, held.id, { state: 'approved', note: 'back office: Delayed' })).rejects.toMatchObject({
        code: 'WALLET_RESOLUTION_STATE_MISMATCH',
        details: { twoStage: true },
      });
      await expect(sut.resolve(ctx, `resolve-${randomUUID()}`, oneStage.id, { state: 'authorized', note: 'back office: Approved' })).rejects.toMatchObject({
        code: 'WALLET_RESOLUTION_STATE_MISMATCH',
        details: { twoStage: false },
      });
      expect(await updates(held.id)).toEqual([]);

      const resolved = await sut.resolve(ctx, `resolve-${randomUUID()}`, held.id, {
        state: 'authorized',
        note: 'back office: Delayed',
        billNumber: held.billNumber,
      });
      expect(resolved).toMatchObject({ state: 'authorized', amounts: { authorized: 10_005, captured: 0, released: 0, refunded: 0 } });
      expect(await sut.operate(ctx, `capture-${randomUUID()}`, held.id, 'capture', {})).toMatchObject({
        state: 'approved',
        amounts: { authorized: 10_005, captured: 10_005 },
      });
    });

    it('declined and rejected move no money and keep the note as the error', async () => {
      for (const state of ['declined', 'rejected'] as const) {
        const open = await unknownPayment(30_005);
        expect(await sut.resolve(ctx, `resolve-${randomUUID()}`, open.id, { state, note: 'bank statement: nothing' })).toMatchObject({
          state,
          amounts: noMoney,
          assist: null,
          error: { source: 'payorch', code: 'RESOLVED_MANUALLY', message: 'resolved by hand: bank statement: nothing' },
        });
      }
    });

    it('is 409 WALLET_PAYMENT_NOT_UNKNOWN from any other state, changing nothing', async () => {
      const approved = await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000));
      const processing = await sut.create(ctx, `pay-${randomUUID()}`, payment(7_002));
      expect(processing).toMatchObject({ state: 'processing' });
      for (const paid of [approved, processing]) {
        await expect(sut.resolve(ctx, `resolve-${randomUUID()}`, paid.id, { state: 'declined', note: 'checked' })).rejects.toMatchObject({
          code: 'WALLET_PAYMENT_NOT_UNKNOWN',
          details: { state: paid.state },
        });
        expect(await sut.get(ctx, paid.id)).toMatchObject({ state: paid.state, amounts: paid.amounts });
        expect(await audits(paid.id, 'wallet_payment.resolve')).toEqual([]);
      }
      await expect(sut.resolve(ctx, `resolve-${randomUUID()}`, randomUUID(), { state: 'declined', note: 'checked' })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });

    it('against the resolution job: one decides, and the job never writes over a verdict', async () => {
      // The job first: the person is told (409), nothing is overwritten.
      const first = await unknownPayment(10_005);
      expect(await jobAdopts(first)).toMatchObject({ row: { state: 'APPROVED' } });
      await expect(sut.resolve(ctx, `resolve-${randomUUID()}`, first.id, { state: 'declined', note: 'checked' })).rejects.toMatchObject({
        code: 'WALLET_PAYMENT_NOT_UNKNOWN',
        details: { state: 'approved' },
      });

      // The person first: the job's next write (from the UNKNOWN it read) finds the row gone from UNKNOWN and writes nothing.
      const second = await unknownPayment(10_005);
      await sut.resolve(ctx, `resolve-${randomUUID()}`, second.id, { state: 'declined', note: 'back office: Declined' });
      expect(await jobAdopts(second)).toBeNull();
      expect(
        await db.withTenant(ctx, (tx) => transitionWalletPayment(tx, { paymentId: second.id, from: ['UNKNOWN'], change: null, countResolutionAttempt: true })),
      ).toBeNull();
      expect(await sut.get(ctx, second.id)).toMatchObject({ state: 'declined', amounts: noMoney, resolutionAttempts: 0 });

      // At the same moment: exactly one of them writes, and the row and its one event are the winner's.
      const third = await unknownPayment(10_005);
      const [human, job] = await Promise.allSettled([
        sut.resolve(ctx, `resolve-${randomUUID()}`, third.id, { state: 'declined', note: 'back office: Declined' }),
        jobAdopts(third),
      ]);
      const jobWon = job.status === 'fulfilled' && job.value !== null;
      expect([human.status === 'fulfilled', jobWon]).toEqual(jobWon ? [false, true] : [true, false]);
      if (jobWon) expect(human).toMatchObject({ reason: { code: 'WALLET_PAYMENT_NOT_UNKNOWN' } });
      const stored = await sut.get(ctx, third.id);
      expect(stored.state).toBe(jobWon ? 'approved' : 'declined');
      expect((await updates(third.id)).map((e) => (e.data as { state: string }).state)).toEqual([stored.state]);
    });

    it('replays the same request for its Idempotency-Key (also after the 24 h record); another verdict with it is IDEMPOTENCY_KEY_REUSED', async () => {
      const open = await unknownPayment(10_005);
      const key = `resolve-${randomUUID()}`;
      const body = { state: 'approved' as const, note: 'back office: Approved' };
      const first = await sut.resolve(ctx, key, open.id, body);
      expect(await sut.resolve(ctx, key, open.id, body)).toEqual(first);
      await expect(sut.resolve(ctx, key, open.id, { ...body, note: 'something else' })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
      await expect(sut.resolve(ctx, key, open.id, { state: 'declined', note: body.note })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
      // Another key finds the verdict taken.
      await expect(sut.resolve(ctx, `resolve-${randomUUID()}`, open.id, body)).rejects.toMatchObject({ code: 'WALLET_PAYMENT_NOT_UNKNOWN' });
      expect(await updates(open.id)).toHaveLength(1);
      expect(await audits(open.id, 'wallet_payment.resolve')).toHaveLength(1);
    });

    it("refuses a billnumber that is not this payment's order: another Assist named, or another payment holds (409 CONFLICT)", async () => {
      const holder = await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000));
      // Another settings row of the same Assist Merchant_ID (no request goes to it here).
      const alias = await merchantRow(ctx.tenantId, sandbox.url.replace('127.0.0.1', '127.0.0.2'));
      const sameNumber = await owner.walletPayment.create({
        data: {
          tenantId: ctx.tenantId,
          merchantId: alias,
          orderNumber: holder.orderNumber,
          amount: 7_000n,
          currency: 'RUB',
          tokenType: 'APPLE_PAY',
          idempotencyKey: `k-${randomUUID()}`,
          requestHash: 'h',
          state: 'UNKNOWN',
        },
      });
      await expect(
        sut.resolve(ctx, `resolve-${randomUUID()}`, sameNumber.id, { state: 'approved', note: 'back office', billNumber: holder.assist!.billNumber }),
      ).rejects.toMatchObject({ code: 'CONFLICT', details: { paymentId: holder.id } });
      // A neighbouring payment's order under another number (a back-office row copied by mistake): this payment's later
      // cancel or refund would go to that order, and pay that customer. Accepted until 2026-12-07.
      const otherNumber = await unknownPayment(10_005);
      await expect(
        sut.resolve(ctx, `resolve-${randomUUID()}`, otherNumber.id, { state: 'approved', note: 'back office', billNumber: holder.assist!.billNumber }),
      ).rejects.toMatchObject({ code: 'CONFLICT', details: { paymentId: holder.id } });

      const named = await unknownPayment(10_005);
      await db.withTenant(ctx, (tx) =>
        transitionWalletPayment(tx, {
          paymentId: named.id,
          from: ['UNKNOWN'],
          change: { state: 'UNKNOWN', error: null, completedAt: null, assistOrder: { billNumber: named.billNumber, duplicate: false } as never },
        }),
      );
      await expect(
        sut.resolve(ctx, `resolve-${randomUUID()}`, named.id, { state: 'approved', note: 'back office', billNumber: '5899110299999999' }),
      ).rejects.toMatchObject({ code: 'CONFLICT', details: { billNumber: named.billNumber } });
      expect(
        await sut.resolve(ctx, `resolve-${randomUUID()}`, named.id, { state: 'approved', note: 'back office', billNumber: named.billNumber }),
      ).toMatchObject({
        state: 'approved',
        assist: { billNumber: named.billNumber, duplicate: false },
      });
    });

    describe('an operation left unknown', () => {
      /**
       * A two-stage payment with a capture of `amount` whose outcome is open: its answer was lost (the sandbox charged
       * it), or Assist answered HTTP 500 (it did not).
       */
      async function unknownCapture(amount?: number, mode: 'lost-answer' | 'http500' = 'lost-answer') {
        const held = await sut.create(ctx, `pay-${randomUUID()}`, payment(10_000, { twoStage: true }));
        sandbox.setMode(mode, { endpoint: 'charge', times: 1 });
        const after = await sut.operate(ctx, `capture-${randomUUID()}`, held.id, 'capture', amount === undefined ? {} : { amount });
        expect(after).toMatchObject({ state: 'authorized', operations: [{ state: 'unknown', kind: 'capture' }] });
        return { payment: after, operationId: after.operations[0]!.id, billNumber: held.assist!.billNumber };
      }

      it('succeeded: moves the amounts and state exactly as the job would, with its event and audit row', async () => {
        const { payment: held, operationId, billNumber } = await unknownCapture(4_000);
        const key = `resolve-op-${randomUUID()}`;
        const resolved = await sut.resolveOperation(ctx, key, held.id, operationId, {
          state: 'succeeded',
          note: 'back office: Charge Success',
          billNumber: `${billNumber}.2`,
        });
        expect(resolved).toMatchObject({
          state: 'partially_captured',
          amounts: { authorized: 10_000, captured: 4_000, released: 0, refunded: 0 },
          operations: [{ id: operationId, state: 'succeeded', assistBillNumber: `${billNumber}.2`, error: null, completedAt: expect.any(String) }],
        });
        // The verdict is the operation's, on its row; the payment moved with it but nobody decided the payment itself.
        const resolution = {
          by: 'human',
          actor: { type: 'api_key', id: null },
          note: 'back office: Charge Success',
          billNumber: `${billNumber}.2`,
          at: resolved.operations[0]!.completedAt,
        };
        expect(resolved.operations[0]!.resolution).toEqual(resolution);
        expect(resolved.resolution).toBeNull();
        expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({ state: 'SUCCEEDED', resolution });
        expect(await owner.walletPayment.findUniqueOrThrow({ where: { id: held.id } })).toMatchObject({ state: 'PARTIALLY_CAPTURED', resolution: null });
        const event = await owner.domainEvent.findFirst({ where: { subjectId: held.id, type: 'wallet_payment.partially_captured' } });
        expect(event).toMatchObject({
          type: 'wallet_payment.partially_captured',
          data: {
            state: 'partially_captured',
            capturedAmount: '4000',
            resolvedBy: 'human',
            note: 'back office: Charge Success',
            operation: { id: operationId, state: 'succeeded' },
          },
        });
        expect((await audits(held.id, 'wallet_payment.resolve_operation'))[0]!.details).toMatchObject({
          operationId,
          kind: 'capture',
          amount: '4000',
          state: 'succeeded',
        });
        // The rest is still capturable; the settled operation no longer blocks the payment.
        expect(await sut.operate(ctx, `capture-${randomUUID()}`, held.id, 'capture', {})).toMatchObject({
          state: 'approved',
          amounts: { captured: 10_000 },
          resolution: null,
          operations: [
            { id: operationId, resolution },
            { kind: 'capture', state: 'succeeded', resolution: null },
          ],
        });
        // Repeats: the same request replays, another is refused, another key finds it settled.
        const body = { state: 'succeeded' as const, note: 'back office: Charge Success', billNumber: `${billNumber}.2` };
        expect(await sut.resolveOperation(ctx, key, held.id, operationId, body)).toMatchObject({ state: 'approved' });
        await expect(sut.resolveOperation(ctx, key, held.id, operationId, { ...body, state: 'failed' })).rejects.toMatchObject({
          code: 'IDEMPOTENCY_KEY_REUSED',
        });
        await expect(sut.resolveOperation(ctx, `resolve-op-${randomUUID()}`, held.id, operationId, body)).rejects.toMatchObject({
          code: 'WALLET_OPERATION_NOT_UNKNOWN',
          details: { state: 'succeeded' },
        });
        expect(await audits(held.id, 'wallet_payment.resolve_operation')).toHaveLength(1);
      });

      it('failed: no money moves, the note is the error; a billnumber of another row or order is 409; another payment is 404', async () => {
        const { payment: held, operationId, billNumber } = await unknownCapture(undefined, 'http500');
        for (const wrong of [`${billNumber}.1`, '5899110299999999.2']) {
          await expect(
            sut.resolveOperation(ctx, `resolve-op-${randomUUID()}`, held.id, operationId, { state: 'failed', note: 'checked', billNumber: wrong }),
          ).rejects.toMatchObject({
            code: 'CONFLICT',
          });
        }
        const other = await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000));
        await expect(
          sut.resolveOperation(ctx, `resolve-op-${randomUUID()}`, other.id, operationId, { state: 'failed', note: 'checked' }),
        ).rejects.toMatchObject({
          code: 'NOT_FOUND',
        });
        const person: TenantContext = { ...ctx, actor: { type: 'admin', id: 'ops@console' } };
        // The body as the route's pipe hands it over (a card number in the note masked).
        const body = resolveWalletOperationSchema.parse({ state: 'failed', note: 'back office: no Charge for 4111111111111111' });
        const resolved = await sut.resolveOperation(person, `resolve-op-${randomUUID()}`, held.id, operationId, body);
        const note = 'back office: no Charge for 411111******1111';
        expect(resolved).toMatchObject({
          state: 'authorized',
          amounts: { authorized: 10_000, captured: 0 },
          resolution: null,
          operations: [{ state: 'failed', error: { code: 'RESOLVED_MANUALLY', message: `resolved by hand: ${note}` } }],
        });
        const resolution = { by: 'human', actor: { type: 'admin', id: 'ops@console' }, note, billNumber: null, at: resolved.operations[0]!.completedAt };
        expect(resolved.operations[0]!.resolution).toEqual(resolution);
        expect((await sut.get(ctx, held.id)).operations[0]!.resolution).toEqual(resolution);
        expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({ state: 'FAILED', resolution });
        const failed = (await updates(held.id)).find((e) => e.type === 'wallet_payment.operation_failed');
        expect(failed?.data).toMatchObject({ resolvedBy: 'human', operation: { id: operationId, state: 'failed', errorCode: 'RESOLVED_MANUALLY' } });
      });
    });
  });

  it('sends once and stores the answer when nothing interferes', async () => {
    const { tokenpayRequests } = sandbox.stats;
    const answer = await sut.create(ctx, `pay-${randomUUID()}`, payment(7_000));
    expect(answer).toMatchObject({ state: 'approved', error: null });
    expect(sandbox.stats.tokenpayRequests).toBe(tokenpayRequests + 1);
  });
});

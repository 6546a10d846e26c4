import { generateKeyPairSync, randomUUID } from 'node:crypto';

import type { INestApplication } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

import { AssistTokenPayClient, createRsaMd5Signer, type TokenPayRequest } from '@payorch/assist-tokenpay';
import type { WorkerConfig } from '@payorch/config';
import { createPrismaClient, type Prisma, type PrismaClient, type TransactionClient } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase, waitFor } from '@payorch/testing';
import { type AssistSandbox, SANDBOX_MERCHANT, startAssistSandbox, TEST_MERCHANT_PRIVATE_KEY_PEM } from '@payorch/testing/assist-sandbox';
import { createSandboxMerchant, SANDBOX_APPLE_PAY_TOKEN, SANDBOX_MERCHANT_SECRETS } from '@payorch/testing/assist-sandbox/merchant';
import { createAssistClient, resolveJobId, resolveWalletPaymentByHand, SWEEP_JOB } from '@payorch/wallet-payments';

import { createWorkerApp } from '../bootstrap';
import { WalletResolutionService } from './wallet-resolution.service';
import { testQueueOptions, testWorkerConfig } from '../testing/worker-config.testing';

const APPLE_PAY_TOKEN = JSON.stringify(SANDBOX_APPLE_PAY_TOKEN);

type PaymentRow = Prisma.WalletPaymentUncheckedCreateInput;
/** What a test says of a payment row; the rest is the gateway's (paymentRow). */
type PaymentFields = Omit<PaymentRow, 'tenantId' | 'merchantId' | 'orderNumber' | 'currency' | 'tokenType' | 'idempotencyKey' | 'requestHash'> &
  Partial<Pick<PaymentRow, 'tenantId' | 'merchantId' | 'orderNumber'>>;

/** A one-stage Apple Pay payment of `orderAmount` (RUB) as a shop sends it, `extra` on top. */
const payRequest = (orderNumber: string, orderAmount: string, extra: Partial<TokenPayRequest> = {}): TokenPayRequest => ({
  orderNumber,
  orderAmount,
  orderCurrency: 'RUB',
  ...extra,
  tokenType: 1,
  paymentToken: APPLE_PAY_TOKEN,
  lastname: 'L',
  firstname: 'F',
  email: 'a@b.cd',
});

describe('wallet payment resolution in the worker (real Postgres + Redis + Assist sandbox)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let sandbox: AssistSandbox;
  let config: WorkerConfig;
  let app: INestApplication;
  let queue: Queue;
  let tenantId: string;
  let merchantRowId: string;

  /**
   * A payment row as the gateway stores it (Apple Pay, RUB; its order number its id unless said), of the tenant's
   * sandbox settings unless `fields` name others. Returns its id.
   */
  async function paymentRow(fields: PaymentFields) {
    const id = fields.id ?? randomUUID();
    await owner.walletPayment.create({
      data: {
        tenantId,
        merchantId: merchantRowId,
        orderNumber: id,
        currency: 'RUB',
        tokenType: 'APPLE_PAY',
        idempotencyKey: `k-${id}`,
        requestHash: 'h',
        ...fields,
        id,
      },
    });
    return id;
  }

  /** The sandbox's client of the account (signs with the test merchant key), as a shop's own backend would pay. */
  const sandboxClient = () =>
    new AssistTokenPayClient({ ...SANDBOX_MERCHANT, baseUrl: sandbox.url, signer: createRsaMd5Signer(TEST_MERCHANT_PRIVATE_KEY_PEM) });

  /** A payment row as the gateway leaves it, without any job (as if Redis lost it). */
  async function strandedPayment(state: 'UNKNOWN' | 'PROCESSING' | 'REQUIRES_ACTION' | 'PENDING', amountMinor: bigint, createdAt = new Date()) {
    const id = await paymentRow({ amount: amountMinor, state, createdAt });
    // Unchanged for a while: what the sweep looks for.
    await owner.$executeRaw`UPDATE "WalletPayment" SET "updatedAt" = now() - interval '1 hour' WHERE "id" = ${id}::uuid`;
    return id;
  }

  async function waitForState(id: string, state: string, timeoutMs = 10_000) {
    return waitFor(
      async () => {
        const row = await owner.walletPayment.findUniqueOrThrow({ where: { id } });
        return row.state === state && row;
      },
      { timeoutMs, intervalMs: 50, what: `payment ${id} ${state}` },
    );
  }

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    sandbox = await startAssistSandbox();
    config = testWorkerConfig(testDb.appUrl, 'wallet-worker', {
      // The Assist sandbox listens on loopback, which only the operator can allow.
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8, ::1',
      ASSIST_ORDERSTATE_TIMEOUT_MS: '1000',
      WALLET_RESOLVE_BACKOFF_MS: '100',
      WALLET_RESOLVE_ATTEMPTS: '2',
      WALLET_SWEEP_INTERVAL_MS: '3600000',
      WALLET_SWEEP_OLDER_THAN_MS: '60000',
      WALLET_NOT_FOUND_GRACE_MS: '60000',
    });
    app = await createWorkerApp(config, createLogger({ name: 'test', level: 'silent' }));
    await app.init();
    queue = new Queue(QUEUES.walletPayments, testQueueOptions(config));
    // The sweep's scheduler runs its first pass as soon as the worker starts: once it is over, the tests' own sweeps are
    // the only ones for an hour. (On a loaded CI machine that first pass once ran after a test had stranded its payment,
    // took it, and the test's sweep found its job already there.)
    await waitFor(async () => (await queue.getJobs(['completed'])).some((job) => job.name === SWEEP_JOB), {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: "the scheduler's first wallet payment sweep",
    });

    tenantId = (await owner.tenant.create({ data: { name: 'Wallet tenant' } })).id;
    merchantRowId = await createSandboxMerchant(owner, config.PAYORCH_MASTER_KEY, { tenantId, serverUrl: sandbox.url, name: 'sandbox' });
  }, 60_000);

  afterAll(async () => {
    await queue?.close();
    await app?.close();
    const redis = new Redis(config.REDIS_URL);
    await deleteRedisPrefix(redis, config.REDIS_KEY_PREFIX);
    await redis.quit();
    await owner?.$disconnect();
    await sandbox?.close();
    await testDb?.drop();
  });

  it("with Assist's public key configured on the merchant, an unsigned answer is never trusted (SIGNATURE_MISSING)", async () => {
    // A sandbox of its own: the other tests count the shared sandbox's charges.
    const own = await startAssistSandbox();
    try {
      await expectUnsignedAnswersRefused(own);
    } finally {
      await own.close();
    }
  });

  async function expectUnsignedAnswersRefused(sandbox: AssistSandbox) {
    const orderNumber = randomUUID();
    const merchant = { serverUrl: sandbox.url, merchantId: SANDBOX_MERCHANT.merchantId };
    const secrets = { ...SANDBOX_MERCHANT, ...SANDBOX_MERCHANT_SECRETS };
    const paid = await createAssistClient(merchant, secrets).pay(payRequest(orderNumber, '1.00'));
    expect(paid.status).toBe('approved');
    // The sandbox does not sign its answers: checked by checkvalue only, the order reads; with the key, it is refused.
    expect(await createAssistClient(merchant, secrets).getOrderState(orderNumber)).toMatchObject({ kind: 'order' });
    const { publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 1024,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    await expect(createAssistClient(merchant, { ...secrets, assistPublicKeyPem: publicKey }).getOrderState(orderNumber)).rejects.toMatchObject({
      code: 'SIGNATURE_MISSING',
    });
  }

  it('the sweep finds a payment whose job was lost and resolves it from the order state, without paying again', async () => {
    const id = await strandedPayment('UNKNOWN', 12_300n);
    // Assist did take the payment (the gateway only lost the answer).
    const paid = await sandboxClient().pay(payRequest(id, '123.00'));
    expect(paid.status).toBe('approved');
    const tokenpayRequests = sandbox.stats.tokenpayRequests;

    const swept = await app.get(WalletResolutionService).sweep(queue);
    expect(swept).toMatchObject({ added: 1 });
    const row = await waitForState(id, 'APPROVED');
    expect(row.assistOrder).toMatchObject({ orderState: 'Approved', source: 'orderstate' });
    expect(row.completedAt).not.toBeNull();
    expect(sandbox.stats.charges).toBe(1);
    expect(sandbox.stats.tokenpayRequests).toBe(tokenpayRequests);
    const events = await owner.domainEvent.findMany({ where: { subjectId: id } });
    expect(events.map((e) => e.data)).toEqual([expect.objectContaining({ state: 'approved', previousState: 'unknown', amount: '12300' })]);

    // A second run is a no-op: the job id is the payment's and the payment is final.
    expect(await app.get(WalletResolutionService).sweep(queue)).toMatchObject({ found: 0 });
    expect(await app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).toEqual({ paymentId: id, state: 'APPROVED', outcome: 'already_final' });
  });

  it('an order Assist does not know stays UNKNOWN within the grace period; its failed job is retried by the sweep', async () => {
    const id = await strandedPayment('UNKNOWN', 5_000n);
    await app.get(WalletResolutionService).sweep(queue);
    // WALLET_RESOLVE_ATTEMPTS=2: both attempts see "not found" too early, the job ends failed.
    await waitFor(async () => (await (await queue.getJob(resolveJobId(id)))?.getState()) === 'failed', { intervalMs: 50, what: 'the resolve job to fail' });
    const row = await owner.walletPayment.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ state: 'UNKNOWN', resolutionAttempts: 2 });

    // Each attempt touches the row; once it has again been unchanged for WALLET_SWEEP_OLDER_THAN_MS, the sweep retries the job.
    expect(await app.get(WalletResolutionService).sweep(queue)).toMatchObject({ found: 0 });
    await owner.$executeRaw`UPDATE "WalletPayment" SET "updatedAt" = now() - interval '1 hour' WHERE "id" = ${id}::uuid`;
    expect(await app.get(WalletResolutionService).sweep(queue)).toMatchObject({ found: 1, retried: 1 });
    expect(['waiting', 'active', 'delayed', 'failed']).toContain(await (await queue.getJob(resolveJobId(id)))!.getState());
  });

  it('concludes "never paid" (REJECTED, ORDER_NOT_FOUND) only after the grace period', async () => {
    const id = await strandedPayment('PROCESSING', 7_000n, new Date(Date.now() - 10 * 60_000));
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).resolves.toMatchObject({ state: 'REJECTED' });
    const row = await owner.walletPayment.findUniqueOrThrow({ where: { id } });
    expect(row.error).toMatchObject({ source: 'payorch', code: 'ORDER_NOT_FOUND' });
  });

  it('the sweep covers every non-final state: an abandoned 3-D Secure step (REQUIRES_ACTION) and a payment never sent (PENDING)', async () => {
    const abandoned = await strandedPayment('REQUIRES_ACTION', 9_100n, new Date(Date.now() - 10 * 60_000));
    const neverSent = await strandedPayment('PENDING', 9_200n, new Date(Date.now() - 10 * 60_000));
    await app.get(WalletResolutionService).sweep(queue);
    expect(await queue.getJob(resolveJobId(abandoned))).toBeDefined();
    expect(await queue.getJob(resolveJobId(neverSent))).toBeDefined();
    // Assist has no such orders: the payer never finished / the request never left; nothing was charged.
    expect(await waitForState(abandoned, 'REJECTED')).toMatchObject({ error: expect.objectContaining({ code: 'ORDER_NOT_FOUND' }) });
    expect(await waitForState(neverSent, 'REJECTED')).toMatchObject({ error: expect.objectContaining({ code: 'ORDER_NOT_FOUND' }) });
  });

  it('leaves a PENDING payment Assist does not know PENDING within the grace period: its gateway may still be sending it', async () => {
    const id = await strandedPayment('PENDING', 9_300n);
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).rejects.toThrow(/still PENDING/);
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id } })).toMatchObject({ state: 'PENDING', error: null, resolutionAttempts: 1 });
  });

  /**
   * A two-stage payment of 100.00 authorised at the sandbox, with a capture of `amount` stored PENDING as a gateway
   * leaves it when it dies mid-call (`sendIt`: the capture did reach Assist), unchanged for an hour.
   */
  async function strandedCapture(amount: bigint, sendIt: boolean, sentAt = new Date()) {
    const id = randomUUID();
    const client = sandboxClient();
    const paid = await client.pay(payRequest(id, '100.00', { delay: 1 }));
    if (paid.status !== 'authorized') throw new Error(paid.status);
    const billNumber = paid.order.billNumber;
    await paymentRow({
      id,
      amount: 10_000n,
      state: 'AUTHORIZED',
      twoStage: true,
      authorizedAmount: 10_000n,
      assistOrder: { orderNumber: id, billNumber, orderState: 'Delayed' },
    });
    const operationId = randomUUID();
    await owner.walletPaymentOperation.create({
      data: {
        id: operationId,
        tenantId,
        paymentId: id,
        kind: 'CAPTURE',
        amount,
        currency: 'RUB',
        idempotencyKey: `op-${operationId}`,
        state: 'PENDING',
        sentAt,
      },
    });
    if (sendIt) {
      const sent = await client.charge({ billNumber, orderNumber: id, orderAmount: '100.00', amount: (Number(amount) / 100).toFixed(2), currency: 'RUB' });
      expect(sent.status).toBe('succeeded');
    }
    await owner.$executeRaw`UPDATE "WalletPaymentOperation" SET "updatedAt" = now() - interval '1 hour' WHERE "id" = ${operationId}::uuid`;
    return { id, operationId };
  }

  it('the sweep finds a final payment with a capture left PENDING and settles it from orderstate, without a second Charge', async () => {
    const { id, operationId } = await strandedCapture(3_000n, true);
    const charges = sandbox.stats.chargeRequests;
    expect(await app.get(WalletResolutionService).sweep(queue)).toMatchObject({ added: 1 });
    const row = await waitForState(id, 'PARTIALLY_CAPTURED');
    expect(row).toMatchObject({ capturedAmount: 3_000n, authorizedAmount: 10_000n });
    expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({
      state: 'SUCCEEDED',
      assistBillNumber: expect.stringMatching(/\.2$/),
      resolutionAttempts: 1,
    });
    expect(sandbox.stats.chargeRequests).toBe(charges);
    expect(sandbox.orders.get(id)?.operations.map((op) => op.operationtype)).toEqual(['100', '200']);
    const events = await owner.domainEvent.findMany({ where: { subjectId: id } });
    expect(events.map((e) => e.type)).toEqual(['wallet_payment.partially_captured']);
  });

  it('a capture that never reached Assist stays UNKNOWN within the grace period, then FAILED (OPERATION_NOT_FOUND), the payment unchanged', async () => {
    const recent = await strandedCapture(2_000n, false);
    await expect(app.get(WalletResolutionService).resolve({ paymentId: recent.id, tenantId })).rejects.toThrow(/operation still open/);
    expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: recent.operationId } })).toMatchObject({ state: 'UNKNOWN' });

    const old = await strandedCapture(2_000n, false, new Date(Date.now() - 10 * 60_000));
    await expect(app.get(WalletResolutionService).resolve({ paymentId: old.id, tenantId })).resolves.toMatchObject({
      state: 'AUTHORIZED',
      outcome: 'resolved',
    });
    expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: old.operationId } })).toMatchObject({
      state: 'FAILED',
      error: {
        source: 'payorch',
        code: 'OPERATION_NOT_FOUND',
        // What it means and what to do (WALLET_NOT_FOUND_GRACE_MS is 60 s here).
        message:
          "Assist has no record of this capture: the order lists no Charge of 20.00 RUB besides those of the payment's other operations, 60 s " +
          'after it was sent. The request never reached Assist and no money moved; if the capture is still wanted, send it again with a new Idempotency-Key',
        firstCode: null,
        secondCode: null,
        field: null,
      },
    });
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id: old.id } })).toMatchObject({ state: 'AUTHORIZED', capturedAmount: 0n });
    expect((await owner.domainEvent.findMany({ where: { subjectId: old.id } })).map((e) => e.type)).toEqual(['wallet_payment.operation_failed']);
  });

  /** An operation of `paymentId` left open (`UNKNOWN` unless said), sent at `sentAt`. Returns its id. */
  async function openOperation(
    paymentId: string,
    kind: 'CAPTURE' | 'REFUND',
    amount: bigint,
    sentAt: Date,
    { tenant = tenantId, state = 'UNKNOWN' }: { tenant?: string; state?: 'UNKNOWN' | 'PENDING' } = {},
  ) {
    const id = randomUUID();
    await owner.walletPaymentOperation.create({
      data: { id, tenantId: tenant, paymentId, kind, amount, currency: 'RUB', idempotencyKey: `op-${id}`, state, sentAt },
    });
    return id;
  }

  /**
   * A tenant of its own whose settings name a Merchant_ID the sandbox does not know (the account moved, the settings
   * changed): the sandbox answers every request 10/200 ("Объект Предприятие"), which says nothing of any order.
   */
  async function movedAccount() {
    const tenant = (await owner.tenant.create({ data: { name: 'Moved Assist account' } })).id;
    const row = await createSandboxMerchant(owner, config.PAYORCH_MASTER_KEY, { tenantId: tenant, serverUrl: sandbox.url, name: 'moved' });
    await owner.assistMerchant.update({ where: { id: row }, data: { merchantId: '679472' } });
    return { tenant, row };
  }

  /** The operation is still UNKNOWN with `error`, and the payment saw no event. */
  async function expectStillOpen(paymentId: string, operationId: string, error: object | null) {
    expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({ state: 'UNKNOWN', error });
    expect(await owner.domainEvent.findMany({ where: { subjectId: paymentId } })).toEqual([]);
  }

  const tenMinutesAgo = () => new Date(Date.now() - 10 * 60_000);

  it('never concludes "never reached Assist" (FAILED) for a capture from an orderstate answer without an operation list: it stays UNKNOWN', async () => {
    // Before, the missing list read as an empty one: the capture was "not listed", and past the grace period FAILED.
    const { id, operationId } = await strandedCapture(2_000n, false, tenMinutesAgo());
    await owner.walletPaymentOperation.update({ where: { id: operationId }, data: { state: 'UNKNOWN' } });
    sandbox.setMode('no-operations', { endpoint: 'orderstate', times: 1 });
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).rejects.toThrow(/operation still open/);
    await expectStillOpen(id, operationId, { source: 'protocol', code: 'MALFORMED_RESPONSE' });
    // A full list then shows it missing: the request never reached Assist.
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).resolves.toMatchObject({ state: 'AUTHORIZED' });
    expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({
      state: 'FAILED',
      error: expect.objectContaining({ code: 'OPERATION_NOT_FOUND' }),
    });
  });

  it('never concludes "never reached Assist" for a capture whose Charge has an unreadable operationdate: it stays UNKNOWN', async () => {
    // The capture did reach Assist (.2), but the record's date cannot be read. Before, the record was dropped from
    // matching, the capture FAILED, and a capture sent again took the money twice.
    const { id, operationId } = await strandedCapture(2_500n, true, tenMinutesAgo());
    await owner.walletPaymentOperation.update({ where: { id: operationId }, data: { state: 'UNKNOWN' } });
    const charge = sandbox.orders.get(id)!.operations[1]!;
    Object.assign(charge, { operationdate: '' });
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).rejects.toThrow(/operation still open/);
    await expectStillOpen(id, operationId, { source: 'protocol', code: 'UNRECOGNIZED_VALUE', message: expect.stringContaining(charge.billnumber) });
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id } })).toMatchObject({ state: 'AUTHORIZED', capturedAmount: 0n });
  });

  it('never concludes "never reached Assist" for a refund whose orderstate answers 10/200 (Merchant_ID unknown): it stays UNKNOWN', async () => {
    // Before, any firstcode 10 was "no such order": the refund FAILED.
    const { tenant, row } = await movedAccount();
    const orderNumber = `shop-${randomUUID()}`;
    const paid = await sandboxClient().pay(payRequest(orderNumber, '100.00'));
    if (paid.status !== 'approved') throw new Error(paid.status);
    const id = await paymentRow({
      tenantId: tenant,
      merchantId: row,
      orderNumber,
      amount: 10_000n,
      state: 'APPROVED',
      authorizedAmount: 10_000n,
      capturedAmount: 10_000n,
      assistOrder: { orderNumber, billNumber: paid.order.billNumber, orderState: 'Approved', duplicate: false },
    });
    const operationId = await openOperation(id, 'REFUND', 3_000n, tenMinutesAgo(), { tenant });
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId: tenant })).rejects.toThrow(/operation still open/);
    await expectStillOpen(id, operationId, { source: 'assist', code: 'OBJECT_NOT_FOUND', firstCode: 10, secondCode: 200 });
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id } })).toMatchObject({ state: 'APPROVED', refundedAmount: 0n });
  });

  it('never concludes "never reached Assist" for a capture from "no such order" (10/201): its order is one Assist named', async () => {
    // The payment holds the billnumber Assist named; orderstate denies any order under its number (whatever the reason).
    const id = await paymentRow({
      amount: 10_000n,
      state: 'AUTHORIZED',
      twoStage: true,
      authorizedAmount: 10_000n,
      assistOrder: { orderNumber: 'unknown to the sandbox', billNumber: '5899110200000088', orderState: 'Delayed', duplicate: false },
    });
    const operationId = await openOperation(id, 'CAPTURE', 2_000n, tenMinutesAgo());
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).rejects.toThrow(/operation still open/);
    await expectStillOpen(id, operationId, null);
  });

  it.each(['PROCESSING', 'UNKNOWN'] as const)(
    'never rejects (ORDER_NOT_FOUND) a %s payment whose order Assist named on "no such order" (10/201), past the grace period',
    async (state) => {
      // "In Process" named the order's billnumber; orderstate answers 10/201 for its number. Before, past the grace
      // period: REJECTED, ORDER_NOT_FOUND — "nothing was charged, pay again".
      const id = await paymentRow({
        amount: 7_000n,
        state,
        createdAt: tenMinutesAgo(),
        assistOrder: { orderNumber: 'unknown to the sandbox', billNumber: '5899110200000077', orderState: 'In Process', duplicate: false },
      });
      await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).rejects.toThrow(new RegExp(`still ${state}`));
      expect(await owner.walletPayment.findUniqueOrThrow({ where: { id } })).toMatchObject({ state, completedAt: null, resolutionAttempts: 1 });
    },
  );

  it('never rejects (ORDER_NOT_FOUND) a payment whose orderstate answers 10/200 (Merchant_ID unknown), past the grace period', async () => {
    // The answer says nothing of the order: the settings may have changed. Before: REJECTED, ORDER_NOT_FOUND.
    const { tenant, row } = await movedAccount();
    const id = await paymentRow({ tenantId: tenant, merchantId: row, amount: 7_000n, state: 'UNKNOWN', createdAt: tenMinutesAgo() });
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId: tenant })).rejects.toThrow(/still UNKNOWN/);
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id } })).toMatchObject({
      state: 'UNKNOWN',
      completedAt: null,
      error: expect.objectContaining({ source: 'assist', code: 'OBJECT_NOT_FOUND', firstCode: 10, secondCode: 200 }),
    });
  });

  it('follows a capture Assist reported "In Process" by its billnumber until it succeeds, even after the grace period', async () => {
    // Sent long ago: had the operation been lost, the grace period would be over.
    const { id, operationId } = await strandedCapture(3_000n, true, new Date(Date.now() - 10 * 60_000));
    // The sandbox's Charge (.2) still being processed: "In Process", AS200.
    const charge = sandbox.orders.get(id)!.operations[1]!;
    Object.assign(charge, { operationstate: 'In Process', responsecode: 'AS200' });
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).rejects.toThrow(/operation still open/);
    expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({
      state: 'UNKNOWN',
      assistBillNumber: charge.billnumber,
    });
    expect(charge.billnumber).toMatch(/\.2$/);

    // Assist finishes it: the money moved.
    Object.assign(charge, { operationstate: 'Success', responsecode: 'AS000' });
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).resolves.toMatchObject({ state: 'PARTIALLY_CAPTURED' });
    expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({
      state: 'SUCCEEDED',
      assistBillNumber: charge.billnumber,
      error: null,
    });
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id } })).toMatchObject({
      state: 'PARTIALLY_CAPTURED',
      capturedAmount: 3_000n,
      authorizedAmount: 10_000n,
    });
  });

  it('never concludes "never reached Assist" for an operation Assist named, even when orderstate no longer lists it', async () => {
    const { id, operationId } = await strandedCapture(2_500n, true, new Date(Date.now() - 10 * 60_000));
    const charge = sandbox.orders.get(id)!.operations[1]!;
    Object.assign(charge, { operationstate: 'In Process', responsecode: 'AS200' });
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).rejects.toThrow(/operation still open/);
    // An orderstate answer that no longer lists it (whatever the reason): Assist did take it, so it is not FAILED.
    sandbox.orders.get(id)!.operations.splice(1, 1);
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).rejects.toThrow(/operation still open/);
    expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({ state: 'UNKNOWN' });
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id } })).toMatchObject({ state: 'AUTHORIZED', capturedAmount: 0n });
  });

  it('never takes for a capture a Charge a verdict without a billnumber may stand for: UNKNOWN (OPERATION_NOT_PROVEN), never FAILED', async () => {
    const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);
    /** Assist's `operationdate`: DD.MM.YYYY HH:mm:ss, GMT. */
    const assistDate = (d: Date) => {
      const p = (n: number) => String(n).padStart(2, '0');
      return `${p(d.getUTCDate())}.${p(d.getUTCMonth() + 1)}.${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
    };
    // A capture of 30.00 sent 30 minutes ago (its Charge is .2), settled `succeeded` by a person 12 minutes ago who gave no billnumber.
    const { id, operationId: byHand } = await strandedCapture(3_000n, true, minutesAgo(30));
    const resolution = { by: 'human', actor: { type: 'api_key', id: null }, note: 'back office: Success', billNumber: null, at: minutesAgo(12).toISOString() };
    await owner.walletPaymentOperation.update({ where: { id: byHand }, data: { state: 'SUCCEEDED', completedAt: minutesAgo(12), resolution } });
    await owner.walletPayment.update({ where: { id }, data: { state: 'PARTIALLY_CAPTURED', capturedAmount: 3_000n } });
    const order = sandbox.orders.get(id)!;
    // Another Charge of 30.00 at Assist (.3), 9 minutes ago: within the verdict's window, so it may be the verdict's.
    const other = await sandboxClient().charge({ billNumber: order.billnumber, orderNumber: id, orderAmount: '100.00', amount: '30.00', currency: 'RUB' });
    expect(other.status).toBe('succeeded');
    Object.assign(order.operations[1]!, { operationdate: assistDate(minutesAgo(30)) });
    Object.assign(order.operations[2]!, { operationdate: assistDate(minutesAgo(9)) });
    // A second capture of 30.00, sent 10 minutes ago (past the grace period): .3 is its, or the verdict's (then .2 is
    // another's and this one never reached Assist). Which cannot be told.
    const second = randomUUID();
    await owner.walletPaymentOperation.create({
      data: {
        id: second,
        tenantId,
        paymentId: id,
        kind: 'CAPTURE',
        amount: 3_000n,
        currency: 'RUB',
        idempotencyKey: `op-${second}`,
        state: 'UNKNOWN',
        sentAt: minutesAgo(10),
      },
    });

    for (const attempt of [1, 2]) {
      await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId })).rejects.toThrow(/operation still open/);
      expect(await owner.walletPaymentOperation.findUniqueOrThrow({ where: { id: second } })).toMatchObject({
        state: 'UNKNOWN',
        assistBillNumber: null,
        resolutionAttempts: attempt,
        error: expect.objectContaining({ source: 'payorch', code: 'OPERATION_NOT_PROVEN', message: expect.stringContaining(`${order.billnumber}.3`) }),
      });
    }
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id } })).toMatchObject({ state: 'PARTIALLY_CAPTURED', capturedAmount: 3_000n });
    expect(await owner.domainEvent.findMany({ where: { subjectId: id } })).toEqual([]);
  });

  it("never takes over another payment's order under a reused order number (a second settings row for the same Assist account)", async () => {
    // The first payment, paid and stored through the tenant's settings: it holds the order's billnumber.
    const orderNumber = `shop-${randomUUID()}`;
    const paid = await sandboxClient().pay(payRequest(orderNumber, '70.00'));
    if (paid.status !== 'approved') throw new Error(paid.status);
    const first = await paymentRow({
      orderNumber,
      amount: 7_000n,
      state: 'APPROVED',
      authorizedAmount: 7_000n,
      capturedAmount: 7_000n,
      assistOrder: { orderNumber, billNumber: paid.order.billNumber, orderState: 'Approved', duplicate: false },
    });
    // Another settings row for the same Assist account — of this tenant (another name of the same server), and of a
    // second tenant — each with a payment of the same number that never got an answer: one whose request may have
    // reached Assist, one never sent.
    const stranded = async (owningTenant: string, serverUrl: string, state: 'UNKNOWN' | 'PENDING') => {
      const row = await createSandboxMerchant(owner, config.PAYORCH_MASTER_KEY, { tenantId: owningTenant, serverUrl, name: 'sandbox again' });
      return paymentRow({ tenantId: owningTenant, merchantId: row, orderNumber, amount: 7_000n, state });
    };
    const lost = await stranded(tenantId, sandbox.url.replace('127.0.0.1', 'localhost'), 'UNKNOWN');
    const otherTenant = (await owner.tenant.create({ data: { name: 'Same Assist account' } })).id;
    const neverSent = await stranded(otherTenant, sandbox.url, 'PENDING');
    const { charges, tokenpayRequests } = sandbox.stats;

    // Sent, maybe charged: not the first payment's order, not "never paid" either — left UNKNOWN for a human.
    await expect(app.get(WalletResolutionService).resolve({ paymentId: lost, tenantId })).rejects.toThrow(/still UNKNOWN/);
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id: lost } })).toMatchObject({
      state: 'UNKNOWN',
      assistOrder: null,
      authorizedAmount: 0n,
      capturedAmount: 0n,
      error: expect.objectContaining({ source: 'payorch', code: 'ORDER_NOT_PROVEN' }),
    });
    // Never sent: nothing can have been charged, and Assist would refuse its number anyway.
    await expect(app.get(WalletResolutionService).resolve({ paymentId: neverSent, tenantId: otherTenant })).resolves.toMatchObject({ state: 'REJECTED' });
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id: neverSent } })).toMatchObject({
      assistOrder: null,
      capturedAmount: 0n,
      error: expect.objectContaining({ code: 'ORDER_NUMBER_TAKEN' }),
    });
    expect(sandbox.stats).toMatchObject({ charges, tokenpayRequests });
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id: first } })).toMatchObject({ state: 'APPROVED', capturedAmount: 7_000n });
  });

  it('never takes an order whose number a payment of another tenant at the same Assist account also has (both answers lost)', async () => {
    // Two tenants registered one Assist account and used one order number; one of the two requests reached Assist, and
    // both answers were lost: which payment the order is cannot be told. Before, whichever resolved first took it
    // (approved, with the other's money), because row-level security hid the other tenant's payment.
    const orderNumber = `shop-${randomUUID()}`;
    const paid = await sandboxClient().pay(payRequest(orderNumber, '70.00'));
    if (paid.status !== 'approved') throw new Error(paid.status);
    const ours = await paymentRow({ orderNumber, amount: 7_000n, state: 'UNKNOWN' });
    const otherTenant = (await owner.tenant.create({ data: { name: 'Same Assist account, another tenant' } })).id;
    const theirSettings = await createSandboxMerchant(owner, config.PAYORCH_MASTER_KEY, { tenantId: otherTenant, serverUrl: sandbox.url, name: 'sandbox' });
    const theirs = await paymentRow({ tenantId: otherTenant, merchantId: theirSettings, orderNumber, amount: 7_000n, state: 'UNKNOWN' });
    const { charges, tokenpayRequests } = sandbox.stats;

    for (const [paymentId, owning] of [
      [ours, tenantId],
      [theirs, otherTenant],
    ] as const) {
      await expect(app.get(WalletResolutionService).resolve({ paymentId, tenantId: owning })).rejects.toThrow(/still UNKNOWN/);
      expect(await owner.walletPayment.findUniqueOrThrow({ where: { id: paymentId } })).toMatchObject({
        state: 'UNKNOWN',
        assistOrder: null,
        capturedAmount: 0n,
        error: expect.objectContaining({ source: 'payorch', code: 'ORDER_NOT_PROVEN', message: expect.stringMatching(/another tenant/) }),
      });
    }
    expect(sandbox.stats).toMatchObject({ charges, tokenpayRequests });
  });

  it("takes the order as its payment's when another tenant's payment of that number is at another Assist account", async () => {
    const orderNumber = `shop-${randomUUID()}`;
    const paid = await sandboxClient().pay(payRequest(orderNumber, '70.00'));
    if (paid.status !== 'approved') throw new Error(paid.status);
    const ours = await paymentRow({ orderNumber, amount: 7_000n, state: 'UNKNOWN' });
    // The other tenant's settings name another server (another Assist account: another order-number namespace).
    const otherTenant = (await owner.tenant.create({ data: { name: 'Another Assist account' } })).id;
    const elsewhere = await createSandboxMerchant(owner, config.PAYORCH_MASTER_KEY, {
      tenantId: otherTenant,
      serverUrl: sandbox.url.replace('127.0.0.1', 'localhost'),
      name: 'another account',
    });
    await paymentRow({ tenantId: otherTenant, merchantId: elsewhere, orderNumber, amount: 7_000n, state: 'UNKNOWN' });

    await expect(app.get(WalletResolutionService).resolve({ paymentId: ours, tenantId })).resolves.toMatchObject({ state: 'APPROVED' });
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id: ours } })).toMatchObject({
      state: 'APPROVED',
      capturedAmount: 7_000n,
      assistOrder: expect.objectContaining({ billNumber: paid.order.billNumber }),
    });
  });

  it("never writes over a person's verdict: a write in flight loses to it, and the next run and the sweep leave the payment", async () => {
    // Left UNKNOWN with ORDER_NOT_PROVEN: the order under its number is another payment's of the same Assist account.
    const orderNumber = `shop-${randomUUID()}`;
    const paid = await sandboxClient().pay(payRequest(orderNumber, '70.00'));
    if (paid.status !== 'approved') throw new Error(paid.status);
    // A tenant of its own, with two settings rows for the sandbox's account (another name of the same server).
    const tenant = (await owner.tenant.create({ data: { name: 'Resolved by hand' } })).id;
    const row = await createSandboxMerchant(owner, config.PAYORCH_MASTER_KEY, { tenantId: tenant, serverUrl: sandbox.url, name: 'sandbox' });
    const alias = await createSandboxMerchant(owner, config.PAYORCH_MASTER_KEY, {
      tenantId: tenant,
      serverUrl: sandbox.url.replace('127.0.0.1', 'localhost'),
      name: 'alias',
    });
    await paymentRow({
      tenantId: tenant,
      merchantId: row,
      orderNumber,
      amount: 7_000n,
      state: 'APPROVED',
      assistOrder: { orderNumber, billNumber: paid.order.billNumber, duplicate: false },
    });
    const id = await paymentRow({ tenantId: tenant, merchantId: alias, orderNumber, amount: 7_000n, state: 'UNKNOWN' });
    const jobs = app.get(WalletResolutionService);
    await expect(jobs.resolve({ paymentId: id, tenantId: tenant })).rejects.toThrow(/still UNKNOWN/);
    const before = await owner.walletPayment.findUniqueOrThrow({ where: { id } });
    expect(before).toMatchObject({ state: 'UNKNOWN', resolutionAttempts: 1, error: expect.objectContaining({ code: 'ORDER_NOT_PROVEN' }) });

    // The job reads the payment UNKNOWN while a person's verdict is being written; its compare-and-set waits for the
    // person's transaction, then finds the payment no longer UNKNOWN and writes nothing.
    let running: Promise<unknown> | undefined;
    await owner.$transaction(
      async (tx) => {
        const verdict = await resolveWalletPaymentByHand(tx as unknown as TransactionClient, {
          payment: before,
          state: 'REJECTED',
          note: 'Assist back office: the order is the other payment',
          actor: { type: 'api_key', id: null },
        });
        expect(verdict?.row.state).toBe('REJECTED');
        running = jobs.resolve({ paymentId: id, tenantId: tenant }).catch((error: unknown) => error);
        await waitFor(
          async () =>
            (
              await owner.$queryRaw<
                Array<{ n: number }>
              >`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`
            )[0]!.n > 0,
          { timeoutMs: 10_000, intervalMs: 20, what: "the job's write waiting for the verdict's row lock" },
        );
      },
      { timeout: 20_000 },
    );
    expect(await running).toMatchObject({ name: 'StillPendingError', message: expect.stringContaining('changed while it was being resolved') });
    const after = await owner.walletPayment.findUniqueOrThrow({ where: { id } });
    expect(after).toMatchObject({ state: 'REJECTED', resolutionAttempts: 1, error: expect.objectContaining({ code: 'RESOLVED_MANUALLY' }) });

    await expect(jobs.resolve({ paymentId: id, tenantId: tenant })).resolves.toEqual({ paymentId: id, state: 'REJECTED', outcome: 'already_final' });
    await owner.$executeRaw`UPDATE "WalletPayment" SET "updatedAt" = now() - interval '1 hour' WHERE "id" = ${id}::uuid`;
    await jobs.sweep(queue);
    expect(await queue.getJob(resolveJobId(id))).toBeUndefined();
    expect(await owner.walletPayment.findUniqueOrThrow({ where: { id } })).toMatchObject({
      state: 'REJECTED',
      error: expect.objectContaining({ code: 'RESOLVED_MANUALLY' }),
    });
  });

  it('reads payments only under their own tenant', async () => {
    const id = await strandedPayment('UNKNOWN', 8_000n);
    const stranger = (await owner.tenant.create({ data: { name: 'Other' } })).id;
    await expect(app.get(WalletResolutionService).resolve({ paymentId: id, tenantId: stranger })).rejects.toThrow(/does not exist for tenant/);
  });
});

import { randomUUID } from 'node:crypto';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { insertWalletOperation, insertWalletPayment, settleWalletOperation, transitionWalletPayment } from './transition';

describe('wallet payment owner (real PostgreSQL, RLS)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  let merchantId: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 4);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    merchantId = (
      await owner.assistMerchant.create({ data: { tenantId, merchantId: '679471', name: 'M', secretsEncrypted: 'x', serverUrl: 'https://assist.invalid' } })
    ).id;
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  const insert = () =>
    db.withTenant(tenantId, (tx) =>
      insertWalletPayment(tx, {
        id: randomUUID(),
        tenantId,
        merchantId,
        orderNumber: randomUUID(),
        amount: 10_000n,
        currency: 'RUB',
        tokenType: 'APPLE_PAY',
        customer: { lastname: 'I' },
        idempotencyKey: randomUUID(),
        requestHash: 'h',
      }),
    );
  const events = (id: string) => owner.domainEvent.findMany({ where: { subjectId: id }, orderBy: { createdAt: 'asc' }, select: { type: true, data: true } });

  it('stores each change with one event, and lets only one of two racing writers move the payment', async () => {
    const { row } = await insert();
    const processing = await db.withTenant(tenantId, (tx) =>
      transitionWalletPayment(tx, { paymentId: row.id, from: ['PENDING'], change: { state: 'PROCESSING', error: null, completedAt: null } }),
    );
    expect(processing).toMatchObject({ from: 'PENDING', row: { state: 'PROCESSING' }, event: { type: 'wallet_payment.updated' } });
    // The gateway (tokenpay answer) and the resolution job (order state) at the same moment.
    const approved = { state: 'APPROVED' as const, error: null, completedAt: new Date(), maskedPan: '220000******0001', testMode: false };
    const results = await Promise.all([
      db.withTenant(tenantId, (tx) => transitionWalletPayment(tx, { paymentId: row.id, from: ['PROCESSING'], change: approved })),
      db.withTenant(tenantId, (tx) =>
        transitionWalletPayment(tx, {
          paymentId: row.id,
          from: ['PROCESSING'],
          change: { state: 'UNKNOWN', error: null, completedAt: null },
          countResolutionAttempt: true,
        }),
      ),
    ]);
    expect(results.filter((r) => r !== null)).toHaveLength(1);
    const stored = await owner.walletPayment.findUniqueOrThrow({ where: { id: row.id } });
    const published = await events(row.id);
    expect(published.map((e) => [e.type, (e.data as { previousState: string }).previousState, (e.data as { state: string }).state])).toEqual([
      ['wallet_payment.created', null, 'pending'],
      ['wallet_payment.updated', 'pending', 'processing'],
      ['wallet_payment.updated', 'processing', stored.state.toLowerCase()],
    ]);
  });

  it('counts an inconclusive attempt without a state change and without an event', async () => {
    const { row } = await insert();
    await db.withTenant(tenantId, (tx) =>
      transitionWalletPayment(tx, { paymentId: row.id, from: ['PENDING'], change: { state: 'PROCESSING', error: null, completedAt: null } }),
    );
    await db.withTenant(tenantId, (tx) =>
      transitionWalletPayment(tx, { paymentId: row.id, from: ['PROCESSING'], change: { state: 'UNKNOWN', error: null, completedAt: null } }),
    );
    const error = {
      source: 'integrity' as const,
      code: 'CHECKVALUE_MISMATCH' as const,
      message: 'bad checkvalue',
      firstCode: null,
      secondCode: null,
      field: null,
    };
    const kept = await db.withTenant(tenantId, (tx) =>
      transitionWalletPayment(tx, { paymentId: row.id, from: ['UNKNOWN'], change: null, error, countResolutionAttempt: true }),
    );
    expect(kept).toMatchObject({ from: 'UNKNOWN', event: undefined, row: { state: 'UNKNOWN', resolutionAttempts: 1, error } });
    expect(await events(row.id)).toHaveLength(3);
  });

  it("cannot move another tenant's payment (RLS)", async () => {
    const { row } = await insert();
    const other = (await owner.tenant.create({ data: { name: 'U' } })).id;
    expect(
      await db.withTenant(other, (tx) =>
        transitionWalletPayment(tx, { paymentId: row.id, from: ['PENDING'], change: { state: 'PROCESSING', error: null, completedAt: null } }),
      ),
    ).toBeNull();
    expect((await owner.walletPayment.findUniqueOrThrow({ where: { id: row.id } })).state).toBe('PENDING');
  });
  it('settles a racing capture once: the gateway and the resolution job both see Success, the amount is added once', async () => {
    const { row } = await insert();
    await db.withTenant(tenantId, async (tx) => {
      await transitionWalletPayment(tx, { paymentId: row.id, from: ['PENDING'], change: { state: 'PROCESSING', error: null, completedAt: null } });
      await transitionWalletPayment(tx, {
        paymentId: row.id,
        from: ['PROCESSING'],
        change: { state: 'AUTHORIZED', error: null, completedAt: new Date(), amounts: { authorized: 10_000n, captured: 0n, released: 0n, refunded: 0n } },
      });
    });
    const op = await db.withTenant(tenantId, (tx) =>
      insertWalletOperation(tx, {
        id: randomUUID(),
        tenantId,
        paymentId: row.id,
        kind: 'CAPTURE',
        amount: 4_000n,
        currency: 'RUB',
        idempotencyKey: randomUUID(),
        requestHash: 'h',
      }),
    );
    // One open operation per payment: a second one is refused by the partial unique index.
    await expect(
      db.withTenant(tenantId, (tx) =>
        insertWalletOperation(tx, {
          id: randomUUID(),
          tenantId,
          paymentId: row.id,
          kind: 'CANCEL_AUTHORIZATION',
          amount: 1n,
          currency: 'RUB',
          idempotencyKey: randomUUID(),
          requestHash: 'h',
        }),
      ),
    ).rejects.toMatchObject({ code: 'P2002' });

    const settle = () =>
      db.withTenant(tenantId, (tx) =>
        settleWalletOperation(tx, { operationId: op.id, from: ['PENDING', 'UNKNOWN'], to: 'SUCCEEDED', assistBillNumber: 'B.2' }),
      );
    const results = await Promise.all([settle(), settle()]);
    expect(results.filter((r) => r !== null)).toHaveLength(1);
    const payment = await owner.walletPayment.findUniqueOrThrow({ where: { id: row.id } });
    expect(payment).toMatchObject({ state: 'PARTIALLY_CAPTURED', authorizedAmount: 10_000n, capturedAmount: 4_000n });
    const types = (await events(row.id)).map((e) => e.type);
    expect(types.filter((t) => t === 'wallet_payment.partially_captured')).toHaveLength(1);
    expect((await events(row.id)).at(-1)?.data).toMatchObject({
      capturedAmount: '4000',
      operation: { id: op.id, kind: 'capture', amount: '4000', state: 'succeeded' },
    });
    // Settled is final: no way back, nothing written.
    expect(await db.withTenant(tenantId, (tx) => settleWalletOperation(tx, { operationId: op.id, from: ['PENDING', 'UNKNOWN'], to: 'FAILED' }))).toBeNull();
    // The operation table is tenant data under RLS.
    const stranger = (await owner.tenant.create({ data: { name: 'S' } })).id;
    expect(await db.withTenant(stranger, (tx) => tx.walletPaymentOperation.findMany({ where: { id: op.id } }))).toEqual([]);
  });
});

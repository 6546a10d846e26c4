import { randomUUID } from 'node:crypto';
import type { Client } from 'pg';

import { MigrationUnderTest } from '@payorch/testing';

// The database as it was before the migration (the test template has every migration applied).
const migration = new MigrationUnderTest(
  'added_wallet_resolution',
  `
  ALTER TABLE "WalletPayment" DROP COLUMN "resolution";
  ALTER TABLE "WalletPaymentOperation" DROP COLUMN "resolution";`,
);

/**
 * The migration that puts a person's verdict on the wallet payment / operation row (`resolution`), run on a database
 * that already holds verdicts given before it (POST …/resolve recorded them only in the audit log and the event):
 * their audit rows fill it in; rows nobody resolved by hand stay null.
 */
describe(`migration ${migration.name} (real PostgreSQL)`, () => {
  let owner: Client;

  beforeAll(async () => {
    await migration.start();
    owner = migration.owner;
  });

  afterAll(() => migration.stop());

  const insertId = async (sql: string, values: unknown[]) => (await owner.query<{ id: string }>(`${sql} RETURNING "id"`, values)).rows[0]!.id;

  it('fills in the verdicts given before it from their audit rows; payments and operations nobody resolved stay null', async () => {
    const tenant = await insertId(`INSERT INTO "Tenant" ("id", "name", "updatedAt") VALUES ($1, 'T', now())`, [randomUUID()]);
    const merchant = await insertId(
      `INSERT INTO "AssistMerchant" ("id", "tenantId", "name", "merchantId", "serverUrl", "secretsEncrypted", "updatedAt")
       VALUES ($1, $2, 'M', '679471', 'https://pay.example.com', 'x', now())`,
      [randomUUID(), tenant],
    );
    const payment = (state: string, completedAt: string | null) =>
      insertId(
        `INSERT INTO "WalletPayment" ("id", "tenantId", "merchantId", "orderNumber", "amount", "currency", "tokenType", "idempotencyKey", "requestHash", "state", "completedAt", "updatedAt")
         VALUES ($1, $2, $3, $4, 10000, 'RUB', 'APPLE_PAY', $5, 'h', $6, $7, now())`,
        [randomUUID(), tenant, merchant, `order-${randomUUID()}`, randomUUID(), state, completedAt],
      );
    const operation = (paymentId: string, state: string, completedAt: string) =>
      insertId(
        `INSERT INTO "WalletPaymentOperation" ("id", "tenantId", "paymentId", "kind", "amount", "currency", "idempotencyKey", "state", "completedAt", "updatedAt")
         VALUES ($1, $2, $3, 'CAPTURE', 4000, 'RUB', $4, $5, $6, now())`,
        [randomUUID(), tenant, paymentId, randomUUID(), state, completedAt],
      );
    const audit = (action: string, paymentId: string, actor: [string, string | null], details: Record<string, unknown>) =>
      owner.query(
        `INSERT INTO "AuditLog" ("id", "tenantId", "actorType", "actorId", "action", "resourceType", "resourceId", "details")
         VALUES ($1, $2, $3, $4, $5, 'wallet_payment', $6, $7)`,
        [randomUUID(), tenant, actor[0], actor[1], action, paymentId, JSON.stringify({ ...details, idempotencyKey: randomUUID(), requestHash: 'h' })],
      );

    const approved = await payment('APPROVED', '2026-12-06T08:00:00.123Z');
    await audit('wallet_payment.resolve', approved, ['admin', 'ops@console'], {
      state: 'approved',
      note: 'back office: Approved, card 411111******1111',
      billNumber: '5899110200000001',
      previousErrorCode: 'ORDER_NOT_PROVEN',
    });
    const rejected = await payment('REJECTED', '2026-12-06T08:01:00.000Z');
    await audit('wallet_payment.resolve', rejected, ['api_key', null], { state: 'rejected', note: 'no order', previousErrorCode: 'INTERNAL_ERROR' });
    const byJob = await payment('APPROVED', '2026-12-06T08:02:00.000Z');
    await audit('wallet_payment.create', byJob, ['api_key', null], { merchantId: merchant });
    const held = await payment('PARTIALLY_CAPTURED', '2026-12-06T07:00:00.000Z');
    const captured = await operation(held, 'SUCCEEDED', '2026-12-06T08:03:00.456Z');
    const byAssist = await operation(held, 'SUCCEEDED', '2026-12-06T08:04:00.000Z');
    await audit('wallet_payment.resolve_operation', held, ['api_key', 'key-1'], {
      operationId: captured,
      kind: 'capture',
      amount: '4000',
      state: 'succeeded',
      note: 'back office: Charge Success',
      billNumber: '5899110200000001.2',
    });

    await migration.apply();

    const payments = await owner.query<{ id: string; resolution: unknown }>(`SELECT "id", "resolution" FROM "WalletPayment"`);
    expect(Object.fromEntries(payments.rows.map((r) => [r.id, r.resolution]))).toEqual({
      [approved]: {
        by: 'human',
        actor: { type: 'admin', id: 'ops@console' },
        note: 'back office: Approved, card 411111******1111',
        billNumber: '5899110200000001',
        at: '2026-12-06T08:00:00.123Z',
      },
      [rejected]: { by: 'human', actor: { type: 'api_key', id: null }, note: 'no order', billNumber: null, at: '2026-12-06T08:01:00.000Z' },
      [byJob]: null,
      // An operation's verdict is the operation's, not the payment's.
      [held]: null,
    });
    const operations = await owner.query<{ id: string; resolution: unknown }>(`SELECT "id", "resolution" FROM "WalletPaymentOperation"`);
    expect(Object.fromEntries(operations.rows.map((r) => [r.id, r.resolution]))).toEqual({
      [captured]: {
        by: 'human',
        actor: { type: 'api_key', id: 'key-1' },
        note: 'back office: Charge Success',
        billNumber: '5899110200000001.2',
        at: '2026-12-06T08:03:00.456Z',
      },
      [byAssist]: null,
    });
  });
});

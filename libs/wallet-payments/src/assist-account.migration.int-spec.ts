import { randomUUID } from 'node:crypto';
import type { Client } from 'pg';

import { MigrationUnderTest } from '@payorch/testing';

// The database as it was before the migration (the test template has every migration applied).
const migration = new MigrationUnderTest(
  'added_one_assist_account_per_tenant_and_duplicate_refusals',
  `
  DROP INDEX "AssistMerchant_tenantId_account_key";
  ALTER TABLE "AssistMerchant" DROP COLUMN "duplicateOfId";
  ALTER TABLE "WalletPayment" DROP COLUMN "refusedAsDuplicate";
  DROP FUNCTION payorch_assist_account(text, text);`,
);

/**
 * The migration that makes one Assist merchant account one settings row per tenant, run on a database that already
 * holds duplicate rows (as every installation before it may): it keeps them for their payments, marks all but the
 * oldest, and from then on refuses a second row for an account.
 */
describe(`migration ${migration.name} (real PostgreSQL)`, () => {
  let owner: Client;

  beforeAll(async () => {
    await migration.start();
    owner = migration.owner;
  });

  afterAll(() => migration.stop());

  async function merchant(tenantId: string, serverUrl: string, merchantId: string, createdAt: string): Promise<string> {
    const id = randomUUID();
    await owner.query(
      `INSERT INTO "AssistMerchant" ("id", "tenantId", "name", "merchantId", "serverUrl", "secretsEncrypted", "createdAt", "updatedAt")
       VALUES ($1, $2, 'M', $3, $4, 'x', $5, now())`,
      [id, tenantId, merchantId, serverUrl, createdAt],
    );
    return id;
  }

  it('keeps duplicate rows for their payments, marks all but the oldest, then refuses a second row for an account', async () => {
    const tenant = async () =>
      (await owner.query<{ id: string }>(`INSERT INTO "Tenant" ("id", "name", "updatedAt") VALUES ($1, 'T', now()) RETURNING "id"`, [randomUUID()])).rows[0]!
        .id;
    const a = await tenant();
    const b = await tenant();
    const kept = await merchant(a, 'https://pay.example.com', '679471', '2026-01-01T00:00:00Z');
    const sameAccount = [
      await merchant(a, 'https://Pay.Example.com/', '679471', '2026-01-02T00:00:00Z'),
      await merchant(a, 'https://pay.example.com.:443/pay', '0679471', '2026-01-03T00:00:00Z'),
    ];
    const otherAccount = await merchant(a, 'https://pay.example.com', '100200', '2026-01-04T00:00:00Z');
    const otherTenant = await merchant(b, 'https://pay.example.com', '679471', '2026-01-05T00:00:00Z');
    // Payments through the duplicates, one of them with an order number the kept row also used.
    for (const [row, orderNumber] of [
      [kept, 'order-1'],
      [sameAccount[0]!, 'order-1'],
      [sameAccount[1]!, 'order-2'],
    ] as const) {
      await owner.query(
        `INSERT INTO "WalletPayment" ("id", "tenantId", "merchantId", "orderNumber", "amount", "currency", "tokenType", "idempotencyKey", "requestHash", "state", "updatedAt")
         VALUES ($1, $2, $3, $4, 100, 'RUB', 'APPLE_PAY', $5, 'h', 'APPROVED', now())`,
        [randomUUID(), a, row, orderNumber, randomUUID()],
      );
    }

    await migration.apply();

    const rows = await owner.query<{ id: string; duplicateOfId: string | null }>(`SELECT "id", "duplicateOfId" FROM "AssistMerchant"`);
    const marks = Object.fromEntries(rows.rows.map((r) => [r.id, r.duplicateOfId]));
    expect(marks).toEqual({ [kept]: null, [sameAccount[0]!]: kept, [sameAccount[1]!]: kept, [otherAccount]: null, [otherTenant]: null });
    expect((await owner.query(`SELECT count(*)::int AS n FROM "WalletPayment" WHERE NOT "refusedAsDuplicate"`)).rows[0]).toEqual({ n: 3 });

    // From now on: one row per tenant and account, whatever the spelling; marked duplicates aside.
    await expect(merchant(a, 'HTTPS://PAY.EXAMPLE.COM:443/', '679471', '2026-02-01T00:00:00Z')).rejects.toMatchObject({
      code: '23505',
      constraint: 'AssistMerchant_tenantId_account_key',
    });
    await expect(merchant(a, 'https://pay.example.com:8443', '679471', '2026-02-01T00:00:00Z')).resolves.toEqual(expect.any(String));
    await expect(merchant(b, 'https://pay.example.com', '1', '2026-02-01T00:00:00Z')).resolves.toEqual(expect.any(String));
  });
});

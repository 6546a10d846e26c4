import { randomUUID } from 'node:crypto';

import { Client } from 'pg';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { claimsOnOrder } from './ownership';

/**
 * The claims on an order found under a payment's number (real PostgreSQL, row-level security): another payment of the
 * tenant holding its billnumber, and — past row-level security, through payorch_wallet_order_number_elsewhere — whether
 * a payment of another tenant at the same Assist account has the number. The function answers about the caller's own
 * payment only, and says nothing but yes or no.
 */
describe('claimsOnOrder (real PostgreSQL, RLS)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 2);
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  const tenant = async () => (await owner.tenant.create({ data: { name: 'T' } })).id;
  const settings = async (tenantId: string, serverUrl: string, merchantId: string) =>
    (await owner.assistMerchant.create({ data: { tenantId, merchantId, name: 'M', secretsEncrypted: 'x', serverUrl } })).id;
  const payment = async (tenantId: string, merchantRowId: string, orderNumber: string, billNumber?: string) =>
    (
      await owner.walletPayment.create({
        data: {
          tenantId,
          merchantId: merchantRowId,
          orderNumber,
          amount: 7_000n,
          currency: 'RUB',
          tokenType: 'APPLE_PAY',
          state: 'UNKNOWN',
          idempotencyKey: randomUUID(),
          requestHash: 'h',
          ...(billNumber ? { assistOrder: { orderNumber, billNumber, orderState: 'Approved', duplicate: false } } : {}),
        },
      })
    ).id;
  const claims = (tenantId: string, paymentId: string, orderNumber: string, billNumber = '') =>
    db.withTenant(tenantId, (tx) => claimsOnOrder(tx, { id: paymentId, orderNumber }, '679471', billNumber));

  it("sees a payment of another tenant at the same Assist account with the number, and nothing about another account's", async () => {
    const [a, b, c] = [await tenant(), await tenant(), await tenant()];
    const orderNumber = `shop-${randomUUID()}`;
    const ours = await payment(a, await settings(a, 'https://pay.example.com', '679471'), orderNumber);
    // C: another server, so another account and another order-number namespace.
    await payment(c, await settings(c, 'https://test.pay.example.com', '679471'), orderNumber);
    expect(await claims(a, ours, orderNumber)).toEqual({ payment: null, otherTenant: false });
    // B: the same account under another spelling (case, trailing slash, default port, leading zeros).
    const theirs = await payment(b, await settings(b, 'https://PAY.example.com:443/', '0679471'), orderNumber);
    expect(await claims(a, ours, orderNumber)).toEqual({ payment: null, otherTenant: true });
    expect(await claims(b, theirs, orderNumber)).toEqual({ payment: null, otherTenant: true });
    // Another number of the same account: no claim.
    const other = await payment(a, (await owner.walletPayment.findUniqueOrThrow({ where: { id: ours } })).merchantId, `shop-${randomUUID()}`);
    expect(await claims(a, other, 'x')).toEqual({ payment: null, otherTenant: false });
  });

  it("answers only about the caller's own payment: another tenant's payment id, or no tenant scope, is a no", async () => {
    const [a, b] = [await tenant(), await tenant()];
    const orderNumber = `shop-${randomUUID()}`;
    await payment(a, await settings(a, 'https://pay2.example.com', '679471'), orderNumber);
    const theirs = await payment(b, await settings(b, 'https://pay2.example.com', '679471'), orderNumber);
    // Under A's scope, asking about B's payment (which A's own payment would make a yes).
    expect(await claims(a, theirs, orderNumber)).toEqual({ payment: null, otherTenant: false });
    // The application's role with no tenant scope at all.
    const app = new Client({ connectionString: testDb.appUrl });
    await app.connect();
    try {
      const { rows } = await app.query<{ answer: boolean }>(`SELECT payorch_wallet_order_number_elsewhere($1::uuid) AS answer`, [theirs]);
      expect(rows[0]!.answer).toBe(false);
    } finally {
      await app.end();
    }
  });

  it("names the tenant's other payment that holds the order's billnumber", async () => {
    const a = await tenant();
    const row = await settings(a, 'https://pay3.example.com', '679471');
    const orderNumber = `shop-${randomUUID()}`;
    const holder = await payment(a, row, orderNumber, '5899110200000001');
    const second = await settings(a, 'https://pay3-other.example.com', '679471');
    const lost = await payment(a, second, orderNumber);
    expect(await claims(a, lost, orderNumber, '5899110200000001')).toEqual({ payment: holder, otherTenant: false });
    expect(await claims(a, lost, orderNumber, '5899110200000002')).toEqual({ payment: null, otherTenant: false });
  });
});

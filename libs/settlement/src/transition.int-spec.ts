import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { insertSettlement, transitionSettlement } from './transition';

describe('settlement owner (real PostgreSQL, RLS)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  let storeId: string;
  let terminalId: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 4);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'Europe/Moscow' } })).id;
    terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  const base = (runKey: string) => ({ tenantId, terminalId, storeId, businessDate: new Date('2026-03-01T00:00:00Z'), runKey, trigger: 'manual' });

  it('creates a manual close-day PENDING once per run key, starts it, completes it once with its events', async () => {
    const created = await db.withTenant(tenantId, (tx) => insertSettlement(tx, { ...base('manual:a'), status: 'PENDING' }));
    expect(created).toMatchObject({ status: 'PENDING', attempts: 0, startedAt: null, businessDate: new Date('2026-03-01T00:00:00Z') });
    expect(await db.withTenant(tenantId, (tx) => insertSettlement(tx, { ...base('manual:a'), status: 'PENDING' }))).toBeNull();
    const id = created!.id;
    const started = await db.withTenant(tenantId, (tx) =>
      transitionSettlement(tx, { settlementId: id, from: ['PENDING', 'RUNNING'], to: 'RUNNING', countAttempt: true, markStarted: true }),
    );
    expect(started).toMatchObject({ from: 'PENDING', events: [], row: { status: 'RUNNING', attempts: 1, startedAt: expect.any(Date) } });
    const complete = () =>
      db.withTenant(tenantId, (tx) =>
        transitionSettlement(tx, {
          settlementId: id,
          from: ['RUNNING'],
          to: 'COMPLETED',
          set: { completedAt: new Date(), hasDiscrepancies: true, discrepancies: [{ kind: 'count_mismatch' }], error: null },
          eventData: { settlementId: id },
          alsoPublish: [{ type: 'settlement.discrepancy', data: { settlementId: id } }],
        }),
      );
    const [a, b] = await Promise.all([complete(), complete()]);
    expect([a, b].filter((r) => r !== null)).toHaveLength(1);
    expect(await owner.settlement.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'COMPLETED', hasDiscrepancies: true, attempts: 1 });
    const events = await owner.domainEvent.findMany({ where: { subjectId: id }, orderBy: { createdAt: 'asc' }, select: { type: true } });
    expect(events.map((e) => e.type)).toEqual(['settlement.completed', 'settlement.discrepancy']);
    // Final: nothing moves it any more.
    expect(
      await db.withTenant(tenantId, (tx) => transitionSettlement(tx, { settlementId: id, from: ['PENDING', 'RUNNING'], to: 'FAILED', eventData: {} })),
    ).toBeNull();
  });

  it("cannot move another tenant's settlement (RLS)", async () => {
    const created = await db.withTenant(tenantId, (tx) => insertSettlement(tx, { ...base('manual:b'), status: 'RUNNING', attempts: 1 }));
    const other = (await owner.tenant.create({ data: { name: 'U' } })).id;
    expect(
      await db.withTenant(other, (tx) => transitionSettlement(tx, { settlementId: created!.id, from: ['RUNNING'], to: 'FAILED', eventData: {} })),
    ).toBeNull();
    expect((await owner.settlement.findUniqueOrThrow({ where: { id: created!.id } })).status).toBe('RUNNING');
  });
});

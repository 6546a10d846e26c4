import { randomUUID } from 'node:crypto';

import { createPrismaClient, Database, Prisma, type PrismaClient, type PublishedEvent, type SqlTransaction } from '@payorch/db';
import { createTestDatabase, socketWriteTexts, type TestDatabase } from '@payorch/testing';

import { insertOperation, type NewOperation } from './create';
import { eventData } from './records';

describe(`${insertOperation.name} as the transaction's last statement`, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  const committed: PublishedEvent[] = [];
  let input: Omit<NewOperation, 'idempotencyKey'>;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 1, { onCommitted: (events) => committed.push(...events) });
    const tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    const storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    const terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
    input = { tenantId, terminalId, storeId, type: 'purchase_with_cashback', amount: 1500, cashbackAmount: 300, currency: 'RUB', requestHash: 'h' };
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  const auditRow = (tx: SqlTransaction, id: string) =>
    tx.defer(Prisma.sql`INSERT INTO "AuditLog" ("id", "tenantId", "actorType", "actorId", "action", "resourceType", "resourceId", "createdAt")
      VALUES (${randomUUID()}::uuid, ${input.tenantId}::uuid, 'system', 'test', 'operation.create', 'operation', ${id}, now())`);

  it('writes the INSERT, its DomainEvent and COMMIT in one write, and publishes the event the row itself would give', async () => {
    const id = randomUUID();
    let created: Awaited<ReturnType<typeof insertOperation>> | undefined;
    const writes = await socketWriteTexts(async () => {
      created = await db.withTenantSql(input.tenantId, (tx) => {
        auditRow(tx as SqlTransaction, id);
        return insertOperation(tx, { ...input, id, idempotencyKey: 'last-1' }, { last: true });
      });
    });
    const insert = writes.filter((w) => w.includes('INSERT INTO "TerminalOperation"'));
    expect(insert).toHaveLength(1);
    expect(insert[0]).toContain('INSERT INTO "DomainEvent"');
    expect(insert[0]).toContain('COMMIT');
    // The event made from the inputs is the one the committed row gives.
    expect(created!.row.id).toBe(id);
    expect(created!.row.amount).toBe(1500n);
    expect(created!.event.data).toEqual(eventData(created!.row, { previousState: null }));
    await db.eventsSettled();
    expect(committed.map((e) => e.id)).toContain(created!.event.id);
    expect(await owner.auditLog.count({ where: { resourceId: id } })).toBe(1);
    expect(await owner.domainEvent.count({ where: { id: created!.event.id } })).toBe(1);
  });

  it('commits nothing, the audit row included, when the INSERT fails (a taken Idempotency-Key), and rejects with P2002', async () => {
    const id = randomUUID();
    const seen = committed.length;
    await expect(
      db.withTenantSql(input.tenantId, (tx) => {
        auditRow(tx as SqlTransaction, id);
        return insertOperation(tx, { ...input, id, idempotencyKey: 'last-1' }, { last: true });
      }),
    ).rejects.toMatchObject({ code: 'P2002' });
    await db.eventsSettled();
    expect(committed.length).toBe(seen);
    expect(await owner.auditLog.count({ where: { resourceId: id } })).toBe(0);
    expect(await owner.terminalOperation.count({ where: { id } })).toBe(0);
    // The connection is clean for the next transaction.
    const again = await db.withTenantSql(input.tenantId, (tx) => insertOperation(tx, { ...input, idempotencyKey: 'last-2' }, { last: true }));
    expect(again.row.state).toBe('PENDING');
  });
});

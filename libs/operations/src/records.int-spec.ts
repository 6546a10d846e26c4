import { randomUUID } from 'node:crypto';

import { createPrismaClient, Database, Prisma, type PrismaClient } from '@payorch/db';
import { createTestDatabase, socketWriteTexts, type TestDatabase } from '@payorch/testing';

import { insertOperation } from './create';
import { type FrameStep, insertFrameSteps } from './records';

describe(insertFrameSteps.name, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  let operationId: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 1 });
    db = Database.connect(testDb.appUrl, 1);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    const storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    const terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
    const created = await db.withTenantSql(tenantId, (tx) =>
      insertOperation(tx, { tenantId, terminalId, storeId, type: 'purchase', amount: 100, currency: 'RUB', idempotencyKey: 'k', requestHash: 'h' }),
    );
    operationId = created.row.id;
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  it('in a SqlTransaction, leaves in the write of the statement after it (nobody waits for its answer), and commits the frames in order', async () => {
    const frame = (n: number): FrameStep => ({ direction: 'out', summary: `frame ${n}`, masked: '02', at: new Date().toISOString() });
    const marker = randomUUID();
    const writes = await socketWriteTexts(() =>
      db.withTenantSql(tenantId, async (tx) => {
        await tx.$queryRaw`SELECT 1`;
        await insertFrameSteps(tx, operationId, [frame(1), frame(2)]);
        // What the executor sends next (the outcome's compare-and-set): one write with the frames.
        await tx.$queryRaw(Prisma.sql`SELECT ${marker}::text AS "marker"`);
      }),
    );
    const framesWrite = writes.filter((w) => w.includes('jsonb_array_elements'));
    expect(framesWrite).toHaveLength(1);
    expect(framesWrite[0]).toContain(marker);
    const steps = await owner.operationEvent.findMany({ where: { operationId, kind: 'frame' }, orderBy: { seq: 'asc' } });
    expect(steps.map((s) => (s.data as { summary: string }).summary)).toEqual(['frame 1', 'frame 2']);
  });
});

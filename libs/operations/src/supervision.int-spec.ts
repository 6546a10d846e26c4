import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { createTestDatabase, type TestDatabase, waitFor } from '@payorch/testing';

import { insertOperation } from './index';
import { ANOTHER_DEVICE, flagForHuman, RECOVERY_GAVE_UP } from './supervision';

/**
 * `flagForHuman` writes its `recovery_exhausted` step and `operation.unknown` (needsHuman) event once per operation,
 * also when two flaggers race with different attempt counts (the recovery sweep's scan of spent budgets and a recover
 * job, while the connector records attempts) or causes (a spent budget, another device), and not again once a later
 * attempt replaced the reason.
 */
describe(flagForHuman.name, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let tenantId: string;
  let storeId: string;
  let terminalId: string;
  let keys = 0;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 4);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
    terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  async function unknownOperation(): Promise<string> {
    const { row } = await db.withTenant(tenantId, (tx) =>
      insertOperation(tx, { tenantId, terminalId, storeId, type: 'purchase', amount: 100, currency: 'RUB', idempotencyKey: `k-${++keys}`, requestHash: 'h' }),
    );
    await owner.terminalOperation.update({ where: { id: row.id }, data: { state: 'UNKNOWN', recoveryAttempts: 3 } });
    return row.id;
  }

  const flags = async (operationId: string) => ({
    steps: await owner.operationEvent.count({ where: { operationId, kind: 'recovery_exhausted' } }),
    events: await owner.domainEvent.count({ where: { subjectId: operationId, type: 'operation.unknown' } }),
  });

  it('flags once when two flaggers with different attempt counts race: the second, blocked on the first one’s row lock, writes nothing', async () => {
    const operationId = await unknownOperation();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let written!: () => void;
    const firstWritten = new Promise<void>((resolve) => (written = resolve));
    const first = db.withTenant(tenantId, async (tx) => {
      const flagged = await flagForHuman(tx, operationId, 3);
      written();
      await held; // open (the row locked) until the second one waits for this row
      return flagged;
    });
    await firstWritten;
    const second = db.withTenant(tenantId, (tx) => flagForHuman(tx, operationId, 4));
    await waitFor(async () => (await lockWaiters()) > 0, { what: 'second flagger waiting for the row lock' });
    release();
    expect((await first).changed).toBe(true);
    expect((await second).changed).toBe(false);
    expect(await flags(operationId)).toEqual({ steps: 1, events: 1 });
    expect((await owner.terminalOperation.findUniqueOrThrow({ where: { id: operationId } })).stateReason).toMatch(`${RECOVERY_GAVE_UP} after 3 attempts`);
  });

  it('flags once when the sweep flags a spent budget while a recovery attempt that met another device holds the row', async () => {
    // The attempt's transaction flags `another_device` (reason ANOTHER_DEVICE, not "recovery gave up…"); the sweep's
    // flagger waits for the row, then must find that step.
    const operationId = await unknownOperation();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let written!: () => void;
    const firstWritten = new Promise<void>((resolve) => (written = resolve));
    const attempt = db.withTenant(tenantId, async (tx) => {
      const flagged = await flagForHuman(tx, operationId, 3, 'another_device');
      written();
      await held;
      return flagged;
    });
    await firstWritten;
    const sweep = db.withTenant(tenantId, (tx) => flagForHuman(tx, operationId, 3));
    await waitFor(async () => (await lockWaiters()) > 0, { what: "the sweep's flagger waiting for the row lock" });
    release();
    expect((await attempt).changed).toBe(true);
    expect((await sweep).changed).toBe(false);
    expect(await flags(operationId)).toEqual({ steps: 1, events: 1 });
    expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({ state: 'UNKNOWN', stateReason: ANOTHER_DEVICE });
    expect(await owner.operationEvent.findFirstOrThrow({ where: { operationId, kind: 'recovery_exhausted' } })).toMatchObject({
      data: expect.objectContaining({ cause: 'another_device', needsHuman: true }),
    });
  });

  it('does not flag again once a later recovery attempt replaced the reason', async () => {
    const operationId = await unknownOperation();
    expect((await db.withTenant(tenantId, (tx) => flagForHuman(tx, operationId, 3))).changed).toBe(true);
    await owner.terminalOperation.update({ where: { id: operationId }, data: { stateReason: 'JPAY: several journal entries match', recoveryAttempts: 4 } });
    expect((await db.withTenant(tenantId, (tx) => flagForHuman(tx, operationId, 4))).changed).toBe(false);
    expect(await flags(operationId)).toEqual({ steps: 1, events: 1 });
  });

  /** Sessions of the test database waiting for a lock. */
  async function lockWaiters(): Promise<number> {
    const [row] = await owner.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
    return Number(row!.n);
  }
});

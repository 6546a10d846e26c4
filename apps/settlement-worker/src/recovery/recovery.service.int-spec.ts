import type { Queue } from 'bullmq';
import pg from 'pg';

import type { WorkerConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { TerminalDriver } from '@payorch/drivers';
import { createLogger } from '@payorch/logging';
import {
  ANOTHER_DEVICE,
  insertOperation,
  markStuckUnknown,
  OperationCommandHandler,
  OperationExecutor,
  offlineDispatcher,
  recoverOperation,
  type TerminalCommandDispatcher,
} from '@payorch/operations';
import { createTestDatabase, explainPrepared, type TestDatabase, widestRead } from '@payorch/testing';

import { readUnknownOutcomes } from '../system/unknown-outcomes';
import { testWorkerConfig } from '../testing/worker-config.testing';
import { RecoveryService } from './recovery.service';

/** RECOVERY_MAX_ATTEMPTS of these tests. */
const MAX_ATTEMPTS = 3;

describe('the recovery sweep flags operations whose recovery budget the connector spent (payorch_exhausted_operations)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let config: WorkerConfig;
  let service: RecoveryService;
  const added: Array<{ name: string; data: unknown }> = [];
  const queue = { add: async (name: string, data: unknown) => void added.push({ name, data }) } as unknown as Queue;
  let tenantId: string;
  let storeId: string;
  let terminalId: string;
  let seq = 0;

  /** The connector's side: recovery on reconnect asks a terminal that cannot tell (an inconclusive answer). */
  const executorOfConnector = () => new OperationExecutor(db);
  const inconclusive = {
    recover: async () => ({ state: 'unknown' as const, reason: 'JPAY: several journal entries match' }),
  } as unknown as TerminalDriver;

  /**
   * An operation as the connector leaves it: sent, its executor gone, made UNKNOWN on reconnect (markStuckUnknown by
   * `agent_reconnect`), then `attempts` inconclusive recoveries by the connector (recoverOperation), no worker involved.
   */
  async function leftByConnector(attempts: number): Promise<string> {
    const { row } = await db.withTenant(tenantId, (tx) =>
      insertOperation(tx, { tenantId, terminalId, storeId, type: 'purchase', amount: 700, currency: 'RUB', idempotencyKey: `k-${++seq}`, requestHash: 'x' }),
    );
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "state" = 'SENT', "protocolRefs" = ${JSON.stringify({ df01: '000123' })}::jsonb WHERE "id" = ${row.id}::uuid`;
    const unknown = await db.withTenant(tenantId, (tx) =>
      markStuckUnknown(tx, row.id, new Date(Date.now() + 60_000), 'its executor is gone (the terminal reconnected); recovering', 'agent_reconnect'),
    );
    expect(unknown.changed).toBe(true);
    const executor = executorOfConnector();
    for (let i = 0; i < attempts; i++) {
      expect(await recoverOperation(db, executor, inconclusive, { tenantId, operationId: row.id })).toEqual({ attempted: true, state: 'UNKNOWN' });
    }
    return row.id;
  }

  const steps = (operationId: string, kind: string) => owner.operationEvent.findMany({ where: { operationId, kind } });
  const needsHumanEvents = (operationId: string) =>
    owner.domainEvent.findMany({ where: { subjectId: operationId, type: 'operation.unknown', data: { path: ['needsHuman'], equals: true } } });

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    config = testWorkerConfig(testDb.appUrl, 'recovery-sweep', {
      RECOVERY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      // Nothing here is old enough for the other parts of the sweep: only the exhausted scan acts.
      RECOVERY_STUCK_AFTER_MS: String(30 * 86_400_000),
      RECOVERY_PENDING_AFTER_MS: String(30 * 86_400_000),
      RECOVERY_BACKOFF_BASE_MS: String(30 * 86_400_000),
    });
    service = new RecoveryService(db, config, createLogger({ name: 'test', level: 'silent' }), offlineDispatcher);
    const tenant = await owner.tenant.create({ data: { name: 'Tenant' } });
    const store = await owner.store.create({ data: { tenantId: tenant.id, name: 'S', timeZone: 'UTC' } });
    const terminal = await owner.terminal.create({
      data: { tenantId: tenant.id, storeId: store.id, name: 'T', protocol: 'JOINPROTO', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } },
    });
    tenantId = tenant.id;
    storeId = store.id;
    terminalId = terminal.id;
  }, 60_000);

  afterAll(async () => {
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
  });

  it('flags, once, an UNKNOWN operation whose attempts the connector spent; leaves one below the budget alone', async () => {
    const spent = await leftByConnector(MAX_ATTEMPTS);
    const below = await leftByConnector(MAX_ATTEMPTS - 1);
    // The recoverable scan no longer returns the spent one, and the worker's recover job never ran for it.
    expect(await steps(spent, 'recovery_exhausted')).toHaveLength(0);

    expect(await service.sweep(queue)).toMatchObject({ flagged: 1, enqueued: 0 });
    expect(await service.sweep(queue)).toMatchObject({ flagged: 0, enqueued: 0 });
    expect(added).toEqual([]);

    const exhausted = await steps(spent, 'recovery_exhausted');
    expect(exhausted).toHaveLength(1);
    expect(exhausted[0]).toMatchObject({
      fromState: 'UNKNOWN',
      toState: 'UNKNOWN',
      data: expect.objectContaining({ attempts: MAX_ATTEMPTS, needsHuman: true }),
    });
    const events = await needsHumanEvents(spent);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ tenantId, type: 'operation.unknown', data: expect.objectContaining({ needsHuman: true, attempts: MAX_ATTEMPTS }) });
    const row = await owner.terminalOperation.findUniqueOrThrow({ where: { id: spent } });
    expect(row).toMatchObject({ state: 'UNKNOWN', recoveryAttempts: MAX_ATTEMPTS });
    expect(row.stateReason).toBe(`recovery gave up after ${MAX_ATTEMPTS} attempts; resolve manually (POST /v1/operations/${spent}/resolve)`);

    expect(await steps(below, 'recovery_exhausted')).toHaveLength(0);
    expect(await needsHumanEvents(below)).toHaveLength(0);
    expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id: below } })).toMatchObject({ state: 'UNKNOWN', recoveryAttempts: MAX_ATTEMPTS - 1 });
  });

  it('does not flag a flagged operation again after the connector rewrote its reason with one more attempt', async () => {
    const id = await leftByConnector(MAX_ATTEMPTS);
    await service.sweep(queue);
    expect(await steps(id, 'recovery_exhausted')).toHaveLength(1);
    // The terminal reconnects: the connector asks again (inconclusive), which rewrites stateReason and counts an attempt.
    await recoverOperation(db, executorOfConnector(), inconclusive, { tenantId, operationId: id });
    expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id } })).toMatchObject({
      recoveryAttempts: MAX_ATTEMPTS + 1,
      stateReason: 'JPAY: several journal entries match',
    });

    expect(await service.sweep(queue)).toMatchObject({ flagged: 0 });
    expect(await steps(id, 'recovery_exhausted')).toHaveLength(1);
    expect(await needsHumanEvents(id)).toHaveLength(1);
  });

  it('an operation whose recovery meets another device needs a person from its first attempt; pointed back, it is recovered', async () => {
    // Recovery through a re-pointed terminal asks nothing (ANOTHER_DEVICE) and counts an inconclusive attempt. Before,
    // such an operation waited the whole budget (hours of backoff) before the gauge, the `recovery_exhausted` step and
    // the needsHuman event told anyone, although no attempt could decide it.
    const { row } = await db.withTenant(tenantId, (tx) =>
      insertOperation(tx, { tenantId, terminalId, storeId, type: 'purchase', amount: 4311, currency: 'RUB', idempotencyKey: `k-${++seq}`, requestHash: 'x' }),
    );
    const id = row.id;
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "state" = 'SENT',
      "protocolRefs" = ${JSON.stringify({ df01: '000777', command: 'Purchase', sentToDevice: 'device-A' })}::jsonb WHERE "id" = ${id}::uuid`;
    expect(
      (await db.withTenant(tenantId, (tx) => markStuckUnknown(tx, id, new Date(Date.now() + 60_000), 'no outcome; recovering', 'recovery_sweep'))).changed,
    ).toBe(true);

    // The connector holding the terminal: recovery runs there (the bus command), through the driver the terminal has now.
    const asked: string[] = [];
    const device = (name: string, answer: 'unknown' | 'approved'): TerminalDriver =>
      ({
        protocol: 'JOINPROTO',
        device: name,
        recover: async () => {
          asked.push(name);
          return answer === 'approved' ? { state: 'approved', rrn: '000000004311', approvalCode: 'A4311' } : { state: 'unknown', reason: 'not proven' };
        },
      }) as unknown as TerminalDriver;
    let reaches = device('device-B', 'unknown');
    const connector = new OperationCommandHandler(db);
    const dispatcher: TerminalCommandDispatcher = { dispatch: (command) => connector.handle(command, () => reaches) };
    const worker = new RecoveryService(db, config, createLogger({ name: 'test', level: 'silent' }), dispatcher);
    const counted = async () => (await readUnknownOutcomes(db, MAX_ATTEMPTS)).find((c) => c.kind === 'operation')!;
    const before = await counted();

    // ONE attempt, far below the budget: a person is needed now (gauge, timeline step, event).
    expect(await worker.recover({ tenantId, operationId: id })).toEqual({ kind: 'still_unknown', attempts: 1, flagged: true });
    expect(asked).toEqual([]); // the new device was not asked
    expect(await counted()).toMatchObject({ unknown: before.unknown, needingHuman: before.needingHuman + 1 });
    const flagged = await steps(id, 'recovery_exhausted');
    expect(flagged).toHaveLength(1);
    expect(flagged[0]).toMatchObject({ data: expect.objectContaining({ cause: 'another_device', attempts: 1, needsHuman: true }) });
    const events = await needsHumanEvents(id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ tenantId, data: expect.objectContaining({ needsHuman: true, cause: 'another_device', reason: ANOTHER_DEVICE }) });
    expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id } })).toMatchObject({
      state: 'UNKNOWN',
      recoveryAttempts: 1,
      stateReason: ANOTHER_DEVICE,
    });

    // Recovery goes on at its normal pace: still due for the sweep once its backoff has passed, and told once only.
    const due: string[] = [];
    const dueQueue = { add: async (_name: string, data: { operationId: string }) => void due.push(data.operationId) } as unknown as Queue;
    const sweeper = new RecoveryService(
      db,
      { ...config, RECOVERY_BACKOFF_BASE_MS: 1, RECOVERY_BACKOFF_MAX_MS: 1 },
      createLogger({ name: 'test', level: 'silent' }),
      dispatcher,
    );
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "updatedAt" = now() - interval '1 second' WHERE "id" = ${id}::uuid`;
    await sweeper.sweep(dueQueue);
    expect(due).toContain(id);
    expect(await worker.recover({ tenantId, operationId: id })).toEqual({ kind: 'still_unknown', attempts: 2, flagged: true });
    expect(await steps(id, 'recovery_exhausted')).toHaveLength(1);
    expect(await needsHumanEvents(id)).toHaveLength(1);

    // The terminal is pointed back at the device the command went to: the next attempt asks it and decides.
    reaches = device('device-A', 'approved');
    expect(await worker.recover({ tenantId, operationId: id })).toEqual({ kind: 'resolved', state: 'approved' });
    expect(asked).toEqual(['device-A']);
    expect(await owner.terminalOperation.findUniqueOrThrow({ where: { id } })).toMatchObject({ state: 'APPROVED', rrn: '000000004311' });
    expect(await counted()).toMatchObject({ unknown: before.unknown - 1, needingHuman: before.needingHuman });
  });

  it('reads the UNKNOWN rows and their steps through indexes, not the history (payorch_exhausted_operations as planned)', async () => {
    await owner.$executeRawUnsafe(
      `INSERT INTO "TerminalOperation" ("id", "tenantId", "terminalId", "storeId", "type", "amount", "currency", "idempotencyKey", "requestHash",
         "state", "recoveryAttempts", "createdAt", "updatedAt", "completedAt")
       SELECT gen_random_uuid(), $1::uuid, $2::uuid, $3::uuid, 'PURCHASE', 1000, 'RUB', 'past-' || n, 'h', 'APPROVED', $4::int,
         now() - n * interval '1 minute', now() - n * interval '1 minute', now() - n * interval '1 minute'
       FROM generate_series(1, 10000) n`,
      tenantId,
      terminalId,
      storeId,
      MAX_ATTEMPTS,
    );
    await owner.$executeRawUnsafe('ANALYZE "TerminalOperation"');
    await owner.$executeRawUnsafe(
      `INSERT INTO "OperationEvent" ("id", "tenantId", "operationId", "kind", "fromState", "toState", "createdAt")
       SELECT gen_random_uuid(), o."tenantId", o."id", 'recovered', 'UNKNOWN', 'APPROVED', o."updatedAt"
       FROM "TerminalOperation" o WHERE o."idempotencyKey" LIKE 'past-%'`,
    );
    await owner.$executeRawUnsafe('ANALYZE "TerminalOperation", "OperationEvent"');
    const client = new pg.Client({ connectionString: testDb.adminUrl });
    await client.connect();
    try {
      const [fn] = (await client.query<{ src: string }>(`SELECT prosrc AS src FROM pg_proc WHERE proname = 'payorch_exhausted_operations'`)).rows;
      const text = ['p_max_attempts', 'p_limit'].reduce((sql, name, i) => sql.replaceAll(name, `$${i + 1}`), fn!.src);
      await client.query('SET plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE exhausted_operations(int, int) AS ${text}`);
      const plan = await explainPrepared(client, 'exhausted_operations', { text, values: [MAX_ATTEMPTS, 200] }, tenantId);
      // The 4 UNKNOWN operations of the tests above and their steps, not 10,000 of anything.
      expect(widestRead(plan).rows).toBeLessThanOrEqual(50);
      expect(JSON.stringify(plan)).not.toContain('Seq Scan');
    } finally {
      await client.end();
    }
  });
});

import type { Queue } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { createLogger } from '@payorch/logging';
import { insertOperation, offlineDispatcher } from '@payorch/operations';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { testWorkerConfig } from '../testing/worker-config.testing';
import { RecoveryService } from './recovery.service';

/**
 * Found in the eleventh session: the sweep's scan of UNKNOWN operations took the oldest by "updatedAt", and an operation
 * whose terminal cannot be reached is asked without writing anything, so it stayed the oldest forever: with a page of
 * them (200 across all tenants in production) no other operation was ever asked again by the sweep, nor flagged for a
 * person. Operations in a long backoff took places in the page the same way.
 */
describe('the recovery sweep asks every due UNKNOWN operation, whatever the unreachable ones do (payorch_recoverable_operations)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let config: WorkerConfig;
  let service: RecoveryService;
  let enqueued: string[] = [];
  const queue = { add: async (_name: string, data: { operationId: string }) => void enqueued.push(data.operationId) } as unknown as Queue;
  let tenantId: string;
  let storeId: string;
  let seq = 0;

  /** An UNKNOWN operation on `terminalId` last changed `minutesAgo`, with `attempts` inconclusive recoveries. */
  async function unknownOperation(terminalId: string, minutesAgo: number, attempts = 0): Promise<string> {
    const { row } = await db.withTenant(tenantId, (tx) =>
      insertOperation(tx, { tenantId, terminalId, storeId, type: 'purchase', amount: 700, currency: 'RUB', idempotencyKey: `f-${++seq}`, requestHash: 'x' }),
    );
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "state" = 'UNKNOWN', "recoveryAttempts" = ${attempts},
      "updatedAt" = now() - make_interval(mins => ${minutesAgo}) WHERE "id" = ${row.id}::uuid`;
    return row.id;
  }
  const terminal = async (name: string) =>
    (await owner.terminal.create({ data: { tenantId, storeId, name, protocol: 'JOINPROTO', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } } })).id;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 2);
    config = testWorkerConfig(testDb.appUrl, 'recovery-fairness', {
      RECOVERY_MAX_ATTEMPTS: '20',
      RECOVERY_STUCK_AFTER_MS: String(30 * 86_400_000),
      RECOVERY_PENDING_AFTER_MS: String(30 * 86_400_000),
      // 1 min, doubling per attempt, at most 1 h.
      RECOVERY_BACKOFF_BASE_MS: '60000',
      RECOVERY_BACKOFF_MAX_MS: '3600000',
    });
    // Every terminal is offline: a recover job would write nothing (and here none runs: the queue only records).
    service = new RecoveryService(db, config, createLogger({ name: 'test', level: 'silent' }), offlineDispatcher);
    service.batchSize = 2;
    tenantId = (await owner.tenant.create({ data: { name: 'Tenant' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
  }, 60_000);

  afterAll(async () => {
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
  });

  it('walks the due operations page by page: the oldest ones, never changed by an unreachable terminal, do not hold the page', async () => {
    const offline = await terminal('offline for days');
    const unreachable = [await unknownOperation(offline, 3 * 24 * 60), await unknownOperation(offline, 2 * 24 * 60), await unknownOperation(offline, 24 * 60)];
    // In a long backoff (10 attempts: 1 h, the cap) and changed 30 min ago: not due, never enqueued.
    const backingOff = await unknownOperation(await terminal('backing off'), 30, 10);
    // Due (no attempt yet, 5 min old), but younger than every unreachable one.
    const due = await unknownOperation(await terminal('reachable'), 5);

    const seen = new Set<string>();
    for (let sweep = 0; sweep < 3; sweep++) {
      enqueued = [];
      const result = await service.sweep(queue);
      expect(result.enqueued).toBe(enqueued.length);
      expect(enqueued.length).toBeLessThanOrEqual(2);
      for (const id of enqueued) seen.add(id);
    }
    expect(seen).toEqual(new Set([...unreachable, due]));
    expect(seen.has(backingOff)).toBe(false);
  });
});

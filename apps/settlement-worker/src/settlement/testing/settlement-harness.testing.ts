import { randomBytes } from 'node:crypto';

import type { INestApplication } from '@nestjs/common';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { type JobData, QUEUES } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { scheduleRunKey, settlementJobId } from '@payorch/settlement';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase } from '@payorch/testing';

import { createWorkerApp } from '../../bootstrap';
import { testQueueOptions, testWorkerConfig } from '../../testing/worker-config.testing';
import type { SettlementRunner } from '../settlement-runner';

export interface SettlementHarnessOptions<R extends SettlementRunner> {
  /** The worker's Redis key prefix (made unique per run, testWorkerConfig). */
  prefix: string;
  /** Worker settings on top of the test defaults. */
  env?: Record<string, string>;
  /** Connections of `db`, the application pool the runner (and the test) use. */
  poolSize: number;
  /**
   * The runner of a worker app started on the harness's database, Redis and settings (`app`). Without one no app
   * runs: the test drives its own SettlementService and Worker on `queue`.
   */
  runner?: (db: Database) => R;
  /** The queue of `queue` and `events`: the worker's settlement queue unless named. */
  queueName?: string;
}

type TerminalProtocol = 'JOINPROTO' | 'JPAY' | 'SSI_ECR';

/**
 * TEST TOOL (int tests; production code never imports `testing/`): one settlement worker per test file (its own
 * database cloned from the migrated template, its own Redis key prefix), the test's view of it (`owner`, the owner
 * role's Prisma client; `queue` and `events` on its queue; `redis`) and a tenant (`tenantId`, "Chain").
 * `start()` in beforeAll, `stop()` in afterAll: it closes whatever `start()` got to, and what `onStop` added.
 */
export class SettlementHarness<R extends SettlementRunner = SettlementRunner> {
  testDb!: TestDatabase;
  config!: WorkerConfig;
  db!: Database;
  runner!: R;
  app!: INestApplication;
  owner!: PrismaClient;
  redis!: Redis;
  queue!: Queue;
  events!: QueueEvents;
  tenantId!: string;
  private readonly closers: Array<() => Promise<unknown>> = [];

  constructor(private readonly options: SettlementHarnessOptions<R>) {}

  async start(): Promise<this> {
    const { prefix, env, poolSize, runner, queueName = QUEUES.settlement } = this.options;
    this.testDb = await createTestDatabase();
    this.config = testWorkerConfig(this.testDb.appUrl, prefix, env);
    this.db = Database.connect(this.testDb.appUrl, poolSize);
    if (runner) {
      this.runner = runner(this.db);
      this.app = await createWorkerApp(this.config, createLogger({ name: 'test', level: 'silent' }), { settlementRunner: this.runner });
      await this.app.init();
    }
    this.owner = createPrismaClient(this.testDb.adminUrl, { max: 2 });
    this.tenantId = (await this.owner.tenant.create({ data: { name: 'Chain' } })).id;
    this.redis = new Redis(this.config.REDIS_URL);
    const opts = testQueueOptions(this.config);
    this.queue = new Queue(queueName, opts);
    this.events = new QueueEvents(queueName, opts);
    await this.events.waitUntilReady();
    return this;
  }

  /** Runs `close` at `stop()`, after the app closed (simulators, terminals). */
  onStop(close: () => Promise<unknown>): void {
    this.closers.push(close);
  }

  async stop(): Promise<void> {
    // Whatever start() got to: a boot that failed half-way must not leave a worker, a socket or a pool behind.
    await this.queue?.close();
    await this.events?.close();
    await this.app?.close();
    await Promise.all(this.closers.map((close) => close()));
    if (this.redis) {
      await deleteRedisPrefix(this.redis, this.config.REDIS_KEY_PREFIX);
      await this.redis.quit();
    }
    await this.db?.close();
    await this.owner?.$disconnect();
    await this.testDb?.drop();
  }

  /** A store of the tenant. */
  async store(name: string, timeZone: string): Promise<string> {
    return (await this.owner.store.create({ data: { tenantId: this.tenantId, name, timeZone } })).id;
  }

  /** A terminal of the tenant reached over TCP at 127.0.0.1:`port` (default 1: nothing answers there), Joinproto unless said. */
  terminal(
    storeId: string,
    name: string,
    { port = 1, protocol = 'JOINPROTO', dialect }: { port?: number; protocol?: TerminalProtocol; dialect?: string } = {},
  ) {
    return this.owner.terminal.create({
      data: { tenantId: this.tenantId, storeId, name, protocol, ...(dialect ? { dialect } : {}), connection: { kind: 'tcp', host: '127.0.0.1', port } },
    });
  }

  /** Queues the terminal's scheduled `settlement.run` of the business day under the schedule's job id, as a firing does. */
  run(terminalId: string, businessDate: string) {
    const data: JobData['settlement.run'] = {
      tenantId: this.tenantId,
      terminalId,
      businessDate,
      runKey: scheduleRunKey(terminalId, businessDate),
      trigger: 'schedule',
    };
    return this.queue.add('settlement.run', data, { jobId: settlementJobId(terminalId, businessDate) });
  }

  /**
   * An operation of the terminal recorded on our side only (nothing is sent to the terminal): APPROVED unless said,
   * with its completion time exactly when final, as the operation owner writes it.
   */
  recordOperation(
    terminalId: string,
    storeId: string,
    amount: number,
    { type = 'PURCHASE', state = 'APPROVED', rrn }: { type?: 'PURCHASE' | 'REFUND'; state?: 'APPROVED' | 'IN_PROGRESS'; rrn?: string } = {},
  ) {
    return this.owner.terminalOperation.create({
      data: {
        tenantId: this.tenantId,
        terminalId,
        storeId,
        type,
        state,
        amount: BigInt(amount),
        currency: 'RUB',
        rrn,
        idempotencyKey: randomBytes(8).toString('hex'),
        requestHash: 'h',
        completedAt: state === 'APPROVED' ? new Date() : null,
      },
    });
  }
}

import { FlowProducer, type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import {
  CAMPAIGN_QUEUE,
  type CampaignJobData,
  type CampaignJobName,
  campaignJobId,
  type CampaignPolicy,
  campaignWakeJobId,
  DEFAULT_POLICY,
  insertCampaign,
  type NewCampaign,
  type NewCampaignTarget,
  skipOpenTargets,
  stepJobId,
  transitionCampaign,
} from '@payorch/campaigns';
import { createPrismaClient, Database, type PrismaClient, type TransactionClient } from '@payorch/db';
import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { transitionOperation } from '@payorch/operations';
import { bullPrefix } from '@payorch/redis';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase, testRedisUrl, waitFor } from '@payorch/testing';

import { bullConnection } from '../../redis-connection';
import type { CampaignRunner } from '../campaign-runner';
import type { CampaignSweep } from '../campaign-sweep';
import { ParkedSteps } from '../parked-steps';

/**
 * The gateway's campaign row for `load_keys` (no params), named `name` (also its idempotency key), over `targets`
 * already planned into `waves`. The selector is left empty: the gateway resolves it into the targets at creation,
 * and nothing after reads it.
 */
export function loadKeysCampaign(input: {
  tenantId: string;
  name: string;
  policy: CampaignPolicy;
  waves: NewCampaign['waves'];
  targets: NewCampaign['targets'];
  deadline?: Date | null;
}): NewCampaign {
  const { tenantId, name, policy, waves, targets, deadline = null } = input;
  return { tenantId, name, idempotencyKey: name, operationType: 'LOAD_KEYS', params: {}, selector: {}, policy: { ...policy }, deadline, waves, targets };
}

export interface CampaignHarnessOptions {
  /** This file's Redis key prefix (testRedisPrefix): the queue's, the parked steps' lists; deleted at `stop()`. */
  prefix: string;
  /** Connections of `db`, the application pool the runner (and the test) use. */
  poolSize: number;
  /** The queue of `queue`, `flows` and the worker: the worker's campaign queue unless named. */
  queueName?: string;
}

/** A campaign's size, policy (on top of DEFAULT_POLICY) and deadline (none unless said). */
export interface CampaignShape {
  /** Waves of `perWave` terminals each (default 1 × 1); each terminal in a store of its own. */
  waves?: number;
  perWave?: number;
  policy?: Partial<CampaignPolicy>;
  deadline?: Date | null;
}

/**
 * TEST TOOL (int tests; production code never imports `testing/`): the campaign runner's surroundings for one test
 * file: its own database cloned from the migrated template (`owner`, the owner role's Prisma client; `db`, the
 * application pool), its own Redis key prefix (`redis`; `queue` and `flows` on the campaign queue), a BullMQ
 * worker that runs the jobs as CampaignsProcessor does (`startWorker`, counting the runs of each job in `runs`) and
 * a scripted terminal (`dispatcher`). `start()` in beforeAll, `stop()` in afterAll: it closes whatever `start()`
 * and `startWorker()` got to.
 */
export class CampaignHarness {
  readonly logger = createLogger({ name: 'test', level: 'silent' });
  testDb!: TestDatabase;
  owner!: PrismaClient;
  db!: Database;
  redis!: Redis;
  queue!: Queue;
  flows!: FlowProducer;
  worker: Worker | undefined;
  /** Runs of each job (by id) through the worker. */
  readonly runs = new Map<string, number>();
  /** Operations dispatched to `dispatcher`, in order; `hold` decides which of them the terminal keeps (PENDING: queued behind a payment). */
  readonly dispatched: string[] = [];
  hold: (operationId: string) => boolean = () => false;

  /**
   * The terminals: records each `operation.execute`, and its terminal's queue takes it (`replyWhen: 'queued'`);
   * the terminal answers at once (approved, as the connector writes it) unless `hold` keeps it.
   */
  readonly dispatcher = {
    dispatch: async (command: TerminalCommand): Promise<TerminalCommandReply> => {
      if (command.kind === 'operation.execute') {
        this.dispatched.push(command.operationId);
        if (!this.hold(command.operationId)) setImmediate(() => void this.approve(command.tenantId, command.operationId).catch(() => undefined));
      }
      return { ok: true, result: { queued: true } };
    },
  };

  constructor(private readonly options: CampaignHarnessOptions) {}

  async start(): Promise<this> {
    const { prefix, poolSize, queueName = CAMPAIGN_QUEUE } = this.options;
    this.testDb = await createTestDatabase();
    this.owner = createPrismaClient(this.testDb.adminUrl, { max: 2 });
    this.db = Database.connect(this.testDb.appUrl, poolSize);
    this.redis = new Redis(testRedisUrl());
    const options = { connection: bullConnection(testRedisUrl()), prefix: bullPrefix(prefix) };
    this.queue = new Queue(queueName, options);
    this.flows = new FlowProducer(options);
    return this;
  }

  async stop(): Promise<void> {
    // Whatever start() got to: a boot that failed half-way must not leave a worker, a connection or a pool behind.
    await this.worker?.close();
    await this.flows?.close();
    await this.queue?.obliterate({ force: true }).catch(() => undefined);
    await this.queue?.close();
    if (this.redis) await deleteRedisPrefix(this.redis, this.options.prefix);
    await this.redis?.quit();
    await this.db?.close();
    await this.owner?.$disconnect();
    await this.testDb?.drop();
  }

  /** The waiting lists of parked steps on `queue`, their keys expiring after `ttlMs`. */
  parkedSteps(ttlMs: number): ParkedSteps {
    return new ParkedSteps(this.redis, this.options.prefix, this.queue, ttlMs, this.logger);
  }

  /** As CampaignsProcessor (concurrency 8), counting each run: the campaign jobs to `runner`, `campaign.sweep` to `sweep`. */
  startWorker(runner: CampaignRunner, sweep?: CampaignSweep): Worker {
    this.worker = new Worker(
      this.queue.name,
      async (job: Job, token?: string) => {
        this.runs.set(job.id!, (this.runs.get(job.id!) ?? 0) + 1);
        const name = job.name as CampaignJobName;
        switch (name) {
          case 'campaign.run':
            return runner.run(job as Job<CampaignJobData['campaign.run']>, token);
          case 'campaign.wave':
            return runner.wave(job as Job<CampaignJobData['campaign.wave']>, token);
          case 'campaign.step':
            return runner.step(job as Job<CampaignJobData['campaign.step']>, token);
          case 'campaign.wake':
            return runner.wake(job as Job<CampaignJobData['campaign.wake']>);
          case 'campaign.sweep':
            return sweep?.sweep();
        }
      },
      { connection: bullConnection(testRedisUrl()), prefix: bullPrefix(this.options.prefix), concurrency: 8 },
    );
    return this.worker;
  }

  /** Stops the worker: its running jobs finish their run, nothing more is taken. */
  async stopWorker(): Promise<void> {
    await this.worker?.close();
    this.worker = undefined;
  }

  /**
   * Runs a job that fails each run `runs` times without waiting for its backoff (a step's 1, 2, 4, then 8 s): promotes
   * it whenever it waits in the delayed set, until its `runs`-th run started. Only for a job that fails each run: a
   * wait of its own (a window, a park) would be cut short too.
   */
  async runWithoutBackoff(jobId: string, runs: number): Promise<void> {
    await waitFor(
      async () => {
        if ((this.runs.get(jobId) ?? 0) >= runs) return true;
        const job = await this.queue.getJob(jobId);
        if ((await job?.getState()) === 'delayed') await job!.promote().catch(() => undefined);
        return false;
      },
      { what: `${runs} runs of ${jobId}` },
    );
  }

  /**
   * Canceled as the gateway cancels it (apps/api-gateway campaigns.service.ts `move`): the transition and the skip of
   * its open targets in one transaction, then `campaign.wake` with the gateway's options. Returns the wake's job id.
   */
  async cancel({ tenantId, campaignId }: { tenantId: string; campaignId: string }): Promise<string> {
    const eventId = await this.db.withTenant(tenantId, async (tx) => {
      const canceled = await transitionCampaign(tx, {
        campaignId,
        from: ['RUNNING', 'PAUSED'],
        to: 'CANCELED',
        pauseReason: 'operator',
        eventData: { by: 'operator' },
      });
      if (canceled?.event === undefined) throw new Error(`campaign ${campaignId} could not be canceled`);
      await skipOpenTargets(tx, campaignId, 'campaign canceled');
      return canceled.event.id;
    });
    const jobId = campaignWakeJobId(campaignId, eventId);
    await this.queue.add('campaign.wake', { tenantId, campaignId }, { jobId, removeOnComplete: true, removeOnFail: { count: 100 } });
    return jobId;
  }

  /** The connector's part, through the operation owner: one move of the operation, a transaction of its own. */
  move(tenantId: string, operationId: string, to: 'SENT' | 'APPROVED') {
    return this.db.withTenant(tenantId, (tx) => moveOperation(tx, operationId, to));
  }

  /** The terminal answered: PENDING → SENT → APPROVED, in one transaction. */
  approve(tenantId: string, operationId: string) {
    return this.db.withTenant(tenantId, async (tx) => {
      await moveOperation(tx, operationId, 'SENT');
      await moveOperation(tx, operationId, 'APPROVED');
    });
  }

  /**
   * A campaign of the tenant over `waves` × `perWave` terminals, each in a store of its own (`${name}-${i}`, JOINPROTO,
   * TCP to 127.0.0.1:1 where nothing answers), inserted as the gateway inserts it; `inTx` runs in the insert's
   * transaction (under the tenant) and says what is returned. Not started: no job is added.
   */
  async createCampaign<T>(
    tenantId: string,
    name: string,
    { waves = 1, perWave = 1, policy = {}, deadline = null }: CampaignShape,
    inTx: (tx: TransactionClient, campaignId: string) => Promise<T>,
  ): Promise<T> {
    const targets: NewCampaignTarget[] = [];
    for (let i = 0; i < waves * perWave; i++) {
      const storeId = (await this.owner.store.create({ data: { tenantId, name: `${name}-${i}`, timeZone: 'UTC' } })).id;
      const terminal = await this.owner.terminal.create({
        data: { tenantId, storeId, name: `${name}-${i}`, protocol: 'JOINPROTO', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } },
      });
      targets.push({ terminalId: terminal.id, storeId, waveIndex: Math.floor(i / perWave), state: 'PENDING' });
    }
    return this.db.withTenant(tenantId, async (tx) => {
      const created = await insertCampaign(
        tx,
        loadKeysCampaign({
          tenantId,
          name,
          policy: { ...DEFAULT_POLICY, waveSize: { count: perWave }, ...policy },
          deadline,
          waves: Array.from({ length: waves }, (_, index) => ({ index, canary: false, size: perWave })),
          targets,
        }),
      );
      return inTx(tx, created!.campaign.id);
    });
  }

  /**
   * A tenant of its own (the limits count every RUNNING target of the tenant), or `tenantId`'s, with a campaign of
   * `shape`, paused by the operator at once when `paused`, started as the gateway starts it (`campaign.run`); `steps`
   * are its steps' job ids, in the order the targets were created.
   */
  async campaign(name: string, shape: CampaignShape & { paused?: boolean; tenantId?: string }) {
    const tenantId = shape.tenantId ?? (await this.owner.tenant.create({ data: { name } })).id;
    const campaignId = await this.createCampaign(tenantId, name, shape, async (tx, campaignId) => {
      if (shape.paused) await transitionCampaign(tx, { campaignId, from: ['RUNNING'], to: 'PAUSED', pauseReason: 'operator' });
      return campaignId;
    });
    const targets = await this.owner.campaignTarget.findMany({ where: { campaignId }, orderBy: { createdAt: 'asc' } });
    await this.queue.add('campaign.run', { tenantId, campaignId }, { jobId: campaignJobId(campaignId) });
    return { tenantId, campaignId, steps: targets.map((t) => stepJobId(t.id)) };
  }
}

function moveOperation(tx: TransactionClient, operationId: string, to: 'SENT' | 'APPROVED') {
  return to === 'SENT'
    ? transitionOperation(tx, { operationId, from: ['PENDING'], to: 'SENT', step: { kind: 'transition' } })
    : transitionOperation(tx, {
        operationId,
        from: ['SENT'],
        to: 'APPROVED',
        set: { responseCode: '000', completedAt: new Date() },
        step: { kind: 'transition', event: 'operation.completed' },
      });
}

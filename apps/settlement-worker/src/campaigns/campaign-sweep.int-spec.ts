import { FlowProducer, type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import { CAMPAIGN_QUEUE, type CampaignJobData, type CampaignJobName, campaignJobId, DEFAULT_POLICY, insertCampaign, stepJobId } from '@payorch/campaigns';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { transitionOperation } from '@payorch/operations';
import { bullPrefix } from '@payorch/redis';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';

import { bullConnection } from '../redis-connection';
import { CampaignRunner, type CampaignTiming } from './campaign-runner';
import { CampaignSweep } from './campaign-sweep';
import { ParkedSteps } from './parked-steps';

/** Longer than any test here: a parked job that runs again was woken or re-added, not brought back by its fallback delay. */
const PARK_MS = 10 * 60_000;

/**
 * Redis may lose everything (a flush, a failover without persistence); PostgreSQL is the truth. A campaign is
 * driven by its jobs only, so once they are gone a RUNNING target holds its concurrency slot for good and the
 * campaign never advances. The sweep reads the open campaigns' rows and adds the lost jobs again under their job ids.
 * Real BullMQ flow, Redis and PostgreSQL; the loss is every key under this file's own prefix deleted while no worker
 * runs; the terminals are a scripted dispatcher that holds the operations it is told to.
 */
describe('the campaign sweep rebuilds the jobs Redis lost (real BullMQ, Redis, PostgreSQL)', () => {
  const prefix = testRedisPrefix('campaign-sweep');
  const timing: CampaignTiming = { now: () => new Date(), pollMs: 25, maxSleepMs: 50, parkMs: PARK_MS, followMs: 50 };
  const logger = createLogger({ name: 'test', level: 'silent' });
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let redis: Redis;
  let queue: Queue;
  let flows: FlowProducer;
  let worker: Worker | undefined;
  let runner: CampaignRunner;
  let sut: CampaignSweep;
  const options = () => ({ connection: bullConnection(testRedisUrl()), prefix: bullPrefix(prefix) });
  /** Runs of each job (by id) through the worker. */
  const runs = new Map<string, number>();
  /** Operations dispatched, in order; `hold` decides which of them the terminal keeps (PENDING: queued behind a payment). */
  const dispatched: string[] = [];
  let hold: (operationId: string) => boolean = () => false;

  const move = (tenantId: string, operationId: string, to: 'SENT' | 'APPROVED') =>
    db.withTenant(tenantId, (tx) =>
      to === 'SENT'
        ? transitionOperation(tx, { operationId, from: ['PENDING'], to: 'SENT', step: { kind: 'transition' } })
        : transitionOperation(tx, {
            operationId,
            from: ['SENT'],
            to: 'APPROVED',
            set: { responseCode: '000', completedAt: new Date() },
            step: { kind: 'transition', event: 'operation.completed' },
          }),
    );
  const approve = async (tenantId: string, operationId: string) => {
    await move(tenantId, operationId, 'SENT');
    await move(tenantId, operationId, 'APPROVED');
  };

  /** As CampaignsProcessor, counting each run. */
  const startWorker = () => {
    worker = new Worker(
      CAMPAIGN_QUEUE,
      async (job: Job, token?: string) => {
        runs.set(job.id!, (runs.get(job.id!) ?? 0) + 1);
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
            return sut.sweep();
        }
      },
      { ...options(), concurrency: 8 },
    );
  };

  /** Redis loses everything of this file: the worker is stopped (its running jobs finish their run), then every key goes. */
  const loseRedis = async () => {
    await worker?.close();
    worker = undefined;
    await deleteRedisPrefix(redis, prefix);
    // Nothing is left that could ever run a campaign job again: the rows alone say what was going on.
    const counts = await queue.getJobCounts();
    expect(Object.values(counts).every((n) => n === 0)).toBe(true);
  };

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 8);
    redis = new Redis(testRedisUrl());
    queue = new Queue(CAMPAIGN_QUEUE, options());
    flows = new FlowProducer(options());
    const dispatcher = {
      dispatch: async (command: TerminalCommand): Promise<TerminalCommandReply> => {
        if (command.kind === 'operation.execute') {
          dispatched.push(command.operationId);
          if (!hold(command.operationId)) setImmediate(() => void approve(command.tenantId, command.operationId).catch(() => undefined));
        }
        return { ok: true, result: { queued: true } };
      },
    };
    runner = new CampaignRunner(db, dispatcher, flows, timing, new ParkedSteps(redis, prefix, queue, 2 * PARK_MS, logger));
    sut = new CampaignSweep(db, queue, flows, redis, logger);
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await flows?.close();
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    if (redis) await deleteRedisPrefix(redis, prefix);
    await redis?.quit();
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
  });

  beforeEach(() => {
    dispatched.length = 0;
    runs.clear();
    hold = () => false;
    if (worker === undefined) startWorker();
  });

  /** A tenant of its own with a campaign over `waves` × `perWave` terminals (a store each), started as the gateway starts it. */
  async function campaign(name: string, waves: number, perWave: number, policy: Partial<typeof DEFAULT_POLICY>) {
    const tenantId = (await owner.tenant.create({ data: { name } })).id;
    const rows: { terminalId: string; storeId: string; waveIndex: number; state: 'PENDING' }[] = [];
    for (let i = 0; i < waves * perWave; i++) {
      const storeId = (await owner.store.create({ data: { tenantId, name: `${name}-${i}`, timeZone: 'UTC' } })).id;
      const terminal = await owner.terminal.create({
        data: { tenantId, storeId, name: `${name}-${i}`, protocol: 'JOINPROTO', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } },
      });
      rows.push({ terminalId: terminal.id, storeId, waveIndex: Math.floor(i / perWave), state: 'PENDING' });
    }
    const campaignId = await db.withTenant(tenantId, async (tx) => {
      const created = await insertCampaign(tx, {
        tenantId,
        name,
        idempotencyKey: name,
        operationType: 'LOAD_KEYS',
        params: {},
        selector: {},
        policy: { ...DEFAULT_POLICY, waveSize: { count: perWave }, ...policy },
        deadline: null,
        waves: Array.from({ length: waves }, (_, index) => ({ index, canary: false, size: perWave })),
        targets: rows,
      });
      return created!.campaign.id;
    });
    await queue.add('campaign.run', { tenantId, campaignId }, { jobId: campaignJobId(campaignId) });
    return { tenantId, campaignId };
  }

  const targetsOf = (campaignId: string) => owner.campaignTarget.findMany({ where: { campaignId }, orderBy: [{ waveIndex: 'asc' }, { id: 'asc' }] });
  const stateOf = async (campaignId: string) => (await owner.campaign.findUniqueOrThrow({ where: { id: campaignId } })).state;
  /** Operations of the campaign's terminals (the steps' idempotency keys name the targets). */
  const operationsOf = async (campaignId: string) => {
    const targets = await targetsOf(campaignId);
    return owner.terminalOperation.findMany({ where: { terminalId: { in: targets.map((t) => t.terminalId) } } });
  };

  it('a campaign whose jobs Redis lost with RUNNING targets holding the slots completes once the sweep re-adds them', async () => {
    hold = () => true;
    // Two waves of three; two slots: two targets RUNNING (their operations on the terminals), the third parked for a slot.
    const c = await campaign('lost-all', 2, 3, { maxConcurrentPerTenant: 2 });
    await waitFor(async () => dispatched.length === 2, { what: 'two steps holding the slots' });
    await waitFor(async () => (await targetsOf(c.campaignId)).filter((t) => t.state === 'RUNNING').length === 2, { what: 'two targets RUNNING' });

    await loseRedis();
    // The terminals answered meanwhile (the connector writes the rows, not Redis).
    for (const operationId of dispatched) await move(c.tenantId, operationId, 'SENT');
    for (const operationId of dispatched) await move(c.tenantId, operationId, 'APPROVED');
    hold = () => false;

    // Nothing runs yet (no worker): the sweep alone re-adds the run, the running wave and its three unfinished steps.
    const first = await sut.sweep();
    expect(first).toEqual({ campaigns: 1, targets: 3, requeued: { run: 1, wave: 1, step: 3 } });
    // Once more while they wait: each job exists under its id, nothing is added twice.
    const jobs = (await queue.getJobCounts()) as Record<string, number>;
    expect(await sut.sweep()).toEqual({ campaigns: 1, targets: 3, requeued: { run: 0, wave: 0, step: 0 } });
    expect(await queue.getJobCounts()).toEqual(jobs);

    startWorker();
    await waitFor(async () => (await stateOf(c.campaignId)) === 'COMPLETED', { what: 'the campaign completed', timeoutMs: 20_000 });
    const targets = await targetsOf(c.campaignId);
    expect(targets.map((t) => [t.waveIndex, t.state, t.attempts])).toEqual([0, 0, 0, 1, 1, 1].map((w) => [w, 'SUCCEEDED', 1]));
    // One operation per terminal: the two RUNNING targets' steps followed the operations their claims made (not dispatched again).
    const operations = await operationsOf(c.campaignId);
    expect(operations).toHaveLength(6);
    expect(operations.every((op) => op.state === 'APPROVED')).toBe(true);
    // Each dispatched once: the two answered while Redis was gone were not sent again.
    expect(new Set(dispatched).size).toBe(6);
    expect(dispatched).toHaveLength(6);
  });

  it('a re-added step for a RUNNING target follows its operation (held PENDING, SENT, APPROVED) and never makes or sends a second one', async () => {
    hold = () => true;
    const c = await campaign('lost-running', 1, 4, { maxConcurrentPerTenant: 4 });
    await waitFor(async () => dispatched.length === 4, { what: 'four steps dispatched' });
    await waitFor(async () => (await targetsOf(c.campaignId)).every((t) => t.state === 'RUNNING'), { what: 'every target RUNNING' });
    await loseRedis();

    const [held, sent, approved, unheld] = (await targetsOf(c.campaignId)).map((t) => ({ targetId: t.id, operationId: t.operationId! }));
    // held: still PENDING in its terminal's queue (its connector touches the row); sent: on the terminal; approved: answered;
    // unheld: PENDING and untouched for 60 s (its connector died before running it).
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "updatedAt" = now() WHERE "id" = ${held!.operationId}::uuid`;
    await move(c.tenantId, sent!.operationId, 'SENT');
    await approve(c.tenantId, approved!.operationId);
    await owner.$executeRaw`UPDATE "TerminalOperation" SET "updatedAt" = now() - interval '60 seconds' WHERE "id" = ${unheld!.operationId}::uuid`;
    dispatched.length = 0;
    hold = (operationId) => operationId !== unheld!.operationId;

    expect((await sut.sweep()).requeued).toEqual({ run: 1, wave: 1, step: 4 });
    startWorker();
    await waitFor(async () => (await owner.campaignTarget.findUniqueOrThrow({ where: { id: approved!.targetId } })).state === 'SUCCEEDED', {
      what: 'the answered target succeeded',
    });
    await waitFor(async () => (await owner.campaignTarget.findUniqueOrThrow({ where: { id: unheld!.targetId } })).state === 'SUCCEEDED', {
      what: 'the unheld operation dispatched again and answered',
    });
    // The held and the sent ones are followed: their steps re-run (every pollMs) and send nothing.
    await waitFor(async () => (runs.get(stepJobId(held!.targetId)) ?? 0) >= 5 && (runs.get(stepJobId(sent!.targetId)) ?? 0) >= 5, {
      what: 'five runs of the held and the sent steps',
    });
    expect(dispatched).toEqual([unheld!.operationId]);

    await move(c.tenantId, held!.operationId, 'SENT');
    await move(c.tenantId, held!.operationId, 'APPROVED');
    await move(c.tenantId, sent!.operationId, 'APPROVED');
    await waitFor(async () => (await stateOf(c.campaignId)) === 'COMPLETED', { what: 'the campaign completed', timeoutMs: 20_000 });
    const targets = await targetsOf(c.campaignId);
    expect(targets.map((t) => [t.state, t.attempts])).toEqual(targets.map(() => ['SUCCEEDED', 1]));
    // Each target kept the one operation its claim made; the terminal was sent the unheld one once more, nothing else.
    expect(targets.map((t) => t.operationId)).toEqual([held, sent, approved, unheld].map((t) => t!.operationId));
    expect(await operationsOf(c.campaignId)).toHaveLength(4);
    expect(dispatched).toEqual([unheld!.operationId]);
  });

  it('re-adds the lost steps of a wave whose run and wave jobs are still there, and nothing for a campaign whose jobs are all alive', async () => {
    hold = () => true;
    const c = await campaign('lost-steps', 1, 3, { maxConcurrentPerTenant: 1 });
    await waitFor(async () => dispatched.length === 1, { what: 'the step holding the slot' });
    const waiting = (await targetsOf(c.campaignId)).filter((t) => t.state === 'PENDING');
    await waitFor(async () => (await Promise.all(waiting.map((t) => queue.getJobState(stepJobId(t.id))))).every((s) => s === 'delayed'), {
      what: 'the other steps parked',
    });
    expect(await sut.sweep()).toEqual({ campaigns: 1, targets: 3, requeued: { run: 0, wave: 0, step: 0 } });

    // One parked step's job is lost (removed: the wave no longer waits for it, and would pass with its target PENDING).
    await worker!.close();
    worker = undefined;
    const lost = waiting[0]!;
    await queue.remove(stepJobId(lost.id));
    expect(await sut.sweep()).toEqual({ campaigns: 1, targets: 3, requeued: { run: 0, wave: 0, step: 1 } });

    hold = () => false;
    startWorker();
    await approve(c.tenantId, dispatched[0]!);
    await waitFor(async () => (await stateOf(c.campaignId)) === 'COMPLETED', { what: 'the campaign completed', timeoutMs: 20_000 });
    expect((await targetsOf(c.campaignId)).map((t) => t.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(await operationsOf(c.campaignId)).toHaveLength(3);
  });
});

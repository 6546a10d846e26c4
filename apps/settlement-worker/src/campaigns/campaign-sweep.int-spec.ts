import { Job, type Queue } from 'bullmq';
import { Counter, Registry } from 'prom-client';

import { campaignJobId, type CampaignPolicy, campaignWakeJobId, stepJobId, transitionCampaign, waveJobId } from '@payorch/campaigns';
import type { PrismaClient } from '@payorch/db';
import { deleteRedisPrefix, testRedisPrefix, waitFor } from '@payorch/testing';

import { CampaignRunner, type CampaignTiming, STEP_FAILED } from './campaign-runner';
import { CampaignSweep } from './campaign-sweep';
import { CampaignHarness } from './testing/campaign-harness.testing';

/** Longer than any test here: a parked job that runs again was woken or re-added, not brought back by its fallback delay. */
const PARK_MS = 10 * 60_000;
/** Step checks per pass of `sut`: the config's default, more than any test here has targets. */
const STEP_CHECKS = 10_000;
/** Step checks per pass of `budgeted`: fewer than a test's targets. */
const BUDGET = 3;
const NONE = { run: 0, wave: 0, step: 0 };
const NOT_RETRIED = { run: 0, wave: 0, step: 0 };
/** Jobs of ended campaigns removed: none here (every campaign completes with nothing of it failed). */
const NOT_REMOVED = { run: 0, wave: 0, step: 0 };
/** The step jobs' attempts (waveFlow). */
const STEP_ATTEMPTS = 5;

/**
 * Redis may lose everything (a flush, a failover without persistence); PostgreSQL is the truth. A campaign is
 * driven by its jobs only, so once they are gone a RUNNING target holds its concurrency slot for good and the
 * campaign never advances. The sweep reads the open campaigns' rows and adds the lost jobs again under their job ids.
 * Real BullMQ flow, Redis and PostgreSQL; the loss is every key under this file's own prefix deleted while no worker
 * runs; the terminals are a scripted dispatcher that holds the operations it is told to.
 */
describe('the campaign sweep rebuilds the jobs Redis lost (real BullMQ, Redis, PostgreSQL)', () => {
  const prefix = testRedisPrefix('campaign-sweep');
  /** The terminals (`h.dispatcher`) approve each operation at once; `h.hold` decides which of them the terminal keeps (PENDING: queued behind a payment). */
  const h = new CampaignHarness({ prefix, poolSize: 8 });
  const timing: CampaignTiming = { now: () => new Date(), pollMs: 25, maxSleepMs: 50, parkMs: PARK_MS, followMs: 50 };
  const { dispatched, runs } = h;
  let owner: PrismaClient;
  let queue: Queue;
  let runner: CampaignRunner;
  let sut: CampaignSweep;
  let budgeted: CampaignSweep;
  const move = (tenantId: string, operationId: string, to: 'SENT' | 'APPROVED') => h.move(tenantId, operationId, to);
  const approve = (tenantId: string, operationId: string) => h.approve(tenantId, operationId);
  const startWorker = () => h.startWorker(runner, sut);

  /** Redis loses everything of this file: the worker is stopped (its running jobs finish their run), then every key goes. */
  const loseRedis = async () => {
    await h.stopWorker();
    await deleteRedisPrefix(h.redis, prefix);
    // Nothing is left that could ever run a campaign job again: the rows alone say what was going on.
    const counts = await queue.getJobCounts();
    expect(Object.values(counts).every((n) => n === 0)).toBe(true);
  };

  beforeAll(async () => {
    ({ owner, queue } = await h.start());
    runner = new CampaignRunner(h.db, h.dispatcher, h.flows, timing, h.parkedSteps(2 * PARK_MS), h.logger);
    sut = new CampaignSweep(h.db, queue, h.flows, h.redis, h.logger, STEP_CHECKS);
    budgeted = new CampaignSweep(h.db, queue, h.flows, h.redis, h.logger, BUDGET);
  }, 60_000);

  afterAll(() => h.stop());

  beforeEach(() => {
    dispatched.length = 0;
    runs.clear();
    h.hold = () => false;
    if (h.worker === undefined) startWorker();
  });

  afterEach(() => jest.restoreAllMocks());

  /** A tenant of its own with a campaign over `waves` × `perWave` terminals (a store each), started as the gateway starts it. */
  const campaign = (name: string, waves: number, perWave: number, policy: Partial<CampaignPolicy>) => h.campaign(name, { waves, perWave, policy });

  const targetsOf = (campaignId: string) => owner.campaignTarget.findMany({ where: { campaignId }, orderBy: [{ waveIndex: 'asc' }, { id: 'asc' }] });
  const stateOf = async (campaignId: string) => (await owner.campaign.findUniqueOrThrow({ where: { id: campaignId } })).state;
  /** Operations of the campaign's terminals (the steps' idempotency keys name the targets). */
  const operationsOf = async (campaignId: string) => {
    const targets = await targetsOf(campaignId);
    return owner.terminalOperation.findMany({ where: { terminalId: { in: targets.map((t) => t.terminalId) } } });
  };
  /** A tenant of its own with a paused campaign of one wave of `terminals`: its steps parked on the pause, every target PENDING. */
  const pausedCampaign = async (name: string, terminals: number) => {
    const c = await h.campaign(name, { perWave: terminals, paused: true });
    await waitFor(async () => (await Promise.all(c.steps.map((id) => queue.getJobState(id)))).every((s) => s === 'delayed'), {
      what: 'the steps parked on the pause',
    });
    return c;
  };
  /** Resumed as the gateway resumes it: the transition, then `campaign.wake`. */
  const wakeResumed = async ({ tenantId, campaignId }: { tenantId: string; campaignId: string }) => {
    const resumed = await h.db.withTenant(tenantId, (tx) => transitionCampaign(tx, { campaignId, from: ['PAUSED'], to: 'RUNNING' }));
    await queue.add('campaign.wake', { tenantId, campaignId }, { jobId: campaignWakeJobId(campaignId, resumed!.event!.id) });
  };
  /** Resumed as the gateway resumes it, with the worker running: every target succeeds. */
  const resume = async ({ tenantId, campaignId }: { tenantId: string; campaignId: string }) => {
    if (h.worker === undefined) startWorker();
    await wakeResumed({ tenantId, campaignId });
    await waitFor(async () => (await stateOf(campaignId)) === 'COMPLETED', { what: 'the resumed campaign completed', timeoutMs: 20_000 });
    expect((await targetsOf(campaignId)).every((t) => t.state === 'SUCCEEDED')).toBe(true);
    expect(await operationsOf(campaignId)).toHaveLength((await targetsOf(campaignId)).length);
  };

  it('a campaign whose jobs Redis lost with RUNNING targets holding the slots completes once the sweep re-adds them', async () => {
    h.hold = () => true;
    // Two waves of three; two slots: two targets RUNNING (their operations on the terminals), the third parked for a slot.
    const c = await campaign('lost-all', 2, 3, { maxConcurrentPerTenant: 2 });
    await waitFor(async () => dispatched.length === 2, { what: 'two steps holding the slots' });
    await waitFor(async () => (await targetsOf(c.campaignId)).filter((t) => t.state === 'RUNNING').length === 2, { what: 'two targets RUNNING' });

    await loseRedis();
    // The terminals answered meanwhile (the connector writes the rows, not Redis).
    for (const operationId of dispatched) await move(c.tenantId, operationId, 'SENT');
    for (const operationId of dispatched) await move(c.tenantId, operationId, 'APPROVED');
    h.hold = () => false;

    // Nothing runs yet (no worker): the sweep alone re-adds the run, the running wave and its three unfinished steps.
    const first = await sut.sweep();
    expect(first).toEqual({ campaigns: 1, stepChecks: 3, wrapped: true, requeued: { run: 1, wave: 1, step: 3 }, retried: NOT_RETRIED, removed: NOT_REMOVED });
    // Once more while they wait: each job exists under its id, nothing is added twice.
    const jobs = (await queue.getJobCounts()) as Record<string, number>;
    expect(await sut.sweep()).toEqual({ campaigns: 1, stepChecks: 3, wrapped: true, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });
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
    h.hold = () => true;
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
    h.hold = (operationId) => operationId !== unheld!.operationId;

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
    h.hold = () => true;
    const c = await campaign('lost-steps', 1, 3, { maxConcurrentPerTenant: 1 });
    await waitFor(async () => dispatched.length === 1, { what: 'the step holding the slot' });
    const waiting = (await targetsOf(c.campaignId)).filter((t) => t.state === 'PENDING');
    await waitFor(async () => (await Promise.all(waiting.map((t) => queue.getJobState(stepJobId(t.id))))).every((s) => s === 'delayed'), {
      what: 'the other steps parked',
    });
    expect(await sut.sweep()).toEqual({ campaigns: 1, stepChecks: 3, wrapped: true, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });

    // One parked step's job is lost (removed: the wave no longer waits for it, and would pass with its target PENDING).
    await h.stopWorker();
    const lost = waiting[0]!;
    await queue.remove(stepJobId(lost.id));
    expect(await sut.sweep()).toEqual({
      campaigns: 1,
      stepChecks: 3,
      wrapped: true,
      requeued: { run: 0, wave: 0, step: 1 },
      retried: NOT_RETRIED,
      removed: NOT_REMOVED,
    });

    h.hold = () => false;
    startWorker();
    await approve(c.tenantId, dispatched[0]!);
    await waitFor(async () => (await stateOf(c.campaignId)) === 'COMPLETED', { what: 'the campaign completed', timeoutMs: 20_000 });
    expect((await targetsOf(c.campaignId)).map((t) => t.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(await operationsOf(c.campaignId)).toHaveLength(3);
  });

  it('looks for at most its budget of steps a pass, each pass going on where the last stopped and past the last campaign on from the first', async () => {
    const c = await pausedCampaign('budget', 8);
    // A pass over every step: the next one starts from the first target.
    expect(await sut.sweep()).toEqual({ campaigns: 1, stepChecks: 8, wrapped: true, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });
    await h.stopWorker();
    const [first, , , , fifth] = (await targetsOf(c.campaignId)).map((t) => stepJobId(t.id));
    await queue.remove(fifth!);

    // Targets 1-3: the fifth's step is not looked for yet.
    expect(await budgeted.sweep()).toEqual({ campaigns: 1, stepChecks: BUDGET, wrapped: false, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });
    expect(await queue.getJob(fifth!)).toBeUndefined();
    // The first's step is lost behind the cursor; targets 4-6: the fifth's is back.
    await queue.remove(first!);
    expect(await budgeted.sweep()).toEqual({
      campaigns: 1,
      stepChecks: BUDGET,
      wrapped: false,
      requeued: { run: 0, wave: 0, step: 1 },
      retried: NOT_RETRIED,
      removed: NOT_REMOVED,
    });
    expect(await queue.getJob(fifth!)).toBeDefined();
    expect(await queue.getJob(first!)).toBeUndefined();
    // Targets 7, 8, then past the last campaign on from the first: the first's is back.
    expect(await budgeted.sweep()).toEqual({
      campaigns: 1,
      stepChecks: BUDGET,
      wrapped: true,
      requeued: { run: 0, wave: 0, step: 1 },
      retried: NOT_RETRIED,
      removed: NOT_REMOVED,
    });
    expect(await queue.getJob(first!)).toBeDefined();
    // Targets 2-4.
    expect(await budgeted.sweep()).toEqual({ campaigns: 1, stepChecks: BUDGET, wrapped: false, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });

    await resume(c);
  });

  it("rebuilds the flows Redis lost whole in one pass, whatever the budget: each pass looks for every open campaign's run and wave", async () => {
    const a = await pausedCampaign('flushed-a', 5);
    const b = await pausedCampaign('flushed-b', 5);
    expect(await sut.sweep()).toEqual({ campaigns: 2, stepChecks: 10, wrapped: true, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });
    await loseRedis();

    // The cursor is lost too; the run and wave checks find the flows gone and add them with every step of their waves.
    expect(await budgeted.sweep()).toEqual({
      campaigns: 2,
      stepChecks: 10,
      wrapped: true,
      requeued: { run: 2, wave: 2, step: 10 },
      retried: NOT_RETRIED,
      removed: NOT_REMOVED,
    });
    expect(await budgeted.sweep()).toEqual({ campaigns: 2, stepChecks: BUDGET, wrapped: false, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });

    await resume(a);
    await resume(b);
  });

  it('leaves the lost steps of a wave whose run and wave went during the pass to the next pass, which adds the flow again whole', async () => {
    const c = await pausedCampaign('flushed-mid-pass', 5);
    expect(await sut.sweep()).toEqual({ campaigns: 1, stepChecks: 5, wrapped: true, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });
    await h.stopWorker();
    // Redis loses everything after the pass found the run and the wave, as it reads the first page of targets.
    const querySql = h.db.querySql.bind(h.db);
    const read = jest.spyOn(h.db, 'querySql').mockImplementationOnce(async (tenant, query) => {
      await deleteRedisPrefix(h.redis, prefix);
      return querySql(tenant, query);
    });

    // The page's steps are gone, and so are the run and the wave: nothing is added (a wave added with part of its
    // steps could pass with the rest of its targets PENDING).
    expect(await budgeted.sweep()).toEqual({ campaigns: 1, stepChecks: BUDGET, wrapped: false, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });
    read.mockRestore();
    expect(Object.values(await queue.getJobCounts()).every((n) => n === 0)).toBe(true);
    expect(await budgeted.sweep()).toEqual({
      campaigns: 1,
      stepChecks: 5,
      wrapped: true,
      requeued: { run: 1, wave: 1, step: 5 },
      retried: NOT_RETRIED,
      removed: NOT_REMOVED,
    });

    await resume(c);
  });

  /** Once the job is in the failed set: it failed for good (a run or wave job has one attempt). */
  const failed = (jobId: string) => waitFor(async () => (await queue.getJobState(jobId)) === 'failed', { what: `job ${jobId} failed` });
  /**
   * A wave failed around its open target whose step failed for good: one pass retries both; the wave, retried first, may
   * run before its step is back and fail again, then the next pass retries it once more. Until the campaign completes.
   */
  const sweepUntilCompleted = async (campaignId: string, waveId: string) => {
    expect(await sut.sweep()).toEqual({
      campaigns: 1,
      stepChecks: 1,
      wrapped: true,
      requeued: NONE,
      retried: { run: 0, wave: 1, step: 1 },
      removed: NOT_REMOVED,
    });
    await waitFor(async () => (await stateOf(campaignId)) === 'COMPLETED' || (await queue.getJobState(waveId)) === 'failed', {
      what: 'the campaign completed, or its wave failed once more',
      timeoutMs: 20_000,
    });
    if ((await stateOf(campaignId)) !== 'COMPLETED') expect(await sut.sweep()).toMatchObject({ retried: { run: 0, wave: 1, step: 0 } });
    await waitFor(async () => (await stateOf(campaignId)) === 'COMPLETED', { what: 'the campaign completed', timeoutMs: 20_000 });
  };
  const completed = async (campaignId: string) => {
    await waitFor(async () => (await stateOf(campaignId)) === 'COMPLETED', { what: 'the campaign completed', timeoutMs: 20_000 });
    const targets = await targetsOf(campaignId);
    expect(targets.map((t) => [t.state, t.attempts])).toEqual(targets.map(() => ['SUCCEEDED', 1]));
    expect(await operationsOf(campaignId)).toHaveLength(targets.length);
  };

  it('retries a wave job found failed, again each pass that finds it failed again, and the campaign completes', async () => {
    const registry = new Registry();
    const requeuedTotal = new Counter({ name: 'requeued_total', help: 'requeued', labelNames: ['kind', 'reason'] as const, registers: [registry] });
    const counted = new CampaignSweep(h.db, queue, h.flows, h.redis, h.logger, STEP_CHECKS, requeuedTotal);
    const warn = jest.spyOn(h.logger, 'warn');
    // Wave 0's judgement fails (a bug) on its first two runs: the job fails for good each time, its run waiting for it.
    const bug = new Error('wave could not be judged');
    jest.spyOn(runner, 'wave').mockRejectedValueOnce(bug).mockRejectedValueOnce(bug);
    const c = await campaign('failed-wave', 2, 1, {});
    const waveId = waveJobId(c.campaignId, 0);

    await failed(waveId);
    // Its hash exists: it used to be left there, the campaign stalled for good.
    expect(await counted.sweep()).toEqual({
      campaigns: 1,
      stepChecks: 0,
      wrapped: true,
      requeued: NONE,
      retried: { run: 0, wave: 1, step: 0 },
      removed: NOT_REMOVED,
    });
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ jobs: [{ jobId: waveId, failedReason: bug.message }] }), 'failed campaign jobs were retried');
    await failed(waveId);
    expect(await counted.sweep()).toEqual({
      campaigns: 1,
      stepChecks: 0,
      wrapped: true,
      requeued: NONE,
      retried: { run: 0, wave: 1, step: 0 },
      removed: NOT_REMOVED,
    });

    await completed(c.campaignId);
    expect((await requeuedTotal.get()).values).toEqual([{ labels: { kind: 'wave', reason: 'failed' }, value: 2 }]);
  });

  it('a step failed for good with its target open holds its wave: the sweep retries the step and the wave until the target ends', async () => {
    // Its handler fails on every attempt without reaching its own last-attempt handling (as a step BullMQ fails after it
    // stalled twice): the job fails for good with the target PENDING, and a failed step does not hold its wave.
    const stalled = new Error('job stalled more than allowable limit');
    const step = runner.step.bind(runner);
    let failures = 0;
    jest.spyOn(runner, 'step').mockImplementation(async (job, token) => {
      if (failures >= STEP_ATTEMPTS) return step(job, token);
      failures += 1;
      throw stalled;
    });
    const c = await campaign('failed-step', 2, 1, {});
    const waveId = waveJobId(c.campaignId, 0);
    await h.runWithoutBackoff(c.steps[0]!, STEP_ATTEMPTS);
    await failed(c.steps[0]!);
    // The wave does not pass around its open target (before, it passed and the campaign completed with it PENDING).
    await failed(waveId);
    expect(await targetsOf(c.campaignId)).toMatchObject([
      { waveIndex: 0, state: 'PENDING' },
      { waveIndex: 1, state: 'PENDING' },
    ]);

    await sweepUntilCompleted(c.campaignId, waveId);
    await completed(c.campaignId);
  });

  it('a halted wave resumed with a target whose step failed for good does not pass around it: the sweep ends it first', async () => {
    // Target A's step fails on every attempt; its last attempt ends it FAILED (STEP_FAILED), which halts the wave (threshold
    // 0 %) and pauses the campaign. Target B's step fails for good without its last-attempt handling (a double stall).
    const bug = new Error('column "x" does not exist');
    const stalled = new Error('job stalled more than allowable limit');
    const failures = new Map<string, number>();
    /** Throws `error` on the first STEP_ATTEMPTS runs of job `jobId`. */
    const failFirst = (jobId: string, error: Error): void => {
      const n = failures.get(jobId) ?? 0;
      if (n >= STEP_ATTEMPTS) return;
      failures.set(jobId, n + 1);
      throw error;
    };
    const c = await h.campaign('halted-open', { perWave: 2, paused: true, policy: { failureThresholdPercent: 0 } });
    const [a, b] = c.steps as [string, string];
    const inner = runner as unknown as { stepOrWait: CampaignRunner['step'] };
    const stepOrWait = inner.stepOrWait.bind(runner);
    jest.spyOn(inner, 'stepOrWait').mockImplementation(async (job, token) => {
      if (job.id === a) failFirst(a, bug);
      return stepOrWait(job, token);
    });
    const step = runner.step.bind(runner);
    jest.spyOn(runner, 'step').mockImplementation(async (job, token) => {
      if (job.id === b) failFirst(b, stalled);
      return step(job, token);
    });
    await wakeResumed(c);
    await Promise.all([h.runWithoutBackoff(a, STEP_ATTEMPTS), h.runWithoutBackoff(b, STEP_ATTEMPTS)]);
    await failed(b);
    const waveId = waveJobId(c.campaignId, 0);
    await waitFor(async () => (await stateOf(c.campaignId)) === 'PAUSED' && (await queue.getJobState(waveId)) === 'delayed', {
      what: 'the wave halted and its job parked on the pause',
    });

    // The operator resumes: the halted wave's failure (A) is accepted, its open target (B) is not.
    await wakeResumed(c);
    await failed(waveId);
    expect((await targetsOf(c.campaignId)).map((t) => t.state).sort()).toEqual(['FAILED', 'PENDING']);
    expect(await stateOf(c.campaignId)).toBe('RUNNING');

    await sweepUntilCompleted(c.campaignId, waveId);
    const targets = await targetsOf(c.campaignId);
    expect(targets.map((t) => [t.state, t.lastError]).sort()).toEqual([
      ['FAILED', STEP_FAILED],
      ['SUCCEEDED', null],
    ]);
  });

  it('retries a run that failed after it marked itself started: it waits for its running wave, and every wave runs', async () => {
    h.hold = () => true;
    // The run's move to wait for its children fails once (Redis refusing writes), after it added wave 0 and marked itself started.
    jest.spyOn(Job.prototype, 'moveToWaitingChildren').mockRejectedValueOnce(new Error("READONLY You can't write against a read only replica."));
    const c = await campaign('failed-run', 2, 1, {});
    const runId = campaignJobId(c.campaignId);
    await failed(runId);
    await waitFor(async () => dispatched.length === 1, { what: "wave 0's step holding its operation" });

    expect(await sut.sweep()).toEqual({
      campaigns: 1,
      stepChecks: 1,
      wrapped: true,
      requeued: NONE,
      retried: { run: 1, wave: 0, step: 0 },
      removed: NOT_REMOVED,
    });
    // Retried, it waits for wave 0. It completed the campaign's row at once before (wave 0 running, wave 1 never
    // started), then failed again: BullMQ does not complete a job with pending children.
    const runState = await waitFor(
      async () => {
        const state = await queue.getJobState(runId);
        return state !== 'waiting' && state !== 'active' && state;
      },
      { what: 'the retried run to wait, complete or fail' },
    );
    expect(runState).toBe('waiting-children');
    expect(await stateOf(c.campaignId)).toBe('RUNNING');

    h.hold = () => false;
    await approve(c.tenantId, dispatched[0]!);
    await completed(c.campaignId);
  });

  it('retries a wave whose job failed after it started the next one, even once later waves passed too: the run waits for it no more', async () => {
    // Wave 0's job does its work (passes wave 0, starts wave 1) and then fails (a Redis error on its way out); waves 1
    // and 2 pass before any sweep, so the rows no longer point at wave 0: only the run's own wait for it does.
    const wave = runner.wave.bind(runner);
    jest.spyOn(runner, 'wave').mockImplementationOnce(async (job, token) => {
      await wave(job, token);
      throw new Error('Connection is closed.');
    });
    const c = await campaign('failed-wave-later-passed', 3, 1, {});
    await failed(waveJobId(c.campaignId, 0));
    await waitFor(async () => (await owner.campaignWave.count({ where: { campaignId: c.campaignId, state: 'PASSED' } })) === 3, {
      what: 'every wave passed',
    });
    // The run waits for a failed child for good: the campaign would stay RUNNING with every wave passed.
    expect(await queue.getJobState(campaignJobId(c.campaignId))).toBe('waiting-children');
    expect(await stateOf(c.campaignId)).toBe('RUNNING');

    expect(await sut.sweep()).toEqual({
      campaigns: 1,
      stepChecks: 0,
      wrapped: true,
      requeued: NONE,
      retried: { run: 0, wave: 1, step: 0 },
      removed: NOT_REMOVED,
    });
    await completed(c.campaignId);
  });

  it('retries the passed wave whose job failed after it started the next one: the run waits for it no more', async () => {
    h.hold = () => true;
    const c = await campaign('failed-passed-wave', 2, 1, {});
    await waitFor(async () => dispatched.length === 1, { what: "wave 0's step holding its operation" });
    // Adding wave 1's flow fails once (Redis refusing writes at maxmemory): wave 1 RUNNING without a job, wave 0's job failed.
    jest.spyOn(h.flows, 'add').mockRejectedValueOnce(new Error("OOM command not allowed when used memory > 'maxmemory'."));
    await approve(c.tenantId, dispatched[0]!);
    await failed(waveJobId(c.campaignId, 0));

    // Wave 1's flow is added again (its job is gone) and wave 0's job retried: a failed child holds its run for good.
    expect(await sut.sweep()).toEqual({
      campaigns: 1,
      stepChecks: 1,
      wrapped: true,
      requeued: { run: 0, wave: 1, step: 1 },
      retried: { run: 0, wave: 1, step: 0 },
      removed: NOT_REMOVED,
    });
    h.hold = () => false;
    await completed(c.campaignId);
  });

  it.each(['wake', 'sweep'] as const)('completes a campaign whose last wave passed while it was paused once it is resumed (by the resume’s %s)', async (by) => {
    h.hold = () => true;
    const c = await campaign(`paused-last-wave-${by}`, 1, 1, {});
    await waitFor(async () => dispatched.length === 1, { what: 'the step holding its operation' });
    const operationId = dispatched[0]!;
    await move(c.tenantId, operationId, 'SENT');
    // Paused by the operator while the command is on the terminal: the step finishes, and its wave, the last, passes.
    await h.db.withTenant(c.tenantId, (tx) => transitionCampaign(tx, { campaignId: c.campaignId, from: ['RUNNING'], to: 'PAUSED', pauseReason: 'operator' }));
    await move(c.tenantId, operationId, 'APPROVED');
    const runId = campaignJobId(c.campaignId);
    // The run finds the campaign PAUSED and ends without completing it; it never runs again.
    await waitFor(async () => (await queue.getJobState(runId)) === 'completed', { what: 'the run completed' });
    expect(await owner.campaignWave.findMany({ where: { campaignId: c.campaignId } })).toEqual([expect.objectContaining({ state: 'PASSED' })]);
    expect(await stateOf(c.campaignId)).toBe('PAUSED');

    // Until 2026-12-07 it stayed RUNNING after the resume, every target finished: the wake looked only at started
    // waves, and the sweep took the completed run for a live one.
    if (by === 'wake') {
      await wakeResumed(c);
      await waitFor(async () => (await stateOf(c.campaignId)) === 'COMPLETED', { what: 'the resumed campaign completed' });
    } else {
      // Resumed, its `campaign.wake` lost (the gateway does not fail a resume for it).
      await h.db.withTenant(c.tenantId, (tx) => transitionCampaign(tx, { campaignId: c.campaignId, from: ['PAUSED'], to: 'RUNNING' }));
      expect(await sut.sweep()).toMatchObject({ stepChecks: 0, requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });
      expect(await stateOf(c.campaignId)).toBe('COMPLETED');
    }
    await completed(c.campaignId);
    // Ended, nothing of it is added or retried again.
    expect(await sut.sweep()).toMatchObject({ requeued: NONE, retried: NOT_RETRIED, removed: NOT_REMOVED });
  });
});

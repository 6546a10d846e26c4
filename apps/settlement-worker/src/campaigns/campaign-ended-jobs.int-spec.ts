import type { Job, Queue } from 'bullmq';
import { Counter, Registry } from 'prom-client';

import { campaignJobId, type CampaignJobData, campaignWakeJobId, stepJobId, transitionCampaign, waveJobId } from '@payorch/campaigns';
import type { PrismaClient } from '@payorch/db';
import { testRedisPrefix, waitFor } from '@payorch/testing';

import { CampaignRunner, type CampaignTiming } from './campaign-runner';
import { CampaignSweep } from './campaign-sweep';
import { CampaignHarness } from './testing/campaign-harness.testing';

/** Longer than any test here: a parked job that runs again was woken, not brought back by its fallback delay. */
const PARK_MS = 10 * 60_000;
/** Step checks (and failed jobs looked at) per pass of `sut`: the config's default, more than any test here has. */
const STEP_CHECKS = 10_000;
/** Failed jobs looked at per pass of `budgeted`: fewer than the test's. */
const BUDGET = 3;
/** The step jobs' attempts (waveFlow). */
const STEP_ATTEMPTS = 5;
const NONE = { run: 0, wave: 0, step: 0 };
/** A job's hash and the keys BullMQ keeps beside it (its lock, its children's lists, its logs). */
const JOB_KEY_SUFFIXES = ['', ':lock', ':dependencies', ':processed', ':failed', ':unsuccessful', ':logs'];

/**
 * A campaign's flow ends by itself unless one of its jobs failed; the sweep retries a failed run, wave or step only
 * while its campaign is open. A campaign that ended (canceled while its wave was failed; a run or step failed for good
 * around ended targets) used to keep those jobs in Redis for good — a failed wave with its run, waiting for it — and
 * Redis grew with the history of campaigns. The sweep now removes an ended campaign's run with its children and its
 * failed jobs, never a job an open campaign or a RUNNING target still needs, and leaves a locked one to the next pass.
 * Real BullMQ flow, Redis and PostgreSQL; the terminals are a scripted dispatcher.
 */
describe('the campaign sweep removes the jobs of ended campaigns (real BullMQ, Redis, PostgreSQL)', () => {
  const h = new CampaignHarness({ prefix: testRedisPrefix('campaign-ended-jobs'), poolSize: 8 });
  const timing: CampaignTiming = { now: () => new Date(), pollMs: 25, maxSleepMs: 50, parkMs: PARK_MS, followMs: 50 };
  const { dispatched } = h;
  let owner: PrismaClient;
  let queue: Queue;
  let runner: CampaignRunner;
  let sut: CampaignSweep;
  let budgeted: CampaignSweep;
  let removedTotal: Counter<'kind'>;

  beforeAll(async () => {
    ({ owner, queue } = await h.start());
    runner = new CampaignRunner(h.db, h.dispatcher, h.flows, timing, h.parkedSteps(2 * PARK_MS), h.logger);
    removedTotal = new Counter({ name: 'removed_total', help: 'removed', labelNames: ['kind'] as const, registers: [new Registry()] });
    sut = new CampaignSweep(h.db, queue, h.flows, h.redis, h.logger, STEP_CHECKS, undefined, removedTotal);
    budgeted = new CampaignSweep(h.db, queue, h.flows, h.redis, h.logger, BUDGET);
    h.startWorker(runner, sut);
  }, 60_000);

  afterAll(() => h.stop());

  beforeEach(() => {
    dispatched.length = 0;
    h.hold = () => false;
    removedTotal.reset();
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    // Each test leaves nothing failed behind: the next one's sweeps count exactly its own.
    const { failed } = await queue.getJobCounts('failed');
    if (failed !== 0) throw new Error(`${failed} failed job(s) left behind by the test`);
  });

  const stateOf = async (campaignId: string) => (await owner.campaign.findUniqueOrThrow({ where: { id: campaignId } })).state;
  /** The states of the campaign's targets, in the order of its steps' job ids. */
  const targetStates = async ({ campaignId, steps }: { campaignId: string; steps: string[] }) => {
    const targets = await owner.campaignTarget.findMany({ where: { campaignId } });
    return steps.map((id) => targets.find((t) => stepJobId(t.id) === id)?.state);
  };
  const failed = (jobId: string) => waitFor(async () => (await queue.getJobState(jobId)) === 'failed', { what: `job ${jobId} failed` });
  /** Until the job failed for good, without waiting for its backoff: promoted whenever it waits in the delayed set. */
  const failedWithoutBackoff = (jobId: string) =>
    waitFor(
      async () => {
        const state = await queue.getJobState(jobId);
        if (state === 'delayed') await (await queue.getJob(jobId))?.promote().catch(() => undefined);
        return state === 'failed';
      },
      { what: `job ${jobId} failed for good` },
    );
  const completed = (campaignId: string) =>
    waitFor(async () => (await stateOf(campaignId)) === 'COMPLETED', { what: `campaign ${campaignId} completed`, timeoutMs: 20_000 });
  /** Canceled as the gateway cancels it, and its `campaign.wake` run (removed once done). */
  const cancel = async (c: { tenantId: string; campaignId: string }) => {
    const wakeId = await h.cancel(c);
    await waitFor(async () => (await queue.getJob(wakeId)) === undefined, { what: 'the cancel’s wake done' });
  };
  /** Resumed as the gateway resumes it: the transition, then `campaign.wake`. */
  const resume = async ({ tenantId, campaignId }: { tenantId: string; campaignId: string }) => {
    const resumed = await h.db.withTenant(tenantId, (tx) => transitionCampaign(tx, { campaignId, from: ['PAUSED'], to: 'RUNNING' }));
    await queue.add('campaign.wake', { tenantId, campaignId }, { jobId: campaignWakeJobId(campaignId, resumed!.event!.id) });
  };
  /** A paused campaign of one wave of `terminals` (a tenant of its own), its steps parked on the pause: nothing of it ran yet. */
  const pausedCampaign = async (name: string, terminals: number, policy: Parameters<CampaignHarness['campaign']>[1]['policy'] = {}) => {
    const c = await h.campaign(name, { perWave: terminals, paused: true, policy });
    await waitFor(async () => (await Promise.all(c.steps.map((id) => queue.getJobState(id)))).every((s) => s === 'delayed'), {
      what: 'the steps parked on the pause',
    });
    return c;
  };
  /** The step jobs of `jobIds` fail their first STEP_ATTEMPTS runs before their handler runs (as BullMQ fails a job that stalled twice). */
  const stallSteps = (jobIds: string[]) => {
    const step = runner.step.bind(runner);
    const runs = new Map<string, number>();
    jest.spyOn(runner, 'step').mockImplementation(async (job, token) => {
      const n = runs.get(job.id!) ?? 0;
      if (!jobIds.includes(job.id!) || n >= STEP_ATTEMPTS) return step(job, token);
      runs.set(job.id!, n + 1);
      throw new Error('job stalled more than allowable limit');
    });
  };
  /** The run of `campaignIds` fails (its one attempt) right after it completed its campaign (a Redis error on its way out). */
  const failRunsAfterCompleting = (campaignIds: () => string[]) => {
    const run = runner.run.bind(runner);
    jest.spyOn(runner, 'run').mockImplementation(async (job: Job<CampaignJobData['campaign.run']>, token) => {
      const result = (await run(job, token)) as { state: string };
      if (result.state === 'COMPLETED' && campaignIds().includes(job.data.campaignId)) throw new Error('Connection is closed.');
      return result;
    });
  };
  /** No trace of these jobs in Redis: no job, in no state, none of its keys. */
  const expectGone = async (jobIds: string[]) => {
    for (const id of jobIds) {
      const keys = await h.redis.exists(...JOB_KEY_SUFFIXES.map((suffix) => `${queue.toKey(id)}${suffix}`));
      expect({ id, job: await queue.getJob(id), state: await queue.getJobState(id), keys }).toEqual({ id, job: undefined, state: 'unknown', keys: 0 });
    }
  };
  const removedCounted = async () => Object.fromEntries((await removedTotal.get()).values.map((v) => [v.labels.kind, v.value]));

  it('removes the run, the failed wave and the failed step of a campaign canceled while its wave was failed; an open one is retried, not removed', async () => {
    const info = jest.spyOn(h.logger, 'info');
    // Two campaigns alike: one terminal each whose step fails for good before its handler runs (its target stays PENDING);
    // the wave then fails around the open target and the run waits for it.
    const canceled = await pausedCampaign('canceled-failed-wave', 1);
    const open = await pausedCampaign('open-failed-wave', 1);
    stallSteps([...canceled.steps, ...open.steps]);
    for (const c of [canceled, open]) {
      await resume(c);
      await failedWithoutBackoff(c.steps[0]!);
      await failed(waveJobId(c.campaignId, 0));
    }
    const jobsOf = (c: { campaignId: string; steps: string[] }) => [campaignJobId(c.campaignId), waveJobId(c.campaignId, 0), ...c.steps];

    // The operator cancels one: its target is skipped; nothing of its flow will run again.
    await cancel(canceled);
    expect(await stateOf(canceled.campaignId)).toBe('CANCELED');
    expect(await targetStates(canceled)).toEqual(['SKIPPED']);
    // What Redis kept for good before: the run waiting for its failed wave, the wave and the step in the failed set.
    expect(await Promise.all(jobsOf(canceled).map((id) => queue.getJobState(id)))).toEqual(['waiting-children', 'failed', 'failed']);

    const swept = await sut.sweep();
    await expectGone(jobsOf(canceled));
    expect(swept).toEqual({
      campaigns: 1,
      stepChecks: 1,
      wrapped: true,
      requeued: NONE,
      retried: { run: 0, wave: 1, step: 1 },
      removed: { run: 1, wave: 1, step: 1 },
    });
    expect(await removedCounted()).toEqual({ run: 1, wave: 1, step: 1 });
    expect(info).toHaveBeenCalledWith(
      expect.objectContaining({ jobIds: expect.arrayContaining(jobsOf(canceled)) as unknown, more: 0 }),
      'jobs of ended campaigns were removed',
    );
    // The open campaign's jobs were retried, not removed: it completes (its wave may fail once more before its step is back).
    expect(await queue.getJobState(campaignJobId(open.campaignId))).toBe('waiting-children');
    for (let pass = 1; (await stateOf(open.campaignId)) !== 'COMPLETED'; pass++) {
      expect(pass).toBeLessThan(3);
      await waitFor(async () => (await stateOf(open.campaignId)) === 'COMPLETED' || (await queue.getJobState(waveJobId(open.campaignId, 0))) === 'failed', {
        what: 'the open campaign completed, or its wave failed once more',
        timeoutMs: 20_000,
      });
      if ((await stateOf(open.campaignId)) !== 'COMPLETED') expect((await sut.sweep()).removed).toEqual(NONE);
    }
    expect(await targetStates(open)).toEqual(['SUCCEEDED']);
    expect(await sut.sweep()).toMatchObject({ removed: NONE });
  });

  it('leaves a canceled campaign’s flow while a target of it is RUNNING, and a locked one to the next pass; then removes it with its orphaned failed step', async () => {
    h.hold = () => true;
    // Two terminals: the first one's step claims it and follows its operation (held on the terminal); the second one's
    // step fails for good before its handler runs, its target PENDING. The wave waits for the first.
    const c = await pausedCampaign('canceled-running', 2, { maxConcurrentPerTenant: 2 });
    const [running, stalled] = c.steps as [string, string];
    stallSteps([stalled]);
    await resume(c);
    await failedWithoutBackoff(stalled);
    await waitFor(async () => dispatched.length === 1, { what: 'the first step holding its operation' });
    await cancel(c);
    expect(await targetStates(c)).toEqual(['RUNNING', 'SKIPPED']);

    // A RUNNING target's step must end it (it holds a slot of its tenant and store): nothing of the flow goes.
    const runId = campaignJobId(c.campaignId);
    const waveId = waveJobId(c.campaignId, 0);
    expect(await sut.sweep()).toMatchObject({ removed: NONE });
    expect(await queue.getJob(runId)).toBeDefined();
    expect(await queue.getJob(waveId)).toBeDefined();
    expect(await queue.getJob(running)).toBeDefined();

    // The terminal answers: the step ends its target, the wave stops (its campaign canceled) and is removed, the run completes.
    await h.approve(c.tenantId, dispatched[0]!);
    await waitFor(async () => (await queue.getJobState(runId)) === 'completed', { what: 'the run completed' });
    expect(await targetStates(c)).toEqual(['SUCCEEDED', 'SKIPPED']);
    // The failed step is left behind (its wave, removed once done, no longer lists it): kept for good before.
    expect(await queue.getJobState(stalled)).toBe('failed');

    // A worker holds the run's lock (a job of the flow running): BullMQ cannot remove it, the next pass will.
    const lock = `${queue.toKey(runId)}:lock`;
    await h.redis.set(lock, 'another-worker');
    expect(await sut.sweep()).toMatchObject({ removed: NONE });
    expect(await queue.getJobState(stalled)).toBe('failed');
    await h.redis.del(lock);
    const swept = await sut.sweep();
    await expectGone([runId, waveId, running, stalled]);
    expect(swept).toMatchObject({ removed: { run: 1, wave: 0, step: 1 } });
  });

  it('removes the run of a completed campaign that failed after completing it', async () => {
    const campaignIds: string[] = [];
    failRunsAfterCompleting(() => campaignIds);
    const c = await pausedCampaign('completed-failed-run', 1);
    campaignIds.push(c.campaignId);
    await resume(c);
    const runId = campaignJobId(c.campaignId);
    await failed(runId);
    expect(await stateOf(c.campaignId)).toBe('COMPLETED');

    const swept = await sut.sweep();
    await expectGone([runId, waveJobId(c.campaignId, 0), ...c.steps]);
    expect(swept).toEqual({ campaigns: 0, stepChecks: 0, wrapped: true, requeued: NONE, retried: NONE, removed: { run: 1, wave: 0, step: 0 } });
  });

  it('removes a step that failed for good after it ended its target, and the run, once the campaign completed around it', async () => {
    const c = await pausedCampaign('completed-failed-step', 1);
    const [stepId] = c.steps as [string];
    // The step ends its target, then fails (a Redis error on its way out), on every attempt: the job fails for good; a
    // failed step does not hold its wave, which passes (its target ended).
    const step = runner.step.bind(runner);
    jest.spyOn(runner, 'step').mockImplementation(async (job, token) => {
      const result = await step(job, token);
      if (job.id === stepId) throw new Error('Connection is closed.');
      return result;
    });
    await resume(c);
    await failedWithoutBackoff(stepId);
    await completed(c.campaignId);
    expect(await targetStates(c)).toEqual(['SUCCEEDED']);

    const swept = await sut.sweep();
    await expectGone([campaignJobId(c.campaignId), waveJobId(c.campaignId, 0), stepId]);
    expect(swept).toEqual({ campaigns: 0, stepChecks: 0, wrapped: true, requeued: NONE, retried: NONE, removed: { run: 1, wave: 0, step: 1 } });
  });

  it('looks at most its budget of failed jobs a pass, each pass going on where the last stopped', async () => {
    // Five completed campaigns whose runs failed after completing them, one after the other (the failed set's order).
    const campaignIds: string[] = [];
    failRunsAfterCompleting(() => campaignIds);
    const runs: string[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await pausedCampaign(`budget-${i}`, 1);
      campaignIds.push(c.campaignId);
      await resume(c);
      await failed(campaignJobId(c.campaignId));
      runs.push(campaignJobId(c.campaignId));
    }
    // The first two are locked by a worker: left where they are in the failed set.
    const locks = runs.slice(0, 2).map((id) => `${queue.toKey(id)}:lock`);
    for (const lock of locks) await h.redis.set(lock, 'another-worker');

    const removed = async (sweep: CampaignSweep) => (await sweep.sweep()).removed;
    // Ranks 0-2: the two locked runs and the third.
    expect(await removed(budgeted)).toEqual({ run: 1, wave: 0, step: 0 });
    expect(await queue.getJobState(runs[3]!)).toBe('failed');
    // On after them (the removed one no longer counted in the ranks), not from the start: the fourth and the fifth.
    expect(await removed(budgeted)).toEqual({ run: 2, wave: 0, step: 0 });
    // Past the end: from the start again.
    expect(await removed(budgeted)).toEqual(NONE);
    for (const lock of locks) await h.redis.del(lock);
    expect(await removed(budgeted)).toEqual({ run: 2, wave: 0, step: 0 });
    await expectGone(runs);
  });
});

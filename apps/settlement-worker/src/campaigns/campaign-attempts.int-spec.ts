import type { Queue } from 'bullmq';

import type { Database, PrismaClient } from '@payorch/db';
import { testRedisPrefix, waitFor } from '@payorch/testing';

import { CampaignRunner, type CampaignTiming, STEP_FAILED } from './campaign-runner';
import { CampaignHarness } from './testing/campaign-harness.testing';

/** Longer than any test here: a parked job that runs again was woken, not brought back by its fallback delay. */
const PARK_MS = 10 * 60_000;
/** The step jobs' attempts (waveFlow): the last one fails for good unless the step handles it. */
const STEP_ATTEMPTS = 5;

/**
 * A step job whose attempts run out on errors that are not outages (a bus or Redis error, a bug) used to fail for
 * good; its wave, which a failed step does not hold, then passed with the target still open: a PENDING one was never
 * ended (its campaign completed around it), a RUNNING one held its tenant's slot forever. Real BullMQ flow (the step's
 * real attempts and backoff, the backoff skipped by promoting the job), Redis and PostgreSQL; the errors are injected
 * into the runner's database client for one tenant; the terminals are a scripted dispatcher.
 */
describe('a campaign step out of attempts (real BullMQ, Redis, PostgreSQL)', () => {
  const h = new CampaignHarness({ prefix: testRedisPrefix('campaign-attempts'), poolSize: 8 });
  const timing: CampaignTiming = { now: () => new Date(), pollMs: 25, maxSleepMs: 50, parkMs: PARK_MS, followMs: 50 };
  const { dispatched, runs } = h;
  let owner: PrismaClient;
  let db: Database;
  let queue: Queue;

  beforeAll(async () => {
    ({ owner, db, queue } = await h.start());
    h.startWorker(new CampaignRunner(db, h.dispatcher, h.flows, timing, h.parkedSteps(2 * PARK_MS), h.logger));
  }, 60_000);

  afterAll(() => h.stop());

  beforeEach(() => {
    dispatched.length = 0;
    h.hold = () => false;
  });

  afterEach(() => jest.restoreAllMocks());

  const stateOf = async (campaignId: string) => (await owner.campaign.findUniqueOrThrow({ where: { id: campaignId } })).state;
  const targetOf = (campaignId: string) => owner.campaignTarget.findFirstOrThrow({ where: { campaignId } });
  const completed = (campaignId: string) =>
    waitFor(async () => (await stateOf(campaignId)) === 'COMPLETED', { what: `campaign ${campaignId} completed`, timeoutMs: 20_000 });

  it('a PENDING target whose step fails on every attempt ends FAILED STEP_FAILED, and its campaign completes', async () => {
    // The step's first read fails for the tenant (a bug), on every attempt: nothing is ever claimed or sent.
    const bug = new Error('column "x" does not exist');
    const withTenantSql = db.withTenantSql.bind(db);
    let tenantId = '';
    jest
      .spyOn(db, 'withTenantSql')
      .mockImplementation(((tenant: string, work: never) =>
        tenant === tenantId && /CampaignRunner\.stepOnce/.test(new Error().stack ?? '') ? Promise.reject(bug) : withTenantSql(tenant, work)) as never);
    const warn = jest.spyOn(h.logger, 'warn');

    // One terminal; its failure is within the threshold (100 %), so the wave passes.
    const c = await h.campaign('pending-out-of-attempts', { policy: { failureThresholdPercent: 100 } });
    tenantId = c.tenantId;
    await h.runWithoutBackoff(c.steps[0]!, STEP_ATTEMPTS);
    await completed(c.campaignId);

    expect(await targetOf(c.campaignId)).toMatchObject({
      state: 'FAILED',
      attempts: 0,
      operationId: null,
      lastError: STEP_FAILED,
      reason: `step failed after ${STEP_ATTEMPTS} attempts: ${bug.message}`,
    });
    expect(runs.get(c.steps[0]!)).toBe(STEP_ATTEMPTS);
    expect(dispatched).toEqual([]);
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ jobId: c.steps[0], attempts: STEP_ATTEMPTS, err: bug.message }),
      `campaign step out of attempts: its target failed (${STEP_FAILED})`,
    );
    // The job ended (removed on completion), not failed for good.
    expect(await queue.getJob(c.steps[0]!)).toBeUndefined();
  });

  it("a RUNNING target whose follow keeps failing is not failed: its step follows the operation past its attempts, and the tenant's slot frees when it ends", async () => {
    h.hold = () => true;
    // Reading the operation's row fails for the tenant (a bug) from the first follow on, the dispatch done.
    const bug = new Error('operation row could not be decoded');
    const querySql = db.querySql.bind(db);
    let failing = true;
    let tenantId = '';
    jest
      .spyOn(db, 'querySql')
      .mockImplementation(((tenant: string, query: never) => (failing && tenant === tenantId ? Promise.reject(bug) : querySql(tenant, query))) as never);
    const warn = jest.spyOn(h.logger, 'warn');

    // The tenant's only slot.
    const c = await h.campaign('running-out-of-attempts', { policy: { maxConcurrentPerTenant: 1 } });
    tenantId = c.tenantId;
    const [step] = c.steps;
    await h.runWithoutBackoff(step!, STEP_ATTEMPTS);
    // Past its last attempt, it keeps following the operation (every pollMs) instead of failing for good.
    await waitFor(async () => (runs.get(step!) ?? 0) >= STEP_ATTEMPTS + 3 || (await queue.getJobState(step!)) === 'failed', {
      what: 'three runs of the step past its last attempt, or its failure',
    });
    expect(await queue.getJobState(step!)).not.toBe('failed');
    const [operationId] = dispatched;
    expect(dispatched).toEqual([operationId]);
    expect(await targetOf(c.campaignId)).toMatchObject({ state: 'RUNNING', attempts: 1, operationId });
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ jobId: step, operationId, attempts: STEP_ATTEMPTS, err: bug.message }),
      'campaign step out of attempts: it follows its running operation on',
    );

    // The error stops and the terminal answers: the target ends with the operation's outcome.
    failing = false;
    await h.approve(c.tenantId, operationId!);
    await completed(c.campaignId);
    expect(await targetOf(c.campaignId)).toMatchObject({ state: 'SUCCEEDED', attempts: 1, operationId, lastError: null });

    // The slot is free: a later campaign of the tenant runs (it parked for good behind a target left RUNNING).
    h.hold = () => false;
    const later = await h.campaign('running-out-of-attempts-later', { tenantId: c.tenantId, policy: { maxConcurrentPerTenant: 1 } });
    await completed(later.campaignId);
    expect(await targetOf(later.campaignId)).toMatchObject({ state: 'SUCCEEDED' });
    expect(await owner.terminalOperation.count({ where: { tenantId: c.tenantId } })).toBe(2);
  });
});

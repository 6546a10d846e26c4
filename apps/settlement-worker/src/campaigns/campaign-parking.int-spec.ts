import { randomBytes } from 'node:crypto';

import { DelayedError, type FlowProducer, type Job, type Queue } from 'bullmq';

import {
  type CampaignJobData,
  campaignJobId,
  campaignWakeJobId,
  type CampaignPolicy,
  skipOpenTargets,
  stepJobId,
  transitionCampaign,
  transitionTarget,
} from '@payorch/campaigns';
import type { Database, PrismaClient } from '@payorch/db';
import type { TerminalCommandReply } from '@payorch/domain';
import { testRedisPrefix, waitFor } from '@payorch/testing';

import { CampaignRunner, type CampaignTiming } from './campaign-runner';
import type { ParkedSteps } from './parked-steps';
import { CampaignHarness } from './testing/campaign-harness.testing';

/** Longer than any test here: a parked job that runs again was woken, not brought back by its fallback delay. */
const PARK_MS = 10 * 60_000;

/**
 * Steps that must wait — for a concurrency slot, for their paused campaign — park instead of polling (issue 20
 * review: each re-ran every `pollMs`, a transaction each time, ~25,000 runs/s for one 50,000-terminal wave behind a
 * limit of 1 or left paused, on the queue every tenant shares). Real BullMQ flow, Redis and PostgreSQL; the
 * terminals are a scripted dispatcher that approves each operation at once, except the one it is told to hold.
 * Runs are counted per job; the clock of "meanwhile" is the running step's own re-runs (it follows its held
 * operation every `pollMs`, as the waiting steps used to poll), never wall-clock time.
 */
describe('campaign steps that must wait park until woken (real BullMQ, Redis, PostgreSQL)', () => {
  /** The terminals (`h.dispatcher`) approve each operation at once; `h.hold` (when set) decides which of them the terminal keeps running. */
  const h = new CampaignHarness({ prefix: testRedisPrefix('campaign-parking'), poolSize: 8 });
  const timing: CampaignTiming = { now: () => new Date(), pollMs: 25, maxSleepMs: 50, parkMs: PARK_MS, followMs: 50 };
  const { dispatched, runs } = h;
  let owner: PrismaClient;
  let db: Database;
  let queue: Queue;
  let parked: ParkedSteps;
  let sut: CampaignRunner;
  const approve = (tenantId: string, operationId: string) => h.approve(tenantId, operationId);

  beforeAll(async () => {
    ({ owner, db, queue } = await h.start());
    parked = h.parkedSteps(2 * PARK_MS);
    sut = new CampaignRunner(db, h.dispatcher, h.flows, timing, parked, h.logger);
    h.startWorker(sut);
  }, 60_000);

  afterAll(() => h.stop());

  beforeEach(() => {
    dispatched.length = 0;
    h.hold = () => false;
  });

  /** A campaign over `terminals` terminals (a store each) in one wave, in a tenant of its own, started as the gateway starts it. */
  const campaign = (name: string, terminals: number, policy: Partial<CampaignPolicy>, paused = false) =>
    h.campaign(name, { perWave: terminals, policy, paused });

  const runsOf = (ids: readonly string[]) => ids.reduce((sum, id) => sum + (runs.get(id) ?? 0), 0);
  /** The jobs once every one of them ran and waits in the delayed set (read after their state: a delayed job's delay is set). */
  const parkedJobs = async (ids: readonly string[]) => {
    const states = await Promise.all(ids.map((id) => queue.getJobState(id)));
    if (!ids.every((id) => (runs.get(id) ?? 0) >= 1) || !states.every((s) => s === 'delayed')) return undefined;
    return (await Promise.all(ids.map((id) => queue.getJob(id)))).map((j) => j!);
  };
  const stateOf = async (campaignId: string) => (await owner.campaign.findUniqueOrThrow({ where: { id: campaignId } })).state;
  /** The step holding the slot: its operation is the first dispatched, which the terminal keeps. */
  const holdFirst = () => {
    h.hold = (operationId) => operationId === dispatched[0];
  };
  const holderStep = async () => stepJobId((await owner.campaignTarget.findFirstOrThrow({ where: { operationId: dispatched[0] } })).id);

  it("steps waiting for the tenant's only slot do not run while it is held, and run once more each as the slots free", async () => {
    holdFirst();
    const c = await campaign('one-slot', 6, { maxConcurrentPerTenant: 1 });
    await waitFor(async () => dispatched.length === 1, { what: 'the first step holding the slot' });
    const holder = await holderStep();
    const waiters = c.steps.filter((s) => s !== holder);
    const jobs = await waitFor(() => parkedJobs(waiters), { what: 'every other step parked' });
    // Parked for the fallback delay, listed for the tenant's limit (1): nothing re-runs them but a wake.
    for (const job of jobs) expect(job.delay).toBeGreaterThanOrEqual(PARK_MS);
    expect((await parked.listed(c.tenantId)).sort()).toEqual([...waiters].sort());

    // Meanwhile: the holder follows its operation, re-running every pollMs ten times; the waiters used to re-run as often.
    const waiterRuns = runsOf(waiters);
    const holderRuns = runs.get(holder)!;
    await waitFor(async () => runs.get(holder)! >= holderRuns + 10, { what: 'ten re-runs of the holding step' });
    expect(runsOf(waiters)).toBe(waiterRuns);

    // The terminal answers: each step that ends wakes the next; the campaign completes long before any fallback delay.
    await approve(c.tenantId, dispatched[0]!);
    await waitFor(async () => (await stateOf(c.campaignId)) === 'COMPLETED', { what: 'the campaign completed', timeoutMs: 20_000 });
    const targets = await owner.campaignTarget.findMany({ where: { campaignId: c.campaignId } });
    expect(targets.map((t) => [t.state, t.attempts])).toEqual(targets.map(() => ['SUCCEEDED', 1]));
    // One operation per terminal, each dispatched once.
    expect(new Set(dispatched).size).toBe(6);
    expect(dispatched).toHaveLength(6);
    // Each waiter: its first run (parked), its woken run (claim, dispatch, follow), at most one more to see the answer;
    // a wake it lost to another step costs a run too. Polling every pollMs cost tens each.
    expect(runsOf(waiters)).toBeLessThanOrEqual(waiters.length * 4);
    expect(await parked.listed(c.tenantId)).toEqual([]);
  });

  it("steps of a paused campaign park with the fallback delay, and the resume's wake runs them", async () => {
    const c = await campaign('paused', 3, { maxConcurrentPerTenant: 50 }, true);
    const jobs = await waitFor(() => parkedJobs(c.steps), { what: 'the steps parked on the pause' });
    for (const job of jobs) expect(job.delay).toBeGreaterThanOrEqual(PARK_MS);
    expect(dispatched).toEqual([]);
    const before = runsOf(c.steps);

    // Resumed as the gateway resumes: the transition, then `campaign.wake` (jobId from the transition's event).
    const resumed = await db.withTenant(c.tenantId, (tx) => transitionCampaign(tx, { campaignId: c.campaignId, from: ['PAUSED'], to: 'RUNNING' }));
    await queue.add('campaign.wake', { tenantId: c.tenantId, campaignId: c.campaignId }, { jobId: campaignWakeJobId(c.campaignId, resumed!.event!.id) });
    await waitFor(async () => (await stateOf(c.campaignId)) === 'COMPLETED', { what: 'the resumed campaign completed', timeoutMs: 20_000 });
    expect(await owner.campaignTarget.count({ where: { campaignId: c.campaignId, state: 'SUCCEEDED' } })).toBe(3);
    expect(runsOf(c.steps) - before).toBeLessThanOrEqual(c.steps.length * 2);
  });

  it("a cancel's wake ends the steps parked for a slot at once: they leave the waiting list, nothing is sent", async () => {
    holdFirst();
    const c = await campaign('canceled', 4, { maxConcurrentPerTenant: 1 });
    await waitFor(async () => dispatched.length === 1, { what: 'the first step holding the slot' });
    const holder = await holderStep();
    const waiters = c.steps.filter((s) => s !== holder);
    await waitFor(() => parkedJobs(waiters), { what: 'every other step parked' });

    const canceled = await db.withTenant(c.tenantId, async (tx) => {
      const written = await transitionCampaign(tx, { campaignId: c.campaignId, from: ['RUNNING'], to: 'CANCELED' });
      await skipOpenTargets(tx, c.campaignId, 'campaign canceled');
      return written!;
    });
    await queue.add('campaign.wake', { tenantId: c.tenantId, campaignId: c.campaignId }, { jobId: campaignWakeJobId(c.campaignId, canceled.event!.id) });
    // Their jobs end (removed on completion) and take themselves off the list; the holder still holds its terminal.
    await waitFor(async () => ((await Promise.all(waiters.map((id) => queue.getJob(id)))).every((j) => j === undefined) ? true : undefined), {
      what: "the canceled campaign's parked steps ended",
    });
    expect(await parked.listed(c.tenantId)).toEqual([]);

    await approve(c.tenantId, dispatched[0]!);
    await waitFor(async () => (await queue.getJobState(campaignJobId(c.campaignId))) === 'completed', { what: 'the campaign job ended' });
    const targets = await owner.campaignTarget.findMany({ where: { campaignId: c.campaignId } });
    expect(targets.filter((t) => t.state === 'SKIPPED')).toHaveLength(3);
    expect(targets.filter((t) => t.state === 'SUCCEEDED')).toHaveLength(1);
    expect(dispatched).toHaveLength(1);
  });
});

/**
 * The one moment a wake could be lost: the slot frees after the step found it taken and before it is listed, so the
 * step that freed it found nobody to wake. The step looks once more after it parked (CampaignRunner.park).
 */
describe('CampaignRunner.park: a slot freed between the check and the park', () => {
  const h = new CampaignHarness({ prefix: testRedisPrefix('campaign-park-race'), poolSize: 2, queueName: `park-race-${randomBytes(3).toString('hex')}` });
  let owner: PrismaClient;
  let db: Database;
  let parked: ParkedSteps;
  let sut: CampaignRunner;

  /** The parts of a BullMQ job the step uses; `onDelay` runs when it moves itself to the delayed set. */
  function fakeJob(data: CampaignJobData['campaign.step'], onDelay: () => Promise<void> = async () => undefined) {
    const job = {
      id: stepJobId(data.targetId),
      data,
      delays: [] as number[],
      promoted: 0,
      updateData: async (next: CampaignJobData['campaign.step']) => {
        job.data = next;
      },
      moveToDelayed: async (timestamp: number) => {
        job.delays.push(timestamp - Date.now());
        await onDelay();
      },
      promote: async () => {
        job.promoted += 1;
      },
    };
    return job;
  }

  beforeAll(async () => {
    ({ owner, db } = await h.start());
    parked = h.parkedSteps(2 * PARK_MS);
    const dispatcher = { dispatch: async (): Promise<TerminalCommandReply> => ({ ok: true, result: { queued: true } }) };
    sut = new CampaignRunner(
      db,
      dispatcher,
      {} as FlowProducer,
      { now: () => new Date(), pollMs: 25, maxSleepMs: 50, parkMs: PARK_MS, followMs: 0 },
      parked,
      h.logger,
    );
  });

  afterAll(() => h.stop());

  /** A tenant with a running wave of two terminals (stores of their own) and a limit of 1; the first target RUNNING. */
  async function oneSlotTaken(name: string) {
    const tenantId = (await owner.tenant.create({ data: { name } })).id;
    return h.createCampaign(tenantId, name, { perWave: 2, policy: { maxConcurrentPerTenant: 1 } }, async (tx, campaignId) => {
      await tx.campaignWave.updateMany({ where: { campaignId }, data: { state: 'RUNNING' } });
      const [holder, waiter] = await tx.campaignTarget.findMany({ where: { campaignId }, orderBy: { createdAt: 'asc' } });
      await transitionTarget(tx, { targetId: holder!.id, from: ['PENDING'], to: 'RUNNING', countAttempt: true });
      return { tenantId, campaignId, holder: holder!, waiter: waiter! };
    });
  }

  it('the step promotes itself when the slot freed before it was listed; it stays parked and listed while the slot is taken', async () => {
    const raced = await oneSlotTaken('raced');
    // The holder ends (and finds nobody to wake) while the waiter moves itself to the delayed set.
    const job = fakeJob({ tenantId: raced.tenantId, campaignId: raced.campaignId, targetId: raced.waiter.id }, async () => {
      await db.withTenant(raced.tenantId, (tx) => transitionTarget(tx, { targetId: raced.holder.id, from: ['RUNNING'], to: 'SUCCEEDED' }));
      await parked.release(raced.tenantId, raced.holder.storeId);
    });
    await expect(sut.step(job as unknown as Job<CampaignJobData['campaign.step']>, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(job.delays).toHaveLength(1);
    expect(job.delays[0]).toBeGreaterThanOrEqual(PARK_MS - 1_000);
    expect(job.promoted).toBe(1);
    expect(await parked.listed(raced.tenantId)).toEqual([]);

    const held = await oneSlotTaken('held');
    const waiting = fakeJob({ tenantId: held.tenantId, campaignId: held.campaignId, targetId: held.waiter.id });
    await expect(sut.step(waiting as unknown as Job<CampaignJobData['campaign.step']>, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(waiting.promoted).toBe(0);
    expect(waiting.data.parked).toBe(true);
    expect(await parked.listed(held.tenantId)).toEqual([waiting.id]);
    expect(await owner.campaignTarget.findUniqueOrThrow({ where: { id: held.waiter.id } })).toMatchObject({ state: 'PENDING', attempts: 0, operationId: null });
  });
});

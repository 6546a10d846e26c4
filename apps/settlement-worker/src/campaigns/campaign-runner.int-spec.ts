import type { FlowProducer, Job } from 'bullmq';
import { DelayedError } from 'bullmq';

import { type CampaignJobData, type CampaignPolicy, skipOpenTargets, transitionCampaign } from '@payorch/campaigns';
import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import { failNeverSent, insertOperation, UNHELD_PENDING_MS } from '@payorch/operations';
import { testRedisPrefix } from '@payorch/testing';

import { CampaignRunner, DEFAULT_TIMING, STEP_FAILED } from './campaign-runner';
import type { ParkedSteps } from './parked-steps';
import { CampaignHarness } from './testing/campaign-harness.testing';

type StepData = CampaignJobData['campaign.step'];

/** The step jobs' attempts (waveFlow). */
const STEP_ATTEMPTS = 5;

/** The parts of a BullMQ job the step uses: its data (updateData), its attempts and the move to the delayed set. */
function fakeJob(data: StepData, attemptsMade = 0): Job<StepData> & { delays: number; until: number } {
  const job = {
    id: `campaign-step-${data.targetId}`,
    data,
    attemptsMade,
    opts: { attempts: STEP_ATTEMPTS },
    delays: 0,
    until: 0,
    updateData: async (next: StepData) => {
      job.data = next;
    },
    moveToDelayed: async (timestamp: number) => {
      job.delays += 1;
      job.until = timestamp;
    },
  };
  return job as unknown as Job<StepData> & { delays: number; until: number };
}

/**
 * CampaignRunner.step against real PostgreSQL with a scripted dispatcher (issue 15): a step dispatches its
 * operation with `replyWhen: 'queued'` and then follows the operation's row; a re-run leaves a PENDING
 * operation held by a connector alone, dispatches an unheld one again, and fails one the queue did not take.
 */
describe(CampaignRunner.name, () => {
  const h = new CampaignHarness({ prefix: testRedisPrefix('campaign-runner'), poolSize: 2 });
  let tenantId: string;
  const commands: TerminalCommand[] = [];
  let reply: TerminalCommandReply = { ok: true, result: { queued: true } };
  /** Thrown by the dispatch instead of a reply when set. */
  let thrown: Error | undefined;
  let sut: CampaignRunner;
  let dispatcher: { dispatch: (command: TerminalCommand) => Promise<TerminalCommandReply> };
  let parked: ParkedSteps;

  /**
   * A campaign of one terminal in a store of its own (maxConcurrentPerStore is 1), one wave, every policy default
   * but the wave size; returns its step's job data.
   */
  const campaignOfOne = (name: string, policy: Partial<CampaignPolicy> = {}, deadline: Date | null = null): Promise<StepData> =>
    h.createCampaign(tenantId, name, { policy, deadline }, async (tx, campaignId) => {
      const target = await tx.campaignTarget.findFirstOrThrow({ where: { campaignId } });
      await tx.campaignWave.updateMany({ where: { campaignId }, data: { state: 'RUNNING' } });
      return { tenantId, campaignId, targetId: target.id };
    });

  const targetOf = (id: string) => h.owner.campaignTarget.findUniqueOrThrow({ where: { id } });
  const operationOf = (id: string) => h.owner.terminalOperation.findUniqueOrThrow({ where: { id } });
  const executes = () => commands.filter((c) => c.kind === 'operation.execute');
  /** The connector's part, through the operation owner: PENDING → SENT → APPROVED. */
  const approve = (operationId: string) => h.approve(tenantId, operationId);

  beforeAll(async () => {
    await h.start();
    tenantId = (await h.owner.tenant.create({ data: { name: 'Runner' } })).id;
    dispatcher = {
      dispatch: async (command: TerminalCommand) => {
        commands.push(command);
        if (thrown !== undefined) throw thrown;
        return reply;
      },
    };
    // followMs 0: one read of the row per run, so each run's decision is visible.
    sut = new CampaignRunner(
      h.db,
      dispatcher,
      {} as FlowProducer,
      { now: () => new Date(), pollMs: 10, maxSleepMs: 50, parkMs: 60_000, followMs: 0 },
      (parked = h.parkedSteps(120_000)),
      h.logger,
    );
  });

  afterAll(() => h.stop());

  beforeEach(() => {
    commands.length = 0;
    reply = { ok: true, result: { queued: true } };
    thrown = undefined;
  });

  afterEach(() => jest.restoreAllMocks());

  it('dispatches once queued, leaves a held PENDING operation alone on a re-run, and dispatches an unheld one again', async () => {
    const job = fakeJob(await campaignOfOne('held'));
    await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    const { operationId } = await targetOf(job.data.targetId);
    expect(executes()).toEqual([
      { kind: 'operation.execute', tenantId, terminalId: expect.any(String), operationId, replyWhen: 'queued', command: { type: 'load_keys' } },
    ]);
    expect(job.data.dispatchedOperationId).toBe(operationId);

    // Still PENDING and fresh: queued in its terminal's queue (the connector touches it); nothing is sent again.
    await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(executes()).toHaveLength(1);
    expect(job.delays).toBe(2);

    // Untouched for longer than a hold interval: no connector holds it any more; dispatched again.
    await h.owner.terminalOperation.update({ where: { id: operationId! }, data: { updatedAt: new Date(Date.now() - UNHELD_PENDING_MS - 5_000) } });
    await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(executes().map((c) => (c as { operationId: string }).operationId)).toEqual([operationId, operationId]);

    // The connector runs it; the row ends the step (nothing dispatched).
    await approve(operationId!);
    await expect(sut.step(job, 'token')).resolves.toEqual({ targetId: job.data.targetId, state: 'SUCCEEDED' });
    expect(executes()).toHaveLength(2);
    expect(await targetOf(job.data.targetId)).toMatchObject({ state: 'SUCCEEDED', attempts: 1, operationId });
  });

  it("runs a step's reads and writes on the bare-driver path, none through Prisma's interactive transactions", async () => {
    // Prisma costs a round trip and a write per statement, and the claim holds the tenant's lock for as long as its
    // transaction takes (the campaign bench's claims were serialised at ~74/s).
    const fromRunner = () => /campaign-runner\.ts|follow\.ts/.test(new Error().stack ?? '');
    const calls = { prisma: 0, sql: 0 };
    const spies = (['withTenant', 'withTenantSql', 'querySql'] as const).map((method) => {
      const original = h.db[method].bind(h.db) as (...args: unknown[]) => unknown;
      return jest.spyOn(h.db, method).mockImplementation(((...args: unknown[]) => {
        if (fromRunner()) calls[method === 'withTenant' ? 'prisma' : 'sql'] += 1;
        return original(...args);
      }) as never);
    });
    try {
      const job = fakeJob(await campaignOfOne('bare'));
      await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
      const { operationId } = await targetOf(job.data.targetId);
      await approve(operationId!);
      await expect(sut.step(job, 'token')).resolves.toEqual({ targetId: job.data.targetId, state: 'SUCCEEDED' });
      // load + claim, one follow read; then load, the row read, the end.
      expect(calls.prisma).toBe(0);
      expect(calls.sql).toBeGreaterThanOrEqual(5);
      expect(await targetOf(job.data.targetId)).toMatchObject({
        state: 'SUCCEEDED',
        attempts: 1,
        operationId,
        answer: { state: 'approved', responseCode: '000' },
      });
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('dispatches a PENDING operation this job never dispatched at once (the worker died between claim and dispatch)', async () => {
    const first = fakeJob(await campaignOfOne('claimed'));
    await expect(sut.step(first, 'token')).rejects.toBeInstanceOf(DelayedError);
    const { operationId } = await targetOf(first.data.targetId);
    // A new job for the same step, without the record (as the flow re-adds it): the fresh PENDING row is not assumed held.
    const again = fakeJob({ tenantId, campaignId: first.data.campaignId, targetId: first.data.targetId });
    await expect(sut.step(again, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(executes().map((c) => (c as { operationId: string }).operationId)).toEqual([operationId, operationId]);
    expect(again.data.dispatchedOperationId).toBe(operationId);
  });

  it("fails the PENDING operation as never sent when the terminal's queue did not take it, and retries the target", async () => {
    reply = { ok: false, code: 'TERMINAL_BUSY', message: "the terminal's command queue is full" };
    const job = fakeJob(await campaignOfOne('busy'));
    await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    const target = await targetOf(job.data.targetId);
    expect(target).toMatchObject({ state: 'RETRYING', attempts: 1, lastError: 'TERMINAL_BUSY' });
    expect(await operationOf(target.operationId!)).toMatchObject({
      state: 'FAILED',
      stateReason: "not sent: TERMINAL_BUSY: the terminal's command queue is full",
      error: { code: 'TERMINAL_BUSY' },
    });
    expect(executes()).toHaveLength(1);
  });

  it.each([
    { how: 'the recovery sweep failed it as never sent (NEVER_SENT)', code: 'NEVER_SENT' },
    { how: 'the dispatch was answered INTERNAL: the command bus unavailable', code: 'INTERNAL' },
    { how: 'the dispatch threw (INTERNAL)', code: 'INTERNAL' },
  ] as const)('retries a target whose operation provably never reached the terminal ($how): a new operation on the next attempt', async ({ how, code }) => {
    // Until 2026-12-07 such a target ended FAILED for good (a failure of its wave: a canary's paused the campaign).
    if (how.includes('answered')) reply = { ok: false, code: 'INTERNAL', message: 'command bus unavailable: Connection is closed.' };
    if (how.includes('threw')) thrown = new Error('Connection is closed.');
    const job = fakeJob(await campaignOfOne(`never-sent-${how}`));
    await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    const { operationId: first } = await targetOf(job.data.targetId);
    if (code === 'NEVER_SENT') {
      // Queued, then its connector died before claiming it: the recovery sweep fails the PENDING row, and the step's next run sees it.
      await h.db.withTenant(tenantId, (tx) => failNeverSent(tx, first!, new Date(), 'never sent: no executor claimed or queued it within 30 s'));
      await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    }
    expect(await operationOf(first!)).toMatchObject({ state: 'FAILED', error: { code } });
    expect(await targetOf(job.data.targetId)).toMatchObject({ state: 'RETRYING', attempts: 1, operationId: first, lastError: code });

    // The retry is due and the bus is back: the next attempt creates and dispatches a new operation.
    reply = { ok: true, result: { queued: true } };
    thrown = undefined;
    await h.owner.campaignTarget.update({ where: { id: job.data.targetId }, data: { nextAttemptAt: new Date(Date.now() - 1_000) } });
    await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    const next = await targetOf(job.data.targetId);
    expect(next).toMatchObject({ state: 'RUNNING', attempts: 2 });
    expect(next.operationId).not.toBe(first);
    expect(await operationOf(next.operationId!)).toMatchObject({ state: 'PENDING', idempotencyKey: `campaign:${job.data.targetId}:2` });
    expect(executes().map((c) => (c as { operationId: string }).operationId)).toEqual([first, next.operationId]);
  });

  it.each(['paused', 'canceled'] as const)("a campaign %s between the step's read and its claim: the claim creates and sends nothing", async (what) => {
    // Until 2026-12-07 the claim did not look at the campaign again: a pause in between still had the command
    // created and sent; a cancel (its open targets skipped) left a PENDING operation that no target pointed to.
    const job = fakeJob(await campaignOfOne(`claim-race-${what}`));
    const { terminalId, campaignId } = await targetOf(job.data.targetId);
    const operator = () =>
      h.db.withTenant(tenantId, async (tx) => {
        await transitionCampaign(tx, { campaignId, from: ['RUNNING'], to: what === 'paused' ? 'PAUSED' : 'CANCELED', pauseReason: 'operator' });
        if (what === 'canceled') await skipOpenTargets(tx, campaignId, 'campaign canceled');
      });
    // The step's read runs as ever (the campaign RUNNING); the operator's move commits just before the claim's transaction.
    const withTenantSql = h.db.withTenantSql.bind(h.db) as (...args: unknown[]) => Promise<unknown>;
    jest
      .spyOn(h.db, 'withTenantSql')
      .mockImplementationOnce(((...args: unknown[]) => withTenantSql(...args)) as never)
      .mockImplementationOnce((async (...args: unknown[]) => {
        await operator();
        return withTenantSql(...args);
      }) as never);

    if (what === 'paused') {
      // Parked until the resume, the target untouched.
      await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
      expect(job.delays).toBe(1);
      expect(await targetOf(job.data.targetId)).toMatchObject({ state: 'PENDING', attempts: 0, operationId: null });
    } else {
      await expect(sut.step(job, 'token')).resolves.toEqual({ targetId: job.data.targetId, state: 'SKIPPED' });
      expect(await targetOf(job.data.targetId)).toMatchObject({ state: 'SKIPPED', attempts: 0, operationId: null, reason: 'campaign canceled' });
    }
    expect(await h.owner.terminalOperation.count({ where: { terminalId } })).toBe(0);
    expect(executes()).toEqual([]);
  });

  /** A payment of the terminal (its outcome not stored) in `state`, as a dead or a live executor leaves it. */
  async function paymentIn(terminalId: string, storeId: string, state: 'SENT' | 'IN_PROGRESS' | 'UNKNOWN', key: string): Promise<string> {
    const { row } = await h.db.withTenant(tenantId, (tx) =>
      insertOperation(tx, { tenantId, terminalId, storeId, type: 'purchase', amount: 100, currency: 'RUB', idempotencyKey: key, requestHash: 'h' }),
    );
    await h.owner.terminalOperation.update({ where: { id: row.id }, data: { state, protocolRefs: { df01: '000001' } } });
    return row.id;
  }

  it('does not start a target whose terminal has an UNKNOWN operation: retried later with TERMINAL_RECOVERING, nothing created or sent', async () => {
    const job = fakeJob(await campaignOfOne('in-doubt-UNKNOWN'));
    const { terminalId, storeId } = await targetOf(job.data.targetId);
    const unknown = await paymentIn(terminalId, storeId, 'UNKNOWN', 'lost-UNKNOWN');
    await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(await targetOf(job.data.targetId)).toMatchObject({
      state: 'RETRYING',
      operationId: null,
      lastError: 'TERMINAL_RECOVERING',
      reason: expect.stringContaining(`operation ${unknown} of the terminal is unknown`),
    });
    expect(await h.owner.terminalOperation.count({ where: { terminalId } })).toBe(1);
    expect(executes()).toEqual([]);
  });

  it('keeps a target whose terminal recovers retrying with maxAttempts 1: nothing was attempted, so no attempt is spent', async () => {
    // Until 2026-12-07 its 0 attempts counted as 1: FAILED at once, `still unavailable after 1 attempt(s)`, nothing sent.
    const job = fakeJob(await campaignOfOne('in-doubt-max-1', { maxAttempts: 1 }));
    const { terminalId, storeId } = await targetOf(job.data.targetId);
    await paymentIn(terminalId, storeId, 'UNKNOWN', 'lost-max-1');
    await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(await targetOf(job.data.targetId)).toMatchObject({ state: 'RETRYING', attempts: 0, operationId: null, lastError: 'TERMINAL_RECOVERING' });
    // Its retry is due and the terminal still recovers: retrying again, still no attempt.
    await h.owner.campaignTarget.update({ where: { id: job.data.targetId }, data: { nextAttemptAt: new Date(Date.now() - 1_000) } });
    await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(await targetOf(job.data.targetId)).toMatchObject({ state: 'RETRYING', attempts: 0, operationId: null, lastError: 'TERMINAL_RECOVERING' });
    expect(await h.owner.terminalOperation.count({ where: { terminalId } })).toBe(1);
    expect(executes()).toEqual([]);
  });

  it.each([
    { how: 'not started before the deadline', recovering: false },
    { how: 'its terminal still recovering at the deadline', recovering: true },
  ])('judges the wave of a target failed at the deadline ($how): one failure past the threshold pauses the campaign', async ({ how, recovering }) => {
    // Until 2026-12-07 these two failures were not judged ("checked after every failure"): the wave ran on.
    const deadline = recovering ? new Date(Date.now() + 30_000) : new Date(Date.now() - 1_000);
    const job = fakeJob(await campaignOfOne(`deadline-judged-${how}`, { retryDelaySeconds: 60 }, deadline));
    const { terminalId, storeId, campaignId } = await targetOf(job.data.targetId);
    if (recovering) await paymentIn(terminalId, storeId, 'UNKNOWN', `lost-at-deadline-${how}`);
    await expect(sut.step(job, 'token')).resolves.toEqual({ targetId: job.data.targetId, state: 'FAILED' });
    expect(await targetOf(job.data.targetId)).toMatchObject({
      state: 'FAILED',
      attempts: 0,
      lastError: recovering ? 'TERMINAL_RECOVERING' : 'DEADLINE_PASSED',
      reason: recovering
        ? expect.stringContaining('TERMINAL_RECOVERING: still unavailable at the deadline')
        : expect.stringContaining('not started before the deadline'),
    });
    expect(await h.owner.campaignWave.findFirstOrThrow({ where: { campaignId } })).toMatchObject({ state: 'HALTED' });
    expect(await h.owner.campaign.findUniqueOrThrow({ where: { id: campaignId } })).toMatchObject({ state: 'PAUSED', pauseReason: 'failure_rate' });
    expect(executes()).toEqual([]);
  });

  it.each(['SENT', 'IN_PROGRESS'] as const)(
    "queues a target behind an operation of its terminal that is %s (a payment is never interrupted; the executor's claim refuses the step's command if that one is in doubt)",
    async (state) => {
      const job = fakeJob(await campaignOfOne(`behind-${state}`));
      const { terminalId, storeId } = await targetOf(job.data.targetId);
      await paymentIn(terminalId, storeId, state, `live-${state}`);
      await expect(sut.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
      const { operationId, state: targetState } = await targetOf(job.data.targetId);
      expect(targetState).toBe('RUNNING');
      expect(await operationOf(operationId!)).toMatchObject({ terminalId, state: 'PENDING' });
      expect(executes()).toEqual([{ kind: 'operation.execute', tenantId, terminalId, operationId, replyWhen: 'queued', command: { type: 'load_keys' } }]);
    },
  );
  it('leaves an outage on the last attempt to the processor to defer, also one while it handles another error, and fails the target after', async () => {
    // What deferOnDatabaseOutage recognises (isDatabaseUnavailable): the job goes back to the delayed set, no attempt spent.
    const outage = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const bug = new Error('bus refused the command');
    const job = fakeJob(await campaignOfOne('last-attempt-outage'), STEP_ATTEMPTS - 1);
    const withTenantSql = jest.spyOn(h.db, 'withTenantSql');
    try {
      withTenantSql.mockRejectedValueOnce(outage);
      await expect(sut.step(job, 'token')).rejects.toBe(outage);
      // The step's read fails (a bug), then the read that would end the target meets an outage: the outage is thrown.
      withTenantSql.mockRejectedValueOnce(bug).mockRejectedValueOnce(outage);
      await expect(sut.step(job, 'token')).rejects.toBe(outage);
      expect(await targetOf(job.data.targetId)).toMatchObject({ state: 'PENDING', lastError: null });
      // Deferred, it comes back on its last attempt: the same error ends the target.
      withTenantSql.mockRejectedValueOnce(bug);
      await expect(sut.step(job, 'token')).resolves.toEqual({ targetId: job.data.targetId, state: 'FAILED' });
    } finally {
      withTenantSql.mockRestore();
    }
    expect(await targetOf(job.data.targetId)).toMatchObject({
      state: 'FAILED',
      lastError: STEP_FAILED,
      reason: `step failed after ${STEP_ATTEMPTS} attempts: ${bug.message}`,
    });
    expect(executes()).toEqual([]);
  });

  it('a step outside its window sleeps until the window opens or the deadline comes, not a minute at a time', async () => {
    // 50,000 steps outside their window each re-ran every minute (maxSleepMs 60 s): ~830 transactions/s for nothing.
    const clock = new Date('2030-01-01T01:30:00Z');
    const runner = new CampaignRunner(h.db, dispatcher, {} as FlowProducer, { ...DEFAULT_TIMING, now: () => clock }, parked, h.logger);
    const window = { maintenanceWindow: { start: '02:00', end: '04:00' } };
    /** How long the step's job was moved to the delayed set for, plus the run's own time (its store is in UTC). */
    const sleepOf = async (data: StepData) => {
      const job = fakeJob(data);
      const before = Date.now();
      await expect(runner.step(job, 'token')).rejects.toBeInstanceOf(DelayedError);
      return { job, ms: job.until - before };
    };

    // 01:30, the window opens at 02:00: one sleep of 30 minutes.
    const untilWindow = await sleepOf(await campaignOfOne('sleep-window', window));
    expect(untilWindow.ms).toBeGreaterThanOrEqual(30 * 60_000);
    expect(untilWindow.ms).toBeLessThan(30 * 60_000 + 5_000);
    // A deadline at 01:40 comes first: the step wakes then, and fails (not when the window opens).
    const untilDeadline = await sleepOf(await campaignOfOne('sleep-deadline', window, new Date('2030-01-01T01:40:00Z')));
    expect(untilDeadline.ms).toBeGreaterThanOrEqual(10 * 60_000);
    expect(untilDeadline.ms).toBeLessThan(10 * 60_000 + 5_000);
    clock.setTime(Date.parse('2030-01-01T01:40:00Z'));
    await runner.step(fakeJob(untilDeadline.job.data), 'token');
    expect((await targetOf(untilDeadline.job.data.targetId)).state).toBe('FAILED');
    // 05:00, the next window is 21 hours away: the safety net wakes it after an hour.
    clock.setTime(Date.parse('2030-01-01T05:00:00Z'));
    const capped = await sleepOf(await campaignOfOne('sleep-capped', window));
    expect(capped.ms).toBeGreaterThanOrEqual(DEFAULT_TIMING.maxSleepMs);
    expect(capped.ms).toBeLessThan(DEFAULT_TIMING.maxSleepMs + 5_000);
    expect(executes()).toEqual([]);
  });
});

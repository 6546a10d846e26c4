import { randomUUID } from 'node:crypto';

import type { FlowJob, FlowProducer, Job } from 'bullmq';
import { DelayedError, WaitingChildrenError } from 'bullmq';

import {
  CAMPAIGN_QUEUE,
  type CampaignJobData,
  type CampaignPolicy,
  campaignJobId,
  isNeverSent,
  isRetryable,
  msUntilWindow,
  nextAttempt,
  stepJobId,
  transitionCampaign,
  transitionTarget,
  transitionWave,
  waveHalts,
  waveJobId,
} from '@payorch/campaigns';
import { type Database, isDatabaseUnavailable, lifecycleColumns, Prisma, type SqlClient, type TransactionClient } from '@payorch/db';
import { KeyedSerialQueue, type TerminalCommandReply } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import {
  commandCopyOf,
  describeInDoubt,
  followOperation,
  fromDbType,
  insertOperation,
  isUnheldPending,
  type OperationRow,
  operationById,
  type OperationInDoubt,
  recoveringOperationOf,
  type TerminalCommandDispatcher,
  type TerminalRefusal,
  terminalRefusalOf,
  transitionOperation,
} from '@payorch/operations';
import type { Campaign, CampaignState, CampaignTarget, CampaignTargetState } from '@payorch/prisma';

import type { ParkedSteps, SlotWait } from './parked-steps';

/**
 * When and how often the campaign jobs look again. `now` is the campaign clock (maintenance windows, retry
 * times, deadlines); tests inject a fake one. A job waiting for a window or a retry time sleeps until then (or
 * until its campaign's deadline, if sooner), at most `maxSleepMs` (real time) at once, and then checks again; tests
 * moving a fake clock set it short, so that the moved clock is seen within that time.
 */
export interface CampaignTiming {
  now(): Date;
  /** Re-check interval of a step following its operation's row (and shortest wait before a retry). */
  pollMs: number;
  /**
   * Longest single sleep before a window opens or a retry is due: a safety net only (a store's time zone edited
   * meanwhile). A cancel wakes the sleeping steps (`campaign.wake`), a pause needs no wake (the step checks it when
   * it starts). It used to be 60 s: 50,000 steps waiting for their window each re-ran once a minute, ~830
   * transactions/s for nothing.
   */
  maxSleepMs: number;
  /**
   * Fallback delay of a parked job (plus jitter up to half as much again): a step waiting for a concurrency
   * slot, a step or a halted wave waiting for its paused campaign. They are woken when a slot frees or the
   * campaign is resumed or canceled (ParkedSteps, `campaign.wake`); this delay only runs them when that wake
   * was lost (a worker died before sending it, Redis lost it).
   */
  parkMs: number;
  /**
   * How long a step follows its operation's row in the job (re-reads from 50 ms, doubling to 1 s) before it
   * goes back to the delayed set and follows it from there every `pollMs`: a short command ends within the
   * job, a long one (an application update) holds no worker slot while it runs.
   */
  followMs: number;
}

export const DEFAULT_TIMING: CampaignTiming = { now: () => new Date(), pollMs: 2_000, maxSleepMs: 3_600_000, parkMs: 300_000, followMs: 5_000 };

const OPEN: CampaignTargetState[] = ['PENDING', 'RETRYING'];
const FINAL_OPERATION = new Set(['APPROVED', 'DECLINED', 'FAILED', 'CANCELED']);
/** `lastError` of a target whose step job spent its attempts on errors of its own (not the terminal's): CampaignRunner.outOfAttempts. */
export const STEP_FAILED = 'STEP_FAILED';

type StepResult = { targetId: string; state: string };

/** What a claim that started the target hands to `follow`: its new operation and the terminal's agent (no re-read, no bus lookup). */
type Started = { op: OperationRow; agentId: string | null };

/** A step that must wait: the job goes back to the delayed set for `ms` (real time). */
class Wait {
  constructor(readonly ms: number) {}
}

/** What a parked job waits for: a concurrency slot, or the end of its campaign's pause. */
type Blocker = SlotWait | { kind: 'paused'; campaignId: string };

/** A job that must wait for another job or the operator: it parks until woken (CampaignRunner.park). */
class Park {
  constructor(readonly blocker: Blocker) {}
}

/**
 * The campaign jobs (queue `campaigns`), as a BullMQ flow: `campaign.run` (parent) ← one `campaign.wave` at a
 * time ← that wave's `campaign.step`s. Each handler is resumable from the rows alone: a worker killed at any
 * point re-runs the job, which finds the target's operation (never a second one), the wave's state and the
 * next wave's job id where it left them. A step job does not fail for good with its target open (`outOfAttempts`);
 * a wave or run job that failed is retried by the campaign sweep.
 */
export class CampaignRunner {
  /**
   * Claims of one tenant wait for each other here before they take a pooled connection: the advisory lock
   * serialises them anyway, and a claim blocked on it would hold one of the worker's few connections that
   * every other step (loads, follows, ends) needs.
   */
  private readonly claims = new KeyedSerialQueue();

  constructor(
    private readonly db: Database,
    private readonly dispatcher: TerminalCommandDispatcher,
    private readonly flows: FlowProducer,
    private readonly timing: CampaignTiming,
    private readonly parked: ParkedSteps,
    private readonly logger: Logger,
  ) {}

  /**
   * Parent: adds the first wave and waits for its children; when they (and the waves they added) are done, completes.
   * Every run asks BullMQ whether a child is still pending, not only the first: a run that failed after it marked
   * itself started and before it waited (a Redis error), retried by the sweep or re-run after it stalled, completed the
   * campaign under its running wave.
   */
  async run(job: Job<CampaignJobData['campaign.run']>, token?: string): Promise<unknown> {
    const { tenantId, campaignId } = job.data;
    if (!job.data.started) {
      await this.startWave({ id: job.id!, queue: job.queueQualifiedName }, tenantId, campaignId, 0);
      await job.updateData({ ...job.data, started: true });
    }
    if (token && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
    const done = await this.db.withTenant(tenantId, (tx) => transitionCampaign(tx, { campaignId, from: ['RUNNING'], to: 'COMPLETED', eventData: {} }));
    const row = done?.row ?? (await this.db.withTenant(tenantId, (tx) => tx.campaign.findUnique({ where: { id: campaignId } })));
    return { campaignId, state: row?.state ?? 'GONE' };
  }

  /** Judges a wave once its steps ended: halts (pausing the campaign) or passes and adds the next wave. */
  async wave(job: Job<CampaignJobData['campaign.wave']>, token?: string): Promise<unknown> {
    const { tenantId, campaignId, waveIndex } = job.data;
    const verdict = await this.db.withTenant(tenantId, async (tx) => {
      const campaign = await tx.campaign.findUnique({ where: { id: campaignId } });
      const wave = await tx.campaignWave.findUnique({ where: { campaignId_index: { campaignId, index: waveIndex } } });
      if (!campaign || !wave || campaign.state === 'CANCELED' || campaign.state === 'COMPLETED') return 'stop' as const;
      if (wave.state === 'RUNNING') {
        const tally = await waveTally(tx, campaignId, waveIndex);
        if (waveHalts(wave.canary, { size: wave.size, ...tally }, policyOf(campaign).failureThresholdPercent)) {
          await this.halt(tx, campaign, wave.id, wave.canary, tally);
          return 'wait' as const;
        }
        if (tally.open > 0) return { open: tally.open };
        await transitionWave(tx, { waveId: wave.id, from: ['RUNNING'], to: 'PASSED', eventData: tally });
        return 'next' as const;
      }
      if (wave.state === 'HALTED') {
        if (campaign.state !== 'RUNNING') return 'wait' as const;
        // Resumed by the operator: the halted wave's failures are accepted, not its open targets.
        const tally = await waveTally(tx, campaignId, waveIndex);
        if (tally.open > 0) return { open: tally.open };
        await transitionWave(tx, { waveId: wave.id, from: ['HALTED'], to: 'PASSED', eventData: { ...tally, resumed: true } });
        return 'next' as const;
      }
      return wave.state === 'PASSED' ? ('next' as const) : ('stop' as const);
    });
    if (typeof verdict === 'object') {
      // Targets still open: a wave never passes around them. Their steps may still be pending (the wave run again by
      // the sweep, or before its children were done): it waits for them. Otherwise their step jobs ended without ending
      // them — failed for good (stalled twice, or their last attempt's handling failed too; a failed step does not hold
      // its wave) or lost — and this job fails: the campaign sweep retries or re-adds those steps and retries this job,
      // once per pass, until the targets end. Before, the wave passed with them open and the campaign could complete.
      if (token && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
      throw new Error(
        `wave ${waveIndex} of campaign ${campaignId}: ${verdict.open} target(s) still open with no step pending (failed or lost): left to the campaign sweep`,
      );
    }
    if (verdict === 'wait') return this.park(job, token, tenantId, { kind: 'paused', campaignId });
    if (verdict === 'next') {
      await this.startWave({ id: campaignJobId(campaignId), queue: job.queueQualifiedName }, tenantId, campaignId, waveIndex + 1);
    }
    return { campaignId, waveIndex, verdict };
  }

  /**
   * One terminal: waits for its window / retry time / a concurrency slot, then runs its operation through the terminal
   * queue. An error fails the attempt (BullMQ retries it with its backoff), an outage excepted (the processor defers
   * it, spending no attempt: deferOnDatabaseOutage); an error on the job's last attempt goes to `outOfAttempts`.
   */
  async step(job: Job<CampaignJobData['campaign.step']>, token?: string): Promise<StepResult> {
    try {
      return await this.stepOrWait(job, token);
    } catch (error) {
      // BullMQ retries while attemptsMade + 1 < attempts (Job.shouldRetryJob); attemptsMade counts the failed attempts
      // before this one (a move to the delayed set, as waits and outages make, counts none).
      if (error instanceof DelayedError || isDatabaseUnavailable(error) || job.attemptsMade + 1 < (job.opts.attempts ?? 1)) throw error;
      return this.outOfAttempts(job, token, error);
    }
  }

  private async stepOrWait(job: Job<CampaignJobData['campaign.step']>, token: string | undefined): Promise<StepResult> {
    try {
      return await this.stepOnce(job);
    } catch (error) {
      if (error instanceof Wait) return this.delay(job, token, error.ms);
      if (error instanceof Park) return this.park(job, token, job.data.tenantId, error.blocker);
      throw error;
    }
  }

  /**
   * The step job's last attempt failed, not for an outage: a command-bus or Redis error, a bug. Failed for good, the
   * job would let its wave run (a failed step does not hold it: ignoreDependencyOnFailure) and pass with the target
   * still open: the campaign could complete with it never ended, and a RUNNING one would count against its tenant's
   * and store's limits for good, every later campaign of the tenant running with a slot fewer. So the target decides:
   * - RUNNING: its operation exists and its outcome is the truth (the terminal may have approved it), so the target
   *   is never failed for the job's error. The job follows the operation again in `pollMs` (a DelayedError spends no
   *   attempt), run after run, until the error stops and the operation ends (an UNKNOWN one is waited for as ever);
   * - PENDING or RETRYING: nothing of this attempt was sent. FAILED `STEP_FAILED` with the error, and the wave judged;
   * - ended or gone, or when this fails too: the original error, and the job fails. An outage meanwhile is thrown
   *   instead, for the processor to defer the job: it comes back on its last attempt.
   */
  private async outOfAttempts(job: Job<CampaignJobData['campaign.step']>, token: string | undefined, error: unknown): Promise<StepResult> {
    const { tenantId, targetId } = job.data;
    const attempts = job.attemptsMade + 1;
    const err = error instanceof Error ? error.message : String(error);
    try {
      const found = await this.db.withTenantSql(tenantId, async (tx) => {
        const target = await readTarget(tx, targetId);
        if (target?.state === 'RUNNING') return { outcome: 'running' as const, target };
        if (target === null || !OPEN.includes(target.state)) return undefined;
        const failed = await this.write(tx, target, OPEN, 'FAILED', { lastError: STEP_FAILED, reason: `step failed after ${attempts} attempts: ${err}` });
        const [campaign] = await tx.$queryRaw<Campaign[]>`SELECT ${CAMPAIGN_COLUMNS} FROM "Campaign" c WHERE c."id" = ${target.campaignId}::uuid`;
        return failed === null || campaign === undefined ? undefined : { outcome: 'failed' as const, target: failed, campaign };
      });
      if (found === undefined) throw error;
      const { target } = found;
      if (found.outcome === 'running') {
        this.logger.warn(
          { jobId: job.id, tenantId, targetId, operationId: target.operationId, attempts, err },
          'campaign step out of attempts: it follows its running operation on',
        );
        return await this.delay(job, token, this.timing.pollMs);
      }
      this.logger.warn({ jobId: job.id, tenantId, targetId, attempts, err }, `campaign step out of attempts: its target failed (${STEP_FAILED})`);
      if (job.data.parked) await this.parked.unpark(tenantId, target.storeId, job.id!);
      await this.judgeWave(found.campaign, target.waveIndex);
      return { targetId, state: target.state };
    } catch (failure) {
      throw failure instanceof DelayedError || isDatabaseUnavailable(failure) ? failure : error;
    }
  }

  /**
   * After a resume or a cancel (`campaign.wake`, added by the gateway): promotes the jobs of the campaign's
   * started waves that may be parked — the waves themselves (a halted one waits for the resume) and the steps
   * of their open or skipped targets (waiting on the pause, or for a slot: a canceled campaign's steps then end
   * at once and leave the waiting lists). Read from the rows, not from Redis; a job that is not parked is left
   * alone. One run per such step and resume, instead of one every `pollMs` while the campaign was paused.
   *
   * A resumed campaign whose waves have all passed is completed here (`completeIfEveryWavePassed`): its last wave
   * passed while it was paused, and its run, finding it PAUSED, ended without completing it (nothing else would).
   */
  async wake(job: Job<CampaignJobData['campaign.wake']>): Promise<unknown> {
    const { tenantId, campaignId } = job.data;
    const { completed, jobIds } = await this.db.withTenantSql(tenantId, async (tx) => {
      if (await completeIfEveryWavePassed(tx, campaignId)) return { completed: true, jobIds: [] };
      const waves = await tx.$queryRaw<{ index: number }[]>`
        SELECT w."index" FROM "CampaignWave" w WHERE w."campaignId" = ${campaignId}::uuid AND w."state" IN ('RUNNING', 'HALTED')`;
      const targets = await tx.$queryRaw<{ id: string }[]>`
        SELECT t."id" FROM "CampaignTarget" t
        WHERE t."campaignId" = ${campaignId}::uuid AND t."waveIndex" = ANY(${waves.map((w) => w.index)}::int[])
          AND t."state" IN ('PENDING', 'RETRYING', 'SKIPPED')`;
      return { completed: false, jobIds: [...waves.map((w) => waveJobId(campaignId, w.index)), ...targets.map((t) => stepJobId(t.id))] };
    });
    if (completed) this.logger.info({ tenantId, campaignId }, 'campaign completed on its resume: every wave had passed while it was paused');
    return { campaignId, completed, woken: await this.parked.wake(jobIds) };
  }

  private async stepOnce(job: Job<CampaignJobData['campaign.step']>): Promise<StepResult> {
    const { tenantId, targetId } = job.data;
    // The step's reads and writes run on the bare-driver path (Database.withTenantSql: prepared statements, BEGIN and
    // the tenant scope sent with the first statement); Prisma's interactive transactions cost a round trip and a write
    // per statement, and the claim below holds the tenant's lock for as long as its transaction takes.
    const loaded = await this.db.withTenantSql(tenantId, async (tx) => {
      const target = await readTarget(tx, targetId);
      if (!target) return undefined;
      const [campaign] = await tx.$queryRaw<Campaign[]>`SELECT ${CAMPAIGN_COLUMNS} FROM "Campaign" c WHERE c."id" = ${target.campaignId}::uuid`;
      if (!campaign) throw new Error(`campaign ${target.campaignId} of target ${targetId} not found`);
      const [store] = await tx.$queryRaw<{ timeZone: string }[]>`SELECT s."timeZone" FROM "Store" s WHERE s."id" = ${target.storeId}::uuid`;
      // What the claim checks about the terminal, read here (same transaction) when a claim may follow, so
      // that the claim's tenant-serialised transaction does not have to.
      const terminal = OPEN.includes(target.state) && campaign.state === 'RUNNING' ? await terminalCheck(tx, target.terminalId) : undefined;
      return { target, campaign, timeZone: store?.timeZone ?? 'UTC', terminal };
    });
    if (!loaded) return { targetId, state: 'GONE' };
    const { target, campaign, timeZone, terminal } = loaded;
    // Parked for a slot before: off the waiting lists now (it takes a slot, parks again, or needs none any more).
    if (job.data.parked) await this.parked.unpark(tenantId, target.storeId, job.id!);
    const policy = policyOf(campaign);
    if (target.state === 'RUNNING') return this.follow(job, campaign, target);
    if (!OPEN.includes(target.state)) return { targetId, state: target.state };
    // An open target of an ended campaign (read just before a cancel skipped it, or one a campaign completed around
    // before waves stopped passing around open targets, its step added again or retried by the campaign sweep):
    // skipped, never sent, no attempt counted.
    if (campaign.state === 'CANCELED' || campaign.state === 'COMPLETED') {
      return this.end(tenantId, target, OPEN, 'SKIPPED', { reason: `campaign ${campaign.state.toLowerCase()}` });
    }
    if (campaign.state === 'PAUSED') throw new Park({ kind: 'paused', campaignId: campaign.id });
    const now = this.timing.now();
    if (campaign.deadline !== null && now.getTime() >= campaign.deadline.getTime()) {
      const why = target.lastError ? `${target.lastError}: still unavailable at the deadline` : 'not started before the deadline';
      const failed = await this.end(tenantId, target, OPEN, 'FAILED', {
        reason: `${why} (${campaign.deadline.toISOString()})`,
        lastError: target.lastError ?? 'DEADLINE_PASSED',
      });
      // A failure like any other: the canary, or a wave past the threshold, halts now (this one was not judged before 2026-12-07).
      if (failed.state === 'FAILED') await this.judgeWave(campaign, target.waveIndex);
      return failed;
    }
    const untilWindow = msUntilWindow(now, timeZone, policy.maintenanceWindow);
    if (untilWindow > 0) throw this.sleep(now, campaign.deadline, untilWindow);
    if (target.state === 'RETRYING' && target.nextAttemptAt !== null && target.nextAttemptAt.getTime() > now.getTime()) {
      throw this.sleep(now, campaign.deadline, target.nextAttemptAt.getTime() - now.getTime());
    }
    // `terminal` was read: the target is open and the campaign running.
    const claimed = await this.claim(campaign, target, policy, now, terminal!);
    if ('busy' in claimed) throw new Park(claimed.busy);
    if ('campaign' in claimed) {
      // Paused or ended after the read above (found under the claim's lock): nothing was created.
      if (claimed.campaign === 'PAUSED') throw new Park({ kind: 'paused', campaignId: campaign.id });
      if (claimed.campaign === 'GONE') return { targetId, state: 'GONE' };
      return this.end(tenantId, target, OPEN, 'SKIPPED', { reason: `campaign ${claimed.campaign.toLowerCase()}` });
    }
    if (claimed.target.state === 'RETRYING') throw this.untilRetry(claimed.target);
    // TERMINAL_RECOVERING up to the deadline: a failure of the wave like any other (not judged before 2026-12-07).
    if (claimed.target.state === 'FAILED') await this.judgeWave(campaign, claimed.target.waveIndex);
    if (claimed.target.state !== 'RUNNING') return { targetId, state: claimed.target.state };
    return this.follow(job, campaign, claimed.target, claimed.started);
  }

  /**
   * Starts the target unless its terminal (read by the step, `terminalCheck`) forbids it: gone, disabled or its
   * agent revoked → skipped; an UNKNOWN operation (`recoveringOperationOf`) → retried later (TERMINAL_RECOVERING: the
   * terminal recovers it first; a SENT / IN_PROGRESS one is normally live, and the step queues behind it — the
   * executor's claim refuses it, never sent, if that one is in doubt). Then, in one
   * transaction serialised per tenant (advisory lock, held to the commit, and `claims` in this process): reads the
   * campaign again, locked FOR SHARE to the commit, and gives up unless it is still RUNNING (`campaign`: a pause or a
   * cancel committed after the step's read); checks the concurrency limits; moves the target to RUNNING with the id of
   * its operation to be (a compare-and-set from PENDING / RETRYING), and only then creates that operation (PENDING,
   * idempotency key per attempt). At a limit: `busy` says which one the step waits for (the tenant's first).
   *
   * Until 2026-12-07 the campaign was read only in the step's own read, before this transaction, and the operation was
   * inserted before the target's compare-and-set: a pause committed in between still had the step's command created
   * and sent (an update_app reached terminals after the operator paused), and a cancel in between (its targets
   * skipped) left a PENDING operation no target pointed to (`operation.created` for a canceled campaign, an operation
   * in flight until the recovery sweep failed it). The lock holds a pause or cancel until the claim committed (their
   * update of the campaign waits for it), so what the claim saw stays true until then; a lost race writes nothing.
   */
  private async claim(
    campaign: Campaign,
    target: CampaignTarget,
    policy: CampaignPolicy,
    now: Date,
    terminal: TerminalCheck,
  ): Promise<{ target: CampaignTarget; started?: Started } | { busy: SlotWait } | { campaign: Exclude<CampaignState, 'RUNNING'> | 'GONE' }> {
    const tenantId = campaign.tenantId;
    if (terminal.refusal !== null) {
      const why = terminal.refusal;
      return { target: (await this.db.withTenantSql(tenantId, (tx) => this.write(tx, target, OPEN, 'SKIPPED', { reason: why, lastError: why }))) ?? target };
    }
    if (terminal.inDoubt !== null) {
      const detail = describeInDoubt(terminal.inDoubt);
      return {
        target: await this.db.withTenantSql(tenantId, (tx) => this.retryOrFail(tx, campaign, target, OPEN, policy, now, 'TERMINAL_RECOVERING', detail)),
      };
    }
    return this.claims.run(tenantId, () =>
      this.db.withTenantSql(tenantId, async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`campaigns:${tenantId}`}, 0))`;
        const [current] = await tx.$queryRaw<{ state: CampaignState }[]>`
          SELECT c."state"::text AS "state" FROM "Campaign" c WHERE c."id" = ${campaign.id}::uuid FOR SHARE`;
        if (current === undefined) return { campaign: 'GONE' as const };
        if (current.state !== 'RUNNING') return { campaign: current.state };
        const counts = await runningCounts(tx, target.storeId);
        if (counts.tenant >= policy.maxConcurrentPerTenant) return { busy: { kind: 'tenant', limit: policy.maxConcurrentPerTenant } };
        if (counts.store >= policy.maxConcurrentPerStore) return { busy: { kind: 'store', storeId: target.storeId, limit: policy.maxConcurrentPerStore } };
        // The target first: one no longer open (ended meanwhile) gets no operation.
        const operationId = randomUUID();
        const running = await this.write(tx, target, OPEN, 'RUNNING', { operationId, nextAttemptAt: null }, true);
        if (running === null) return { target: await mustReadTarget(tx, target.id) };
        const { row } = await insertOperation(tx, {
          id: operationId,
          tenantId,
          terminalId: target.terminalId,
          storeId: target.storeId,
          type: fromDbType(campaign.operationType),
          idempotencyKey: `campaign:${target.id}:${running.attempts}`,
          requestHash: `campaign:${campaign.id}`,
        });
        return { target: running, started: { op: row, agentId: terminal.agentId } };
      }),
    );
  }

  /**
   * The target's operation to its end. Dispatched with `replyWhen: 'queued'` (issue 15: nothing holds
   * `operation.execute` on the bus while the terminal works): the reply only says that the terminal's queue
   * took it; the outcome is read from the operation's row, PostgreSQL being the truth, first within the job
   * (`followMs`), then by running the step again every `pollMs`. A connector that dies mid-run therefore
   * costs no bus deadline: recovery ends the operation and the row ends the step.
   *
   * A PENDING operation is dispatched again only when no connector can hold it: never dispatched by this job
   * (`dispatchedOperationId`, written before the dispatch: the worker died between the claim and the
   * dispatch), or PENDING and untouched for UNHELD_PENDING_MS (its connector died before running it). A held
   * one waits in its terminal's queue, and a second dispatch could be refused TERMINAL_BUSY and fail it under
   * the queued copy. Dispatching twice is safe anyway: the executor's claim runs an operation once.
   * Once the campaign is CANCELED or COMPLETED, a PENDING operation is never dispatched (again): a cancel lets the
   * commands on their terminals finish and sends nothing more. It is waited for like a SENT one: a connector holding it
   * runs it, and one nobody holds is failed as never sent by the recovery sweep (RECOVERY_PENDING_AFTER_MS); that
   * ends the target, which frees its slot. (The step of an ended campaign's RUNNING target follows on after the
   * cancel, or again once the campaign sweep retried or added it again: its job failed for good, or was lost.)
   * A dispatch the queue did not take means nothing was sent (the row is PENDING until the claim): the
   * operation is failed with the refusal, and the target retried or failed by its code — retried for a refusal
   * (offline, busy, timeout) and for a failure that proves nothing was sent (NEVER_SENT_CODES: the command bus
   * unavailable, INTERNAL; the recovery sweep's or the reconnected connector's NEVER_SENT). An operation still
   * SENT / IN_PROGRESS / UNKNOWN is waited for (recovery resolves a lost outcome).
   */
  private async follow(job: Job<CampaignJobData['campaign.step']>, campaign: Campaign, target: CampaignTarget, started?: Started): Promise<StepResult> {
    const tenantId = campaign.tenantId;
    let op = started?.op ?? (await this.operation(tenantId, target.operationId!));
    if (op.state === 'PENDING') {
      const ended = campaign.state === 'CANCELED' || campaign.state === 'COMPLETED';
      if (ended || (job.data.dispatchedOperationId === op.id && !isUnheldPending(op))) throw new Wait(this.timing.pollMs);
      // Off the waiting lists since its run began (`parked` cleared: later runs need not check them again).
      await job.updateData({ ...job.data, dispatchedOperationId: op.id, parked: undefined });
      let reply: TerminalCommandReply;
      // With the command as stored: the connector's executor checks it at its claim instead of reading the row first.
      const command = commandCopyOf(op);
      try {
        reply = await this.dispatcher.dispatch(
          {
            kind: 'operation.execute',
            tenantId,
            terminalId: target.terminalId,
            operationId: op.id,
            replyWhen: 'queued',
            ...(command === undefined ? {} : { command }),
          },
          started && { agentId: started.agentId },
        );
      } catch (error) {
        reply = { ok: false, code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
      }
      if (!reply.ok) {
        // Not taken by the terminal's queue: nothing was sent while the row is PENDING (the claim comes first).
        const reason = `not sent: ${reply.code}: ${reply.message}`;
        await this.db.withTenant(tenantId, (tx) =>
          transitionOperation(tx, {
            operationId: op.id,
            from: ['PENDING'],
            to: 'FAILED',
            set: { stateReason: reason, error: { code: reply.ok ? null : reply.code }, completedAt: new Date() },
            step: { kind: 'transition', data: { reason }, event: 'operation.completed' },
          }),
        );
      }
    }
    if (!FINAL_OPERATION.has(op.state)) {
      // First re-read after 25 ms (a short command ends within tens of ms), then less and less often.
      const followed = await followOperation(this.db, { tenantId, operationId: op.id }, { deadlineMs: this.timing.followMs, intervalMs: 25 });
      if (!FINAL_OPERATION.has(followed.state)) throw new Wait(this.timing.pollMs);
      op = followed.row ?? (await this.operation(tenantId, op.id));
    }
    // Each way out of RUNNING below frees a slot of the tenant and of the store: `parked.release` wakes their waiters.
    const answer = answerOf(op);
    if (op.state === 'APPROVED') {
      const result = await this.end(tenantId, target, ['RUNNING'], 'SUCCEEDED', { answer, reason: null, lastError: null });
      await this.parked.release(tenantId, target.storeId);
      return result;
    }
    const code = (op.error as { code?: string | null } | null)?.code ?? null;
    // Nothing of it reached the terminal (NEVER_SENT_CODES): another attempt, as for a terminal that was offline. Not for
    // an ended campaign, which starts no attempt: the target ends FAILED with the code.
    const ended = campaign.state === 'CANCELED' || campaign.state === 'COMPLETED';
    if (isRetryable(code) && !(ended && isNeverSent(code))) {
      const policy = policyOf(campaign);
      const now = this.timing.now();
      const written = await this.db.withTenantSql(tenantId, (tx) =>
        this.retryOrFail(tx, campaign, target, ['RUNNING'], policy, now, code!, op.stateReason ?? code!, answer),
      );
      await this.parked.release(tenantId, target.storeId);
      if (written.state === 'RETRYING') throw this.untilRetry(written);
      if (written.state === 'FAILED') await this.judgeWave(campaign, target.waveIndex);
      return { targetId: target.id, state: written.state };
    }
    const reason = op.responseMessage ?? op.stateReason ?? `operation ${op.state.toLowerCase()}`;
    const result = await this.end(tenantId, target, ['RUNNING'], 'FAILED', { answer, reason, lastError: code ?? op.responseCode ?? op.state });
    await this.parked.release(tenantId, target.storeId);
    await this.judgeWave(campaign, target.waveIndex);
    return result;
  }

  /**
   * The job's wait of `ms` until a window opens or a retry is due, cut short by the deadline (a step that cannot
   * start before it fails then, not when the window opens) and by `maxSleepMs`.
   */
  private sleep(now: Date, deadline: Date | null, ms: number): Wait {
    const untilDeadline = deadline === null ? Infinity : Math.max(deadline.getTime() - now.getTime(), 1);
    return new Wait(Math.min(ms, untilDeadline, this.timing.maxSleepMs));
  }

  /** The job's wait until a RETRYING target's next attempt (the step runs again then, and checks the clock). */
  private untilRetry(target: CampaignTarget): Wait {
    const due = target.nextAttemptAt?.getTime() ?? 0;
    return new Wait(Math.min(Math.max(due - this.timing.now().getTime(), this.timing.pollMs), this.timing.maxSleepMs));
  }

  /**
   * Another attempt later, or FAILED with the reason once the deadline (or maxAttempts) is reached. `target.attempts`
   * counts the operations created for it: 0 for a terminal recovering before its first attempt, which is retried until
   * the deadline whatever maxAttempts. (Until 2026-12-07 that 0 was counted as 1: with maxAttempts 1 such a target
   * failed at once, `still unavailable after 1 attempt(s)`, nothing ever sent.)
   */
  private async retryOrFail(
    tx: SqlClient,
    campaign: Campaign,
    target: CampaignTarget,
    from: CampaignTargetState[],
    policy: CampaignPolicy,
    now: Date,
    code: string,
    detail: string,
    answer?: Prisma.InputJsonValue | null,
  ): Promise<CampaignTarget> {
    const decision = nextAttempt(now, target.attempts, campaign.deadline, policy, code);
    const written = decision.retry
      ? await this.write(tx, target, from, 'RETRYING', { nextAttemptAt: decision.at, lastError: code, reason: detail, answer })
      : await this.write(tx, target, from, 'FAILED', { lastError: code, reason: decision.reason, answer });
    return written ?? (await mustReadTarget(tx, target.id));
  }

  /** A failure mid-wave: the canary (any failure) or a wave past the threshold halts now, not at the wave's end. */
  private async judgeWave(campaign: Campaign, waveIndex: number | null): Promise<void> {
    if (waveIndex === null) return;
    await this.db.withTenant(campaign.tenantId, async (tx) => {
      const wave = await tx.campaignWave.findUnique({ where: { campaignId_index: { campaignId: campaign.id, index: waveIndex } } });
      if (!wave || wave.state !== 'RUNNING') return;
      const tally = await waveTally(tx, campaign.id, waveIndex);
      if (!waveHalts(wave.canary, { size: wave.size, ...tally }, policyOf(campaign).failureThresholdPercent)) return;
      const current = await tx.campaign.findUniqueOrThrow({ where: { id: campaign.id } });
      await this.halt(tx, current, wave.id, wave.canary, tally);
    });
  }

  private async halt(tx: TransactionClient, campaign: Campaign, waveId: string, canary: boolean, tally: Awaited<ReturnType<typeof waveTally>>): Promise<void> {
    const halted = await transitionWave(tx, { waveId, from: ['RUNNING'], to: 'HALTED', eventData: tally });
    if (halted === null) return;
    await transitionCampaign(tx, {
      campaignId: campaign.id,
      from: ['RUNNING'],
      to: 'PAUSED',
      pauseReason: canary ? 'canary_failed' : 'failure_rate',
      eventData: { wave: halted.row.index, ...tally },
    });
  }

  /** Moves wave `index` to RUNNING and adds its flow (the wave job with one step per open target) under `parent`. */
  private async startWave(parent: { id: string; queue: string }, tenantId: string, campaignId: string, index: number): Promise<void> {
    const targets = await this.db.withTenant(tenantId, async (tx) => {
      const wave = await tx.campaignWave.findUnique({ where: { campaignId_index: { campaignId, index } } });
      if (!wave) return undefined;
      await transitionWave(tx, { waveId: wave.id, from: ['PENDING'], to: 'RUNNING', eventData: {} });
      return tx.campaignTarget.findMany({ where: { campaignId, waveIndex: index }, select: { id: true }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    });
    if (targets === undefined) return;
    await this.flows.add(
      waveFlow(
        parent,
        { tenantId, campaignId, waveIndex: index },
        targets.map((t) => ({ tenantId, campaignId, targetId: t.id })),
      ),
    );
  }

  private async end(
    tenantId: string,
    target: CampaignTarget,
    from: CampaignTargetState[],
    to: CampaignTargetState,
    set: Parameters<CampaignRunner['write']>[4],
  ): Promise<StepResult> {
    const written = await this.db.withTenantSql(tenantId, (tx) => this.write(tx, target, from, to, set));
    return { targetId: target.id, state: written?.state ?? to };
  }

  private async write(
    tx: SqlClient,
    target: CampaignTarget,
    from: CampaignTargetState[],
    to: CampaignTargetState,
    set: { answer?: Prisma.InputJsonValue | null; lastError?: string | null; nextAttemptAt?: Date | null; operationId?: string | null; reason?: string | null },
    countAttempt = false,
  ): Promise<CampaignTarget | null> {
    const written = await transitionTarget(tx, { targetId: target.id, from, to, set, countAttempt });
    return written?.row ?? null;
  }

  private async operation(tenantId: string, id: string): Promise<OperationRow> {
    const [row] = await this.db.querySql<OperationRow>(tenantId, operationById(id));
    if (row === undefined) throw new Error(`operation ${id} not found`);
    return row;
  }

  private async delay<T>(job: Job, token: string | undefined, ms: number): Promise<T> {
    if (!token) throw new Error(`campaign job ${job.id} must wait but has no lock token`);
    await job.moveToDelayed(Date.now() + Math.max(1, Math.ceil(ms)), token);
    throw new DelayedError();
  }

  /**
   * Parks a job that waits for a slot or for the end of its campaign's pause (issue 20 review: it re-ran every
   * `pollMs`, one transaction each, ~25,000 runs/s for one 50,000-terminal wave behind a limit of 1 or left
   * paused, on the queue every tenant shares). It goes to the delayed set for `parkMs` (the fallback, jittered so
   * that a wave's fallbacks do not all fire at once) and, for a slot, onto the waiting lists (ParkedSteps), and
   * is woken by the step that frees a slot (`release`) or by the campaign's resume or cancel (`wake`).
   *
   * Then it looks once more: a slot freed or a resume committed between its check and its park found nothing to
   * wake, so if what blocked it is gone now it promotes itself. Whatever frees it later finds it listed (a
   * release) or delayed (a wake), so no wake is lost in between. A look that fails leaves it to its fallback.
   */
  private async park<T>(job: Job, token: string | undefined, tenantId: string, blocker: Blocker): Promise<T> {
    if (!token) throw new Error(`campaign job ${job.id} must wait but has no lock token`);
    const slot = blocker.kind === 'paused' ? undefined : blocker;
    if (slot !== undefined && !(job.data as CampaignJobData['campaign.step']).parked) await job.updateData({ ...job.data, parked: true });
    await job.moveToDelayed(Date.now() + this.timing.parkMs + Math.floor((Math.random() * this.timing.parkMs) / 2), token);
    // Delayed now: from here on nothing may throw but DelayedError (the job is no longer this worker's).
    if (slot !== undefined) await this.parked.park(tenantId, slot, job.id!);
    if (!(await this.stillBlocked(tenantId, blocker).catch(() => true))) {
      if (slot !== undefined) await this.parked.unlist(tenantId, slot, job.id!);
      await job.promote().catch(() => undefined);
    }
    throw new DelayedError();
  }

  private async stillBlocked(tenantId: string, blocker: Blocker): Promise<boolean> {
    if (blocker.kind === 'paused') {
      const [row] = await this.db.querySql<{ state: string }>(
        tenantId,
        Prisma.sql`SELECT c."state"::text AS "state" FROM "Campaign" c WHERE c."id" = ${blocker.campaignId}::uuid`,
      );
      return row?.state === 'PAUSED';
    }
    const running = await this.db.withTenantSql(tenantId, (tx) => runningCounts(tx, blocker.kind === 'store' ? blocker.storeId : null));
    return (blocker.kind === 'tenant' ? running.tenant : running.store) >= blocker.limit;
  }
}

/**
 * A wave's flow: its `campaign.wave` job under `parent` (the campaign's `campaign.run`) with one `campaign.step` child
 * per entry of `steps`, under the job ids of the business key. The wave's start adds it with every target of the
 * wave; the campaign sweep adds it again with the steps Redis lost (a job that still exists is kept, BullMQ ignoring
 * an add whose id exists, and is attached to the new parent when its own is gone).
 */
export function waveFlow(parent: { id: string; queue: string }, wave: CampaignJobData['campaign.wave'], steps: CampaignJobData['campaign.step'][]): FlowJob {
  return {
    name: 'campaign.wave',
    queueName: CAMPAIGN_QUEUE,
    data: wave,
    // Removed once done, with the `processed` hash of its steps' results (~0.2 KB per terminal otherwise kept: issue 20,
    // Redis flat over a 10,000-terminal campaign). An add repeated after a crash re-creates a finished wave or
    // step; it runs again, finds its rows ended and changes nothing.
    opts: { jobId: waveJobId(wave.campaignId, wave.waveIndex), parent, removeOnComplete: true, removeOnFail: false },
    children: steps.map((data) => ({
      name: 'campaign.step',
      queueName: CAMPAIGN_QUEUE,
      data,
      opts: {
        jobId: stepJobId(data.targetId),
        attempts: 5,
        backoff: { type: 'exponential', delay: 1_000 },
        // A failed step does not hold its wave; its last attempt ends its target or keeps following it (CampaignRunner.outOfAttempts).
        ignoreDependencyOnFailure: true,
        // The step's outcome is its target row; a kept job would cost Redis memory per terminal.
        removeOnComplete: true,
        removeOnFail: false,
      },
    })),
  };
}

/**
 * RUNNING → COMPLETED for a campaign none of whose waves is left to pass (as `CampaignRunner.run` completes it once no
 * wave is pending); false when it is not RUNNING (paused, ended) or a wave is not PASSED. For the resume
 * (`CampaignRunner.wake`) and the campaign sweep: a last wave that passes while its campaign is paused has its run find
 * the campaign PAUSED and end without completing it, and the run never runs again. Until 2026-12-07 nothing completed
 * such a campaign after the resume: it stayed `running` with every target finished, counting against
 * CAMPAIGNS_MAX_PER_TENANT, until BullMQ trimmed the completed run (the sweep then added it again). Waves are never
 * added to a campaign and PASSED is final, so nothing can start after this.
 */
export async function completeIfEveryWavePassed(tx: SqlClient, campaignId: string): Promise<boolean> {
  const [row] = await tx.$queryRaw<{ passed: boolean }[]>`
    SELECT c."state" = 'RUNNING' AND NOT EXISTS (
      SELECT 1 FROM "CampaignWave" w WHERE w."campaignId" = c."id" AND w."state" <> 'PASSED'
    ) AS "passed"
    FROM "Campaign" c WHERE c."id" = ${campaignId}::uuid`;
  if (row?.passed !== true) return false;
  const done = await transitionCampaign(tx, { campaignId, from: ['RUNNING'], to: 'COMPLETED', eventData: {} });
  return done !== null;
}

/** RUNNING targets of the tenant (every campaign; RLS scopes it) and of one store: the two concurrency limits' counts. */
async function runningCounts(tx: SqlClient, storeId: string | null): Promise<{ tenant: number; store: number }> {
  const [counts] = await tx.$queryRaw<{ tenant: bigint; store: bigint }[]>`
    SELECT count(*) AS tenant, count(*) FILTER (WHERE "storeId" = ${storeId}::uuid) AS store
    FROM "CampaignTarget" WHERE "state" = 'RUNNING'`;
  return { tenant: Number(counts!.tenant), store: Number(counts!.store) };
}

/** The policy as stored (validated by the gateway when the campaign was created). */
export function policyOf(campaign: Campaign): CampaignPolicy {
  return campaign.policy as unknown as CampaignPolicy;
}

async function waveTally(tx: TransactionClient, campaignId: string, waveIndex: number) {
  const rows = await tx.campaignTarget.groupBy({ by: ['state'], where: { campaignId, waveIndex }, _count: { _all: true } });
  const count = (state: CampaignTargetState) => rows.find((r) => r.state === state)?._count._all ?? 0;
  return { succeeded: count('SUCCEEDED'), failed: count('FAILED'), skipped: count('SKIPPED'), open: count('PENDING') + count('RETRYING') + count('RUNNING') };
}

/** The terminal's own answer, as the target shows it (no PAN, no secrets: the operation row holds none). */
function answerOf(op: OperationRow): Prisma.InputJsonValue {
  const result = (op.result ?? null) as { data?: Record<string, unknown>; reasonCode?: string | null } | null;
  return {
    operationId: op.id,
    state: op.state.toLowerCase(),
    responseCode: op.responseCode,
    responseMessage: op.responseMessage,
    reasonCode: result?.reasonCode ?? null,
    data: (result?.data ?? null) as Prisma.InputJsonValue,
  } as Prisma.InputJsonValue;
}

/** What a claim needs to know about the terminal: why it cannot run the step (null: it can), its agent, an operation in doubt. */
interface TerminalCheck {
  refusal: 'TERMINAL_GONE' | TerminalRefusal | null;
  agentId: string | null;
  inDoubt: OperationInDoubt | null;
}

async function terminalCheck(tx: SqlClient, terminalId: string): Promise<TerminalCheck> {
  // One statement: the terminal, its agent's status and (its open operations, a partial index) an UNKNOWN operation of it.
  const [terminal] = await tx.$queryRaw<{ agentId: string | null; status: string; agentStatus: string | null; inDoubt: OperationInDoubt | null }[]>`
    SELECT t."agentId", t."status"::text AS "status", a."status"::text AS "agentStatus",
      ${recoveringOperationOf(Prisma.raw('t."id"'))} AS "inDoubt"
    FROM "Terminal" t LEFT JOIN "Agent" a ON a."id" = t."agentId"
    WHERE t."id" = ${terminalId}::uuid`;
  // The gateway's and the settlement's rule (terminalRefusalOf); a terminal deleted since the campaign started is gone.
  const refusal = terminal ? terminalRefusalOf(terminal) : 'TERMINAL_GONE';
  if (refusal !== null) return { refusal, agentId: null, inDoubt: null };
  // The executor's claim refuses too while an operation of the terminal is in doubt (unlessTerminalInDoubt): a stale read here is safe.
  return { refusal: null, agentId: terminal!.agentId, inDoubt: terminal!.inDoubt };
}

const CAMPAIGN_COLUMNS = lifecycleColumns('Campaign', 'c');
const TARGET_COLUMNS = lifecycleColumns('CampaignTarget', 't');

async function readTarget(tx: SqlClient, id: string): Promise<CampaignTarget | null> {
  const [row] = await tx.$queryRaw<CampaignTarget[]>`SELECT ${TARGET_COLUMNS} FROM "CampaignTarget" t WHERE t."id" = ${id}::uuid`;
  return row ?? null;
}

async function mustReadTarget(tx: SqlClient, id: string): Promise<CampaignTarget> {
  const row = await readTarget(tx, id);
  if (row === null) throw new Error(`campaign target ${id} not found`);
  return row;
}

import { ErrorCode, type FlowProducer, type JobSchedulerTemplateOptions, type JobsOptions, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Counter } from 'prom-client';

import { CAMPAIGN_QUEUE, CAMPAIGN_SWEEP_SCHEDULER_ID, type CampaignJobData, campaignJobId, stepJobId, waveJobId } from '@payorch/campaigns';
import type { WorkerConfig } from '@payorch/config';
import { type Database, Prisma } from '@payorch/db';
import { isUuid } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import type { CampaignTargetState, CampaignWaveState } from '@payorch/prisma';

import { completeIfEveryWavePassed, waveFlow } from './campaign-runner';

/** The sweep's job scheduler, as the processor upserts it. */
export function campaignSweepScheduler(config: Pick<WorkerConfig, 'CAMPAIGN_SWEEP_INTERVAL_MS'>) {
  const opts: JobSchedulerTemplateOptions = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } };
  return {
    id: CAMPAIGN_SWEEP_SCHEDULER_ID,
    repeat: { every: config.CAMPAIGN_SWEEP_INTERVAL_MS },
    template: { name: 'campaign.sweep' as const, data: {} as CampaignJobData['campaign.sweep'], opts },
  };
}

/** The options the gateway adds `campaign.run` with (apps/api-gateway campaigns.service.ts `enqueue`). */
const RUN_JOB_OPTIONS: JobsOptions = { removeOnComplete: { count: 1000 }, removeOnFail: false };

/** Campaigns per page of the cross-tenant scan. */
const CAMPAIGN_PAGE = 200;
/** Targets per page of one wave's scan (one read, one pipelined EXISTS round trip); fewer when less of the pass's budget is left. */
const TARGET_PAGE = 1_000;
/** Job ids named in the warning of a sweep that re-added jobs (the rest counted). */
const LOGGED_IDS = 20;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const MAX_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
/** Where the budgeted step checks stopped, under the queue's prefix: lost with the jobs, when the run/wave checks rebuild anyway. */
const CURSOR_KEY = 'campaign-sweep-cursor';
/** Where the budgeted look at the queue's failed set stopped (a rank in it), under the queue's prefix: lost with the jobs. */
const FAILED_CURSOR_KEY = 'campaign-sweep-failed-cursor';
/** The jobs of a campaign's flow, by name, and the kind each is counted as when the sweep removes it. */
const FLOW_KINDS: Readonly<Record<string, RemovedKind>> = { 'campaign.run': 'run', 'campaign.wave': 'wave', 'campaign.step': 'step' };

export type RequeuedKind = 'run' | 'wave' | 'step';
/** The jobs the sweep retries when they failed: the ones a campaign waits for (a failed step ends its target or follows it first: CampaignRunner.outOfAttempts). */
export type RetriedKind = 'run' | 'wave' | 'step';
/** The jobs the sweep removes once their campaign ended: its run (with whatever of its flow is left), its failed waves and steps. */
export type RemovedKind = 'run' | 'wave' | 'step';

export interface CampaignSweepResult {
  /**
   * Campaigns looked at: the open (RUNNING or PAUSED) ones, each one's run and current wave job, and the ended
   * (COMPLETED, CANCELED) ones that still have an unfinished target, that target's step.
   */
  campaigns: number;
  /**
   * Step jobs looked for: the budgeted checks (the unfinished targets of open campaigns' live waves and of ended
   * campaigns), plus every unfinished target of a wave added again whole.
   */
  stepChecks: number;
  /** The budgeted checks went past the last campaign's targets and on from the first campaign's. */
  wrapped: boolean;
  /** Jobs that were gone and were added again, by kind. */
  requeued: Record<RequeuedKind, number>;
  /** Jobs found in the failed set and retried, by kind. */
  retried: Record<RetriedKind, number>;
  /**
   * Jobs of ended (COMPLETED, CANCELED) campaigns removed, by kind: each such campaign's run (removed with its
   * children: its waves and their steps, any left) and the failed waves and steps found in the failed set (one
   * removed with the run counted too).
   */
  removed: Record<RemovedKind, number>;
}

/** The job that drives a campaign on, as its waves' states say; or, once the campaign ended, none. */
type Driver =
  /** A wave started and not passed (RUNNING, or HALTED waiting for the resume): its job, and its unfinished targets' steps. */
  | { kind: 'wave'; index: number; steps: true }
  /** The wave before the first PENDING one passed: its job passes it again and starts the next one. */
  | { kind: 'wave'; index: number; steps: false }
  /**
   * Nothing started yet (the run starts wave 0), or every wave passed (the run completes the campaign; a run already
   * completed, which found the campaign paused, leaves it to the sweep: `completeAfterRun`).
   */
  | { kind: 'run'; started: boolean }
  /**
   * COMPLETED or CANCELED (neither is ever left): nothing drives it on, but an unfinished target of it is ended by its
   * step only (a RUNNING one, on its terminal when the campaign ended, holds a slot of its tenant and store until then).
   */
  | { kind: 'ended' };

/** The unfinished (PENDING, RETRYING, RUNNING) targets whose steps the budgeted checks look for in one campaign. */
type StepScope =
  /** An open campaign: those of its live wave. */
  | { kind: 'wave'; index: number }
  /** An ended campaign: all of them, whatever their state and wave (CampaignRunner.step ends each). */
  | { kind: 'ended' };

/** What a run or wave check finds of a job: gone (Redis lost it), failed (in the queue's failed set), or alive. */
type Found = 'gone' | 'failed' | 'alive';

/** A campaign the sweep looks at: open, or ended with an unfinished target. */
interface SweptCampaign {
  id: string;
  tenantId: string;
}

/** A target whose step job must be alive: an unfinished one of an open campaign's live wave, or of an ended campaign. */
interface UnfinishedTarget {
  id: string;
  state: CampaignTargetState;
  operationId: string | null;
  /** Never null here: only the targets skipped at the campaign's creation have no wave. */
  waveIndex: number;
}

/** A failed job of a campaign's flow, found in the queue's failed set. */
interface FailedFlowJob {
  id: string;
  kind: RemovedKind;
}

/** A place in the order of the budgeted step checks: the campaigns by id, each one's targets to check by id. */
interface Position {
  campaignId: string;
  targetId: string;
}

/** Before every target: where the step checks start when no cursor is kept. */
const START: Position = { campaignId: NIL_UUID, targetId: NIL_UUID };

/** One pass's running state. */
interface Pass {
  result: CampaignSweepResult;
  requeuedIds: string[];
  /** Jobs of ended campaigns removed. */
  removedIds: string[];
  /** Budgeted step checks left. */
  left: number;
  /** The last target whose step a budgeted check looked for. */
  last: Position | undefined;
  /** Jobs retried from the failed set, with the reason they failed. */
  retried: Array<{ jobId: string; failedReason: string }>;
  /** Campaigns whose flow this pass added again whole: their steps were all checked. */
  rebuilt: Set<string>;
  failure: { reason: unknown } | undefined;
}

/**
 * PostgreSQL is the truth; Redis may lose everything (docs/campaigns.md, "Lost jobs"). A campaign is driven by its
 * jobs only: `campaign.run`, the current wave's `campaign.wave`, one `campaign.step` per unfinished target of that
 * wave. Once Redis loses them (a flush, a failover without persistence), a target left RUNNING holds a concurrency
 * slot of its tenant and store for good, its wave never ends and its campaign never advances; a parked step is lost
 * with its fallback delay. Nothing else adds them again: the gateway only adds `campaign.run` at creation.
 *
 * Every CAMPAIGN_SWEEP_INTERVAL_MS (and at each worker start) this reads the open (RUNNING, PAUSED) campaigns across
 * tenants, and the ended (COMPLETED, CANCELED) ones that still have an unfinished (PENDING, RETRYING, RUNNING)
 * target (SECURITY DEFINER payorch_swept_campaigns, keyset pages), and for each, under its tenant's scope, which jobs
 * its rows say must exist; it looks for them by their job ids (EXISTS on the job hashes, pipelined a page of targets
 * at a time) and adds what is gone under the SAME job id and the same flow shape as the normal path: a job that still
 * exists is never duplicated (BullMQ ignores an add whose id exists, and attaches an existing child to the re-added
 * parent whose own is gone). Only enqueues; the rows stay the runner's to write, with one exception: a resumed campaign
 * whose waves all passed while its run had already ended (it found the campaign paused) is completed with the runner's
 * own `completeIfEveryWavePassed` (`completeAfterRun`), since no job of it will run again.
 *
 * An ended campaign needs no run or wave job (nothing drives it on), only a step per unfinished target: its step is
 * all that ends it. A cancel skips the open targets at once and lets the steps on their terminals finish: a RUNNING
 * target ends with its operation. A PENDING or RETRYING one is left where a campaign completed around it (stored
 * before a wave stopped passing around open targets). Its step failed for good or lost, such a target stayed
 * unfinished for good (a RUNNING one holding a slot of its tenant and store: the tenant's later campaigns slowed or
 * stopped), and `removeEnded` never removed the campaign's failed jobs (it waits for that target). So the budgeted
 * step checks cover every unfinished target of an ended campaign, whatever its state, in the same order (`StepScope`
 * `ended`), and retry or add again their steps as an open campaign's; the step decides by the target's state as ever
 * (CampaignRunner.step): a RUNNING one follows its operation to its end and sends nothing, an open one ends SKIPPED
 * (`campaign completed` / `campaign canceled`: never sent, no attempt counted, so the campaign's counts show it
 * skipped, not executed). A step added again joins its wave and run, themselves added again when gone: they stop at
 * once (CampaignRunner.wave and .run: the campaign ended), and the flow ends by itself.
 *
 * Re-running any of these jobs is harmless by construction (CampaignRunner: resumable from the rows). A step added
 * again for a RUNNING target follows the operation its claim created, never creates a second one; it carries that
 * operation as `dispatchedOperationId`, so that a PENDING operation held in its terminal's queue (behind a payment)
 * is left to the connector holding it and is dispatched again only once nobody has touched it for 15 s
 * (isUnheldPending) — the job that dispatched it is gone and cannot say it did — and never once its campaign ended
 * (CampaignRunner.follow: it waits for the recovery sweep to fail it as never sent).
 *
 * Bounded: a pass looks up 2 jobs per open campaign in one pipelined round trip (its run and its current wave: EXISTS
 * and a ZSCORE on the failed set each) and the run's pending children (SMEMBERS, then the same lookup of those other
 * than the current wave: normally none), at most CAMPAIGNS_MAX_PER_TENANT campaigns per tenant, and at most `stepChecksPerPass` (CAMPAIGN_SWEEP_STEP_CHECKS_PER_PASS) step checks, each a target row
 * read and an EXISTS, TARGET_PAGE at a time. Checking every step of every wave each pass cost up to 50,000 of each
 * per campaign per pass. The step checks go on from where the last pass stopped (a cursor in Redis: campaign id,
 * target id), over the campaigns in id order and their targets to check in id order (an open campaign's unfinished
 * ones of its live wave, an ended one's unfinished ones), and past the last campaign on from the first: a step lost or
 * failed is found within ceil(targets to check of all swept campaigns / budget) passes. A run or wave found gone is
 * rebuilt whole in the pass that finds it, whatever the budget: every unfinished target of its wave checked and the
 * flow added once with every step of it that is gone, as the wave's start adds it (a flush loses the cursor too; the
 * run/wave checks need none). Two passes at once (a worker's start
 * beside the schedule) read the same cursor and check the same steps twice: harmless.
 *
 * Failed jobs: a run or wave job has one attempt, and one that failed (a Redis error adding the next wave, a bug) stays
 * in the failed set, its hash there for EXISTS to find: the campaign stalled for good (a failed wave is a child its run
 * waits for). So the run and wave checks look at the failed set too (ZSCORE, in the same pipelined round trip) and
 * retry a failed run or wave (Job.retry: back to wait; it resumes from the rows), any wave the run still waits for
 * included (`failedChildren`: a wave's job may fail after it started the next one). One that fails again is retried again the next pass: once per interval, each failure
 * logged by the processor and each retry by the sweep. A step's last attempt ends its target or keeps following its
 * operation (CampaignRunner.outOfAttempts), so a failed step is rare (that handling failed too, or BullMQ failed it
 * after two stalls); the budgeted step checks look at the failed set the same way and retry one found there with its
 * target open, and its wave, which does not pass around an open target (CampaignRunner.wave), is failed meanwhile and
 * retried by the wave check.
 *
 * Ended campaigns: a failed run or wave is retried only while its campaign is open, a failed step also while its
 * target is unfinished (above). One whose campaign ended (canceled while a wave or step of it was failed; a run or step
 * failed for good around ended targets) would stay in Redis for good, and a failed wave with it its run, waiting for
 * it. So each pass also reads the queue's failed set (at most `stepChecksPerPass` jobs, on from where the last pass
 * stopped) and removes the flow of each ended campaign found there once no target of it is unfinished any more, its run
 * with its children (`removeEnded`). Counted in `removed`.
 */
export class CampaignSweep {
  constructor(
    private readonly db: Database,
    private readonly queue: Queue,
    private readonly flows: FlowProducer,
    /** Any connection to the queue's Redis: the job hashes and the failed set are looked up by key, the cursor kept beside them. */
    private readonly redis: Redis,
    private readonly logger: Logger,
    /** Step checks per pass (CAMPAIGN_SWEEP_STEP_CHECKS_PER_PASS), shared by every swept campaign. */
    private readonly stepChecksPerPass: number,
    private readonly requeuedTotal?: Counter<'kind' | 'reason'>,
    private readonly removedTotal?: Counter<'kind'>,
  ) {}

  async sweep(): Promise<CampaignSweepResult> {
    const cursor = await this.readCursor();
    const pass: Pass = {
      result: {
        campaigns: 0,
        stepChecks: 0,
        wrapped: false,
        requeued: { run: 0, wave: 0, step: 0 },
        retried: { run: 0, wave: 0, step: 0 },
        removed: { run: 0, wave: 0, step: 0 },
      },
      requeuedIds: [],
      removedIds: [],
      left: this.stepChecksPerPass,
      last: undefined,
      retried: [],
      rebuilt: new Set(),
      failure: undefined,
    };
    // Every open campaign's run and wave; the steps of live waves (and of ended campaigns' unfinished targets) from the
    // cursor on, while the budget lasts. The ids are lowercase UUIDs: their string order is PostgreSQL's uuid order,
    // the order of the keyset pages.
    for await (const row of this.sweptCampaigns()) {
      pass.result.campaigns += 1;
      await this.isolated(pass, row, async () => {
        const scope = await this.ensureFlow(pass, row);
        if (scope === undefined || row.id < cursor.campaignId) return;
        await this.checkSteps(pass, row, scope, row.id === cursor.campaignId ? cursor.targetId : NIL_UUID, MAX_UUID);
      });
    }
    // Budget left: every step after the cursor was checked; on from the first campaign up to the cursor.
    if (pass.left > 0) {
      pass.result.wrapped = true;
      if (cursor.campaignId !== NIL_UUID) await this.checkStepsUpTo(pass, cursor);
    }
    // Out of budget, the next pass goes on after the last step checked; else every step was checked, it starts over.
    await this.writeCursor(pass.left === 0 ? (pass.last ?? cursor) : START);
    // Then the failed jobs, after the open campaigns' were retried: those of campaigns that ended go, with their flow.
    try {
      await this.removeEnded(pass);
    } catch (error) {
      pass.failure ??= { reason: error };
      this.logger.warn({ err: (error as Error).message }, 'campaign sweep could not look for the jobs of ended campaigns');
    }

    const { result, requeuedIds, retried, removedIds } = pass;
    if (requeuedIds.length > 0) {
      this.logger.warn(
        { ...result, jobIds: requeuedIds.slice(0, LOGGED_IDS), more: Math.max(0, requeuedIds.length - LOGGED_IDS) },
        'campaign jobs were lost and were queued again',
      );
    }
    if (retried.length > 0) {
      this.logger.warn({ ...result, jobs: retried.slice(0, LOGGED_IDS), more: Math.max(0, retried.length - LOGGED_IDS) }, 'failed campaign jobs were retried');
    }
    if (removedIds.length > 0) {
      this.logger.info(
        { ...result, jobIds: removedIds.slice(0, LOGGED_IDS), more: Math.max(0, removedIds.length - LOGGED_IDS) },
        'jobs of ended campaigns were removed',
      );
    }
    if (requeuedIds.length === 0 && retried.length === 0 && removedIds.length === 0 && result.campaigns > 0) this.logger.info(result, 'campaign sweep');
    if (pass.failure) throw pass.failure.reason;
    return result;
  }

  /**
   * The campaigns across tenants by id that are open, or ended with an unfinished target: keyset pages over the partial
   * indexes of open campaigns and of unfinished targets (migration 20261207014100_swept_ended_campaigns_with_unfinished_targets).
   */
  private async *sweptCampaigns(): AsyncGenerator<SweptCampaign> {
    let after = NIL_UUID;
    for (;;) {
      const rows = await this.db.prisma.$queryRaw<SweptCampaign[]>`
        SELECT "id", "tenantId" FROM payorch_swept_campaigns(${after}::uuid, ${CAMPAIGN_PAGE}::int)`;
      yield* rows;
      const last = rows.at(-1);
      if (rows.length < CAMPAIGN_PAGE || last === undefined) return;
      after = last.id;
    }
  }

  /**
   * One campaign's checks. Its failure (Redis refusing, a row gone) does not keep the others from their jobs; the job
   * fails at the end (kept in the failed set with its reason), and the next sweep looks again.
   */
  private async isolated(pass: Pass, row: SweptCampaign, check: () => Promise<void>): Promise<void> {
    try {
      await check();
    } catch (error) {
      pass.failure ??= { reason: error };
      this.logger.warn({ tenantId: row.tenantId, campaignId: row.id, err: (error as Error).message }, 'campaign sweep could not check a campaign');
    }
  }

  /**
   * An open campaign's run and current wave: added again when gone, the wave with every step of it that is gone (all
   * its unfinished targets checked, outside the budget); retried when failed, as is any other wave its run still waits
   * for (`failedChildren`). Returns the targets whose steps are left to the budgeted checks: the current wave's, when it
   * and the run are there (alive or failed); an ended campaign's unfinished ones (its run and waves are left alone).
   */
  private async ensureFlow(pass: Pass, { tenantId, id: campaignId }: SweptCampaign): Promise<StepScope | undefined> {
    const driver = await this.driverFor(tenantId, campaignId);
    if (driver === undefined || driver.kind === 'ended') return scopeOf(driver);
    const runId = campaignJobId(campaignId);
    const waveId = driver.kind === 'wave' ? waveJobId(campaignId, driver.index) : undefined;
    const [run, wave] = await this.lookUp([runId, waveId]);
    const failedWaves = run === 'gone' ? [] : await this.failedChildren(runId, waveId);
    // After the gone ones are added again: a failed run retried before its lost wave is back could find no pending
    // child and complete the campaign.
    const retryFailed = async () => {
      for (const id of failedWaves) await this.retry(pass, 'wave', id);
      if (wave === 'failed') await this.retry(pass, 'wave', waveId!);
      if (run === 'failed') await this.retry(pass, 'run', runId);
    };

    if (run !== 'gone' && wave !== 'gone') {
      await retryFailed();
      if (driver.kind === 'run' && driver.started && run === 'alive' && (await this.ranToCompletion(runId))) {
        return this.completeAfterRun(tenantId, campaignId, driver);
      }
      return scopeOf(driver);
    }
    if (driver.kind === 'run') {
      const data: CampaignJobData['campaign.run'] = { tenantId, campaignId, ...(driver.started ? { started: true } : {}) };
      await this.queue.add('campaign.run', data, { jobId: runId, ...RUN_JOB_OPTIONS });
      this.count(pass, 'run', [runId]);
      await retryFailed();
      return undefined;
    }
    // Run or wave gone: the flow is added again whole, with every step of the wave that is gone, as the wave's start
    // adds it (a run or wave added with part of its steps could be released before the rest are added).
    const pending: CampaignJobData['campaign.step'][] = [];
    if (driver.steps) {
      pass.rebuilt.add(campaignId);
      const scope: StepScope = { kind: 'wave', index: driver.index };
      for await (const page of this.unfinishedTargets(tenantId, campaignId, scope, NIL_UUID, MAX_UUID, () => TARGET_PAGE)) {
        pass.result.stepChecks += page.length;
        pending.push(...(await this.lostSteps(tenantId, campaignId, page)));
      }
    }
    await this.addFlow(tenantId, campaignId, driver.index, pending);
    if (run === 'gone') this.count(pass, 'run', [runId]);
    if (wave === 'gone') this.count(pass, 'wave', [waveId!]);
    this.count(
      pass,
      'step',
      pending.map((s) => stepJobId(s.targetId)),
    );
    await retryFailed();
    return undefined;
  }

  /** Whether the job is in the queue's completed set: it ran to its end and never runs again (until BullMQ trims it). */
  private async ranToCompletion(jobId: string): Promise<boolean> {
    return (await this.redis.zscore(this.queue.toKey('completed'), jobId)) !== null;
  }

  /**
   * Every wave passed and the run completed, but the campaign is still open: its last wave passed while it was paused,
   * and the run, finding it PAUSED, ended without completing it. Once resumed (RUNNING) it is completed here, as the run
   * would have (the resume's `campaign.wake` does the same; this is for a wake that was lost). Until 2026-12-07 the sweep
   * took the completed run for a live one and the campaign stayed `running` until BullMQ trimmed that job. Still PAUSED:
   * left as it is (the resume completes it). Returns the steps to check once it completed: its unfinished targets, if any.
   */
  private async completeAfterRun(tenantId: string, campaignId: string, driver: Driver): Promise<StepScope | undefined> {
    if (!(await this.db.withTenantSql(tenantId, (tx) => completeIfEveryWavePassed(tx, campaignId)))) return scopeOf(driver);
    this.logger.warn({ tenantId, campaignId }, 'campaign completed by the sweep: every wave had passed and its run had ended');
    return { kind: 'ended' };
  }

  /** After the wrap: the steps to check of the campaigns up to the cursor's, its own up to its target, while the budget lasts. */
  private async checkStepsUpTo(pass: Pass, cursor: Position): Promise<void> {
    for await (const row of this.sweptCampaigns()) {
      if (pass.left === 0 || row.id > cursor.campaignId) return;
      if (pass.rebuilt.has(row.id)) continue;
      // Its run and wave were looked at earlier in the pass; a loss since is caught where steps are found gone.
      await this.isolated(pass, row, async () => {
        const scope = scopeOf(await this.driverFor(row.tenantId, row.id));
        if (scope === undefined) return;
        await this.checkSteps(pass, row, scope, NIL_UUID, row.id === cursor.campaignId ? cursor.targetId : MAX_UUID);
      });
    }
  }

  /**
   * Budgeted checks of the steps of `scope`'s targets after `after` and up to `upTo`, a page at a time while the budget
   * lasts; the steps a page found gone join their wave, those found failed are retried.
   */
  private async checkSteps(pass: Pass, { tenantId, id: campaignId }: SweptCampaign, scope: StepScope, after: string, upTo: string): Promise<void> {
    const pageSize = () => Math.min(TARGET_PAGE, pass.left);
    for await (const page of this.unfinishedTargets(tenantId, campaignId, scope, after, upTo, pageSize)) {
      pass.left -= page.length;
      pass.result.stepChecks += page.length;
      const found = await this.lookUp(page.map((t) => stepJobId(t.id)));
      const lost = page.filter((_, i) => found[i] === 'gone');
      // A step failed for good with its target open: its last attempt could not end or follow the target
      // (CampaignRunner.outOfAttempts failed too), or BullMQ failed it after it stalled twice without running it.
      const failed = page.filter((_, i) => found[i] === 'failed').map((t) => stepJobId(t.id));
      pass.last = { campaignId, targetId: page.at(-1)!.id };
      if (lost.length === 0 && failed.length === 0) continue;
      if (scope.kind === 'wave') {
        // The run and wave are looked at again first: lost since the campaign's check (a flush during the pass), they
        // are left to the next pass, which adds the flow again whole; steps joined to a re-added wave a page at a time
        // could see it released before the rest are added.
        const [runGone, waveGone] = await this.missing([campaignJobId(campaignId), waveJobId(campaignId, scope.index)]);
        if (runGone || waveGone) return;
      }
      // By wave: one, an open campaign's live wave; an ended campaign's unfinished targets may be in several.
      for (const [waveIndex, targets] of byWave(lost)) {
        // An ended campaign's run and wave, gone, are added again with its steps (counted): nothing else would add
        // them, and nothing judges its wave (CampaignRunner.wave stops at once), so part of its steps may join it.
        const [runGone, waveGone] = scope.kind === 'ended' ? await this.missing([campaignJobId(campaignId), waveJobId(campaignId, waveIndex)]) : [];
        const steps = targets.map((t) => stepData(tenantId, campaignId, t));
        await this.addFlow(tenantId, campaignId, waveIndex, steps);
        if (runGone) this.count(pass, 'run', [campaignJobId(campaignId)]);
        if (waveGone) this.count(pass, 'wave', [waveJobId(campaignId, waveIndex)]);
        this.count(
          pass,
          'step',
          steps.map((s) => stepJobId(s.targetId)),
        );
      }
      // Retried as it is (its attempts spent: the next error goes straight to its last-attempt handling), once per
      // pass that finds it: it resumes from its target's row.
      for (const jobId of failed) await this.retry(pass, 'step', jobId);
    }
  }

  private count(pass: Pass, kind: RequeuedKind, jobIds: string[]): void {
    pass.result.requeued[kind] += jobIds.length;
    pass.requeuedIds.push(...jobIds);
    this.requeuedTotal?.inc({ kind, reason: 'lost' }, jobIds.length);
  }

  /**
   * Retries a job found in the failed set (Job.retry('failed'): back to wait, a failed child back among its parent's
   * pending ones). One that another pass retried meanwhile, or that is gone, is left alone.
   */
  private async retry(pass: Pass, kind: RetriedKind, jobId: string): Promise<void> {
    const job = await this.queue.getJob(jobId);
    if (job === undefined) return;
    const { failedReason } = job;
    try {
      await job.retry('failed');
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === ErrorCode.JobNotInState || code === ErrorCode.JobNotExist) return;
      throw error;
    }
    pass.result.retried[kind] += 1;
    pass.retried.push({ jobId, failedReason });
    this.requeuedTotal?.inc({ kind, reason: 'failed' });
  }

  /**
   * The jobs Redis would otherwise keep for good: a campaign's flow ends by itself (its steps end their targets, its
   * waves pass or stop, its run completes and is kept among the last 1,000 completed), unless one of its jobs failed.
   * A failed wave holds its run (it stays among the run's pending children: the run waits for it, in waiting-children),
   * a failed run or step stays in the failed set (`removeOnFail: false`), and nobody retries them once the campaign is
   * COMPLETED or CANCELED (but the step of an unfinished target: the checks above). So each campaign canceled while a wave or
   * step of it was failed, or whose run or a step failed for good around an ended target, kept its run, that wave and
   * its steps in Redis for good (issue 20: Redis grew with the history of campaigns).
   *
   * The failed set is read here, `stepChecksPerPass` jobs a pass at most, going on where the last pass stopped (a rank
   * in the set, `FAILED_CURSOR_KEY`; back to the start past its end): it holds the jobs failed now, not the history —
   * those of open campaigns are retried above, those of ended ones go here. For each campaign of a failed run, wave or
   * step (its name and data read from its hash), the rows say whether it ended: COMPLETED or CANCELED (final: neither
   * is left again) with no target PENDING, RETRYING or RUNNING (its step must end it: the step checks above retry or
   * add it again). Then its run is removed with
   * its children (Queue.remove with removeChildren: its waves, their steps, failed or parked ones included) and each
   * failed job of it found (an orphan step whose wave already passed and was removed). An open campaign's jobs are
   * never touched: the ids derive from the campaign and its targets, and its rows say it is open. A run or child
   * locked by a worker (a job of it running now) cannot be removed (BullMQ's removeJob answers 0): left, with the
   * campaign's failed jobs, to the next pass. Jobs already gone (Redis flushed) cost nothing: removing them is a no-op.
   */
  private async removeEnded(pass: Pass): Promise<void> {
    const cursorKey = this.queue.toKey(FAILED_CURSOR_KEY);
    const budget = this.stepChecksPerPass;
    const page = (from: number) => this.redis.zrange(this.queue.toKey('failed'), String(from), String(from + budget - 1));
    let offset = Number.parseInt((await this.redis.get(cursorKey)) ?? '', 10);
    if (!Number.isSafeInteger(offset) || offset < 0) offset = 0;
    let ids = await page(offset);
    // Past the end (the set shrank since): from its start, in this pass.
    if (ids.length === 0 && offset > 0) ids = await page((offset = 0));
    let removedFromPage = 0;
    for (const [campaignId, { tenantId, jobs }] of await this.failedFlowJobs(ids)) {
      await this.isolated(pass, { id: campaignId, tenantId }, async () => {
        removedFromPage += await this.removeFlow(pass, tenantId, campaignId, jobs);
      });
    }
    // A full page: the next pass goes on after it (the jobs removed from it no longer count in the ranks); else from the start.
    const next = ids.length < budget ? 0 : offset + ids.length - removedFromPage;
    if (next === 0) await this.redis.del(cursorKey);
    else await this.redis.set(cursorKey, String(next));
  }

  /** The failed runs, waves and steps among `jobIds`, by campaign (their name and data read in one pipelined round trip); other jobs left out. */
  private async failedFlowJobs(jobIds: string[]): Promise<Map<string, { tenantId: string; jobs: FailedFlowJob[] }>> {
    const byCampaign = new Map<string, { tenantId: string; jobs: FailedFlowJob[] }>();
    if (jobIds.length === 0) return byCampaign;
    const pipeline = this.redis.pipeline();
    for (const id of jobIds) pipeline.hmget(this.queue.toKey(id), 'name', 'data');
    const answers = (await pipeline.exec()) ?? [];
    jobIds.forEach((id, i) => {
      const [name, data] = answerOf(answers[i], id) as [string | null, string | null];
      const kind = name === null ? undefined : FLOW_KINDS[name];
      const owner = kind === undefined ? undefined : campaignOf(data);
      if (kind === undefined || owner === undefined) return;
      const entry = byCampaign.get(owner.campaignId) ?? { tenantId: owner.tenantId, jobs: [] };
      entry.jobs.push({ id, kind });
      byCampaign.set(owner.campaignId, entry);
    });
    return byCampaign;
  }

  /**
   * Removes an ended campaign's run with its children, then its failed jobs `failed` (counted once each). Returns how
   * many of `failed` went (they left the failed set); 0 when the campaign has not ended, or a job of its flow is locked.
   */
  private async removeFlow(pass: Pass, tenantId: string, campaignId: string, failed: FailedFlowJob[]): Promise<number> {
    if (!(await this.hasEnded(tenantId, campaignId))) return 0;
    const runId = campaignJobId(campaignId);
    const [run] = await this.lookUp([runId]);
    // 0: the run or a job it waits for is locked by a worker (it runs now); all of it is left to the next pass.
    if ((await this.queue.remove(runId, { removeChildren: true })) !== 1) return 0;
    if (run !== 'gone' && !failed.some((job) => job.id === runId)) this.countRemoved(pass, 'run', runId);
    let gone = 0;
    for (const job of failed) {
      // Removed with the run already (a no-op then), or an orphan: a step failed for good whose wave passed since.
      if (job.id !== runId && (await this.queue.remove(job.id, { removeChildren: true })) !== 1) continue;
      this.countRemoved(pass, job.kind, job.id);
      gone += 1;
    }
    return gone;
  }

  /** COMPLETED or CANCELED (neither is ever left) with no open target: nothing of its flow will run for it again. */
  private async hasEnded(tenantId: string, campaignId: string): Promise<boolean> {
    const [row] = await this.db.querySql<{ state: string; open: boolean }>(
      tenantId,
      Prisma.sql`
        SELECT c."state"::text AS "state", EXISTS (
          SELECT 1 FROM "CampaignTarget" t WHERE t."campaignId" = c."id" AND t."state" IN ('PENDING', 'RETRYING', 'RUNNING')
        ) AS "open"
        FROM "Campaign" c WHERE c."id" = ${campaignId}::uuid`,
    );
    // No row: not this tenant's (the job's data is not trusted to remove anything), or gone with its tenant.
    return row !== undefined && (row.state === 'COMPLETED' || row.state === 'CANCELED') && !row.open;
  }

  private countRemoved(pass: Pass, kind: RemovedKind, jobId: string): void {
    pass.result.removed[kind] += 1;
    pass.removedIds.push(jobId);
    this.removedTotal?.inc({ kind });
  }

  /** Which job drives the open campaign on, from its waves; `ended` once it is COMPLETED or CANCELED (undefined: gone). */
  private async driverFor(tenantId: string, campaignId: string): Promise<Driver | undefined> {
    return this.db.withTenant(tenantId, async (tx) => {
      const campaign = await tx.campaign.findUnique({ where: { id: campaignId }, select: { state: true } });
      if (campaign === null) return undefined;
      if (campaign.state !== 'RUNNING' && campaign.state !== 'PAUSED') return { kind: 'ended' as const };
      return driverOf(await tx.campaignWave.findMany({ where: { campaignId }, select: { index: true, state: true }, orderBy: { index: 'asc' } }));
    });
  }

  /**
   * The campaign's run (started: it waits for its waves) → the wave → `steps`, under the job ids of the normal path.
   * Jobs that exist are kept as they are (no second job); a lost step joins the existing wave, a lost wave the existing
   * run, an existing wave a re-added run.
   */
  private async addFlow(tenantId: string, campaignId: string, waveIndex: number, steps: CampaignJobData['campaign.step'][]): Promise<void> {
    const runId = campaignJobId(campaignId);
    await this.flows.add({
      name: 'campaign.run',
      queueName: CAMPAIGN_QUEUE,
      data: { tenantId, campaignId, started: true } satisfies CampaignJobData['campaign.run'],
      opts: { jobId: runId, ...RUN_JOB_OPTIONS },
      children: [waveFlow({ id: runId, queue: this.queue.qualifiedName }, { tenantId, campaignId, waveIndex }, steps)],
    });
  }

  /**
   * The unfinished targets (PENDING, RETRYING, RUNNING: the step ends each; a RUNNING one holds a concurrency slot
   * until then) of `scope` whose step must be alive, after `after` and up to `upTo`, `pageSize()` at a time (keyset on
   * the id; 0: no more): those of an open campaign's wave, or all of an ended campaign's (the partial index of
   * unfinished targets; its state list is the statement's).
   */
  private async *unfinishedTargets(tenantId: string, campaignId: string, scope: StepScope, after: string, upTo: string, pageSize: () => number) {
    const ofWave = scope.kind === 'wave' ? Prisma.sql`AND t."waveIndex" = ${scope.index}` : Prisma.empty;
    for (let limit = pageSize(); limit > 0; limit = pageSize()) {
      const page = await this.db.querySql<UnfinishedTarget>(
        tenantId,
        Prisma.sql`
          SELECT t."id", t."state", t."operationId", t."waveIndex" FROM "CampaignTarget" t
          WHERE t."campaignId" = ${campaignId}::uuid ${ofWave} AND t."state" IN ('PENDING', 'RETRYING', 'RUNNING')
            AND t."id" > ${after}::uuid AND t."id" <= ${upTo}::uuid
          ORDER BY t."id" LIMIT ${limit}`,
      );
      if (page.length > 0) yield page;
      const last = page.at(-1);
      if (page.length < limit || last === undefined) return;
      after = last.id;
    }
  }

  /** The steps of `targets` whose job is gone, as the wave's start gives them (one pipelined EXISTS round trip). */
  private async lostSteps(tenantId: string, campaignId: string, targets: UnfinishedTarget[]) {
    const gone = await this.missing(targets.map((t) => stepJobId(t.id)));
    return targets.filter((_, i) => gone[i]).map((t) => stepData(tenantId, campaignId, t));
  }

  /** For each job id, whether its job hash is gone (one pipelined round trip). */
  private async missing(jobIds: string[]): Promise<boolean[]> {
    const pipeline = this.redis.pipeline();
    for (const id of jobIds) pipeline.exists(this.queue.toKey(id));
    const answers = (await pipeline.exec()) ?? [];
    return jobIds.map((id, i) => answerOf(answers[i], id) === 0);
  }

  /**
   * The waves other than `except` that the run still waits for and that failed: its pending children (BullMQ keeps a
   * child that failed without ignoreDependencyOnFailure in its parent's `dependencies` set, and the parent waits for it
   * for good) found in the failed set. A wave's job can fail after it passed its wave and started the next one (a Redis
   * error); by the time the sweep looks, later waves may have passed too, so the run's own list is read rather than
   * guessed from the rows: usually one member (the current wave), two round trips.
   */
  private async failedChildren(runId: string, except: string | undefined): Promise<string[]> {
    const jobKey = this.queue.toKey('');
    const members = await this.redis.smembers(`${this.queue.toKey(runId)}:dependencies`);
    const ids = members.filter((key) => key.startsWith(jobKey)).map((key) => key.slice(jobKey.length));
    const others = ids.filter((id) => id !== except);
    if (others.length === 0) return [];
    const found = await this.lookUp(others);
    return others.filter((_, i) => found[i] === 'failed');
  }

  /**
   * For each job id (none: undefined), whether its job is gone, failed or alive: EXISTS on its hash and ZSCORE on the
   * queue's failed set, one pipelined round trip for all. The failed set holds exactly the jobs whose last attempt
   * failed (BullMQ's moveToFinished adds them, Job.retry takes them out; Job.getState looks there first), and a failed
   * job's hash stays for EXISTS to find. Job.getState costs a script per job after the job's read; the hash's own
   * fields do not tell a failed job (finishedOn, failedReason) from a completed one retried after an attempt failed.
   */
  private async lookUp(jobIds: Array<string | undefined>): Promise<Array<Found | undefined>> {
    const ids = jobIds.filter((id) => id !== undefined);
    const failedKey = this.queue.toKey('failed');
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.exists(this.queue.toKey(id)).zscore(failedKey, id);
    const answers = (await pipeline.exec()) ?? [];
    const found = ids.map((id, i): Found => {
      if (answerOf(answers[2 * i], id) === 0) return 'gone';
      return answerOf(answers[2 * i + 1], id) === null ? 'alive' : 'failed';
    });
    let next = 0;
    return jobIds.map((id) => (id === undefined ? undefined : found[next++]));
  }

  /** Where the last pass's budgeted checks stopped (START when none is kept, or Redis lost it). */
  private async readCursor(): Promise<Position> {
    const [campaignId = '', targetId = ''] = (await this.redis.get(this.queue.toKey(CURSOR_KEY)))?.split(':') ?? [];
    return isUuid(campaignId) && isUuid(targetId) ? { campaignId, targetId } : START;
  }

  private async writeCursor(at: Position): Promise<void> {
    const key = this.queue.toKey(CURSOR_KEY);
    if (at.campaignId === NIL_UUID) await this.redis.del(key);
    else await this.redis.set(key, `${at.campaignId}:${at.targetId}`);
  }
}

/**
 * Which job drives the campaign on, from its waves (in index order): the first wave started and not passed, else the
 * first one pending.
 */
export function driverOf(waves: Array<{ index: number; state: CampaignWaveState }>): Driver {
  const current = waves.find((w) => w.state === 'RUNNING' || w.state === 'HALTED');
  if (current !== undefined) return { kind: 'wave', index: current.index, steps: true };
  const next = waves.find((w) => w.state === 'PENDING');
  if (next === undefined) return { kind: 'run', started: true };
  const passed = waves.filter((w) => w.index < next.index);
  return passed.length === 0 ? { kind: 'run', started: false } : { kind: 'wave', index: passed.at(-1)!.index, steps: false };
}

/** The targets whose steps the budgeted checks look for, as the driver says (undefined: none: no live wave). */
function scopeOf(driver: Driver | undefined): StepScope | undefined {
  if (driver?.kind === 'ended') return { kind: 'ended' };
  return driver?.kind === 'wave' && driver.steps ? { kind: 'wave', index: driver.index } : undefined;
}

/** `targets` by their wave, in the order of their first target. */
function byWave(targets: UnfinishedTarget[]): Map<number, UnfinishedTarget[]> {
  const waves = new Map<number, UnfinishedTarget[]>();
  for (const target of targets) waves.set(target.waveIndex, [...(waves.get(target.waveIndex) ?? []), target]);
  return waves;
}

/** The campaign a flow job's data names (undefined: not one, or not ids). */
function campaignOf(data: string | null): { tenantId: string; campaignId: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data ?? 'null');
  } catch {
    return undefined;
  }
  const { tenantId, campaignId } = (parsed ?? {}) as Partial<Record<'tenantId' | 'campaignId', unknown>>;
  return typeof tenantId === 'string' && typeof campaignId === 'string' && isUuid(tenantId) && isUuid(campaignId) ? { tenantId, campaignId } : undefined;
}

/** A pipelined command's answer; its error thrown naming the job. */
function answerOf(answer: [Error | null, unknown] | undefined, jobId: string): unknown {
  const [error, value] = answer ?? [new Error('no answer'), null];
  if (error) throw new Error(`could not look up campaign job ${jobId}: ${error.message}`);
  return value;
}

/**
 * The step's data as the wave's start gives it, plus, for a RUNNING target, its operation as dispatched: the job that
 * dispatched it is gone and cannot say whether it did, so the re-added step treats it as held (CampaignRunner.follow:
 * a PENDING operation is dispatched again only once unheld).
 */
function stepData(tenantId: string, campaignId: string, target: UnfinishedTarget) {
  const data: CampaignJobData['campaign.step'] = { tenantId, campaignId, targetId: target.id };
  if (target.state === 'RUNNING' && target.operationId !== null) data.dispatchedOperationId = target.operationId;
  return data;
}

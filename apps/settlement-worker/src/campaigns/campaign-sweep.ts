import type { FlowProducer, JobSchedulerTemplateOptions, JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Counter } from 'prom-client';

import { CAMPAIGN_QUEUE, CAMPAIGN_SWEEP_SCHEDULER_ID, type CampaignJobData, campaignJobId, stepJobId, waveJobId } from '@payorch/campaigns';
import type { WorkerConfig } from '@payorch/config';
import { type Database, Prisma } from '@payorch/db';
import type { Logger } from '@payorch/logging';
import type { CampaignTargetState, CampaignWaveState } from '@payorch/prisma';

import { waveFlow } from './campaign-runner';

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

/** Open campaigns per page of the cross-tenant scan. */
const CAMPAIGN_PAGE = 200;
/** Targets per page of one wave's scan (one read, one pipelined EXISTS round trip). */
const TARGET_PAGE = 1_000;
/** Job ids named in the warning of a sweep that re-added jobs (the rest counted). */
const LOGGED_IDS = 20;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

export type RequeuedKind = 'run' | 'wave' | 'step';

export interface CampaignSweepResult {
  /** Open (RUNNING or PAUSED) campaigns looked at. */
  campaigns: number;
  /** Unfinished targets of their current waves whose step job was looked for. */
  targets: number;
  /** Jobs that were gone and were added again, by kind. */
  requeued: Record<RequeuedKind, number>;
}

/** The job that drives a campaign on, as its waves' states say. */
type Driver =
  /** A wave started and not passed (RUNNING, or HALTED waiting for the resume): its job, and its unfinished targets' steps. */
  | { kind: 'wave'; index: number; steps: true }
  /** The wave before the first PENDING one passed: its job passes it again and starts the next one. */
  | { kind: 'wave'; index: number; steps: false }
  /** Nothing started yet (the run starts wave 0), or every wave passed (the run completes the campaign). */
  | { kind: 'run'; started: boolean };

/**
 * PostgreSQL is the truth; Redis may lose everything (docs/campaigns.md, "Lost jobs"). A campaign is driven by its
 * jobs only: `campaign.run`, the current wave's `campaign.wave`, one `campaign.step` per unfinished target of that
 * wave. Once Redis loses them (a flush, a failover without persistence), a target left RUNNING holds a concurrency
 * slot of its tenant and store for good, its wave never ends and its campaign never advances; a parked step is lost
 * with its fallback delay. Nothing else adds them again: the gateway only adds `campaign.run` at creation.
 *
 * Every CAMPAIGN_SWEEP_INTERVAL_MS (and at each worker start) this reads the open (RUNNING, PAUSED) campaigns across
 * tenants (SECURITY DEFINER payorch_open_campaigns, keyset pages), and for each, under its tenant's scope, which jobs
 * its rows say must exist; it looks for them by their job ids (EXISTS on the job hashes, pipelined a page of targets
 * at a time) and adds what is gone under the SAME job id and the same flow shape as the normal path: a job that still
 * exists is never duplicated (BullMQ ignores an add whose id exists, and attaches an existing child to the re-added
 * parent whose own is gone). Only enqueues; the rows stay the runner's to write.
 *
 * Re-running any of these jobs is harmless by construction (CampaignRunner: resumable from the rows). A step added
 * again for a RUNNING target follows the operation its claim created, never creates a second one; it carries that
 * operation as `dispatchedOperationId`, so that a PENDING operation held in its terminal's queue (behind a payment)
 * is left to the connector holding it and is dispatched again only once nobody has touched it for 15 s
 * (isUnheldPending) — the job that dispatched it is gone and cannot say it did.
 *
 * Bounded: the scan reads the open campaigns (at most CAMPAIGNS_MAX_PER_TENANT per tenant) and the unfinished targets
 * of their current wave only (at most one wave each, at most 50,000 targets), TARGET_PAGE rows and one pipelined EXISTS
 * round trip at a time; the steps a page found gone are added with that page, and a wave or run found gone is added
 * once with every step of the wave that was gone, as the wave's start adds it.
 */
export class CampaignSweep {
  constructor(
    private readonly db: Database,
    private readonly queue: Queue,
    private readonly flows: FlowProducer,
    /** Any connection to the queue's Redis: the job hashes are looked up by key (EXISTS). */
    private readonly redis: Redis,
    private readonly logger: Logger,
    private readonly requeuedTotal?: Counter<'kind'>,
  ) {}

  async sweep(): Promise<CampaignSweepResult> {
    const result: CampaignSweepResult = { campaigns: 0, targets: 0, requeued: { run: 0, wave: 0, step: 0 } };
    const requeuedIds: string[] = [];
    // Keyset pages over the partial index of open campaigns (migration 20261206181610_added_open_campaigns_scan).
    let after = NIL_UUID;
    let failure: { reason: unknown } | undefined;
    for (;;) {
      const rows = await this.db.prisma.$queryRaw<Array<{ id: string; tenantId: string }>>`
        SELECT "id", "tenantId" FROM payorch_open_campaigns(${after}::uuid, ${CAMPAIGN_PAGE}::int)`;
      for (const row of rows) {
        result.campaigns += 1;
        try {
          await this.ensureJobs(row.tenantId, row.id, result, requeuedIds);
        } catch (error) {
          // One campaign's failure (Redis refusing, a row gone) does not keep the others from their jobs; the job fails
          // at the end (kept in the failed set with its reason), and the next sweep looks again.
          failure ??= { reason: error };
          this.logger.warn({ tenantId: row.tenantId, campaignId: row.id, err: (error as Error).message }, 'campaign sweep could not check a campaign');
        }
      }
      const last = rows.at(-1);
      if (rows.length < CAMPAIGN_PAGE || last === undefined) break;
      after = last.id;
    }
    if (requeuedIds.length > 0) {
      this.logger.warn(
        { ...result, jobIds: requeuedIds.slice(0, LOGGED_IDS), more: Math.max(0, requeuedIds.length - LOGGED_IDS) },
        'campaign jobs were lost and were queued again',
      );
    }
    if (failure) throw failure.reason;
    return result;
  }

  private async ensureJobs(tenantId: string, campaignId: string, result: CampaignSweepResult, requeuedIds: string[]): Promise<void> {
    const waves = await this.db.withTenant(tenantId, async (tx) => {
      const campaign = await tx.campaign.findUnique({ where: { id: campaignId }, select: { state: true } });
      if (campaign?.state !== 'RUNNING' && campaign?.state !== 'PAUSED') return undefined;
      return tx.campaignWave.findMany({ where: { campaignId }, select: { index: true, state: true }, orderBy: { index: 'asc' } });
    });
    if (waves === undefined) return;
    const driver = driverOf(waves);
    const runId = campaignJobId(campaignId);
    const count = (kind: RequeuedKind, jobIds: string[]) => {
      result.requeued[kind] += jobIds.length;
      requeuedIds.push(...jobIds);
      this.requeuedTotal?.inc({ kind }, jobIds.length);
    };

    if (driver.kind === 'run') {
      if (await this.exists(runId)) return;
      const data: CampaignJobData['campaign.run'] = { tenantId, campaignId, ...(driver.started ? { started: true } : {}) };
      await this.queue.add('campaign.run', data, { jobId: runId, ...RUN_JOB_OPTIONS });
      count('run', [runId]);
      return;
    }

    const waveId = waveJobId(campaignId, driver.index);
    const [runGone, waveGone] = await this.missing([runId, waveId]);
    // Run or wave gone: the flow is added again whole, with every step of the wave that is gone, as the wave's start
    // adds it (a run or wave added with part of its steps could be released before the rest are added).
    const pending: CampaignJobData['campaign.step'][] = [];
    if (driver.steps) {
      for await (const page of this.unfinishedTargets(tenantId, campaignId, driver.index)) {
        result.targets += page.length;
        const gone = await this.missing(page.map((t) => stepJobId(t.id)));
        const steps = page.filter((_, i) => gone[i]).map((t) => stepData(tenantId, campaignId, t));
        if (steps.length === 0) continue;
        if (runGone || waveGone) pending.push(...steps);
        else {
          // Run and wave alive (the wave waits for its children): the lost steps join it, a page at a time.
          await this.addFlow(tenantId, campaignId, driver.index, steps);
          count(
            'step',
            steps.map((s) => stepJobId(s.targetId)),
          );
        }
      }
    }
    if (!runGone && !waveGone) return;
    await this.addFlow(tenantId, campaignId, driver.index, pending);
    if (runGone) count('run', [runId]);
    if (waveGone) count('wave', [waveId]);
    count(
      'step',
      pending.map((s) => stepJobId(s.targetId)),
    );
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
   * The unfinished targets of one wave (PENDING, RETRYING, RUNNING: their step must be alive; a RUNNING one holds a
   * concurrency slot until its step ends it), TARGET_PAGE at a time (keyset on the id).
   */
  private async *unfinishedTargets(tenantId: string, campaignId: string, waveIndex: number) {
    let after = NIL_UUID;
    for (;;) {
      const page = await this.db.querySql<{ id: string; state: CampaignTargetState; operationId: string | null }>(
        tenantId,
        Prisma.sql`
          SELECT t."id", t."state", t."operationId" FROM "CampaignTarget" t
          WHERE t."campaignId" = ${campaignId}::uuid AND t."waveIndex" = ${waveIndex}
            AND t."state" IN ('PENDING', 'RETRYING', 'RUNNING') AND t."id" > ${after}::uuid
          ORDER BY t."id" LIMIT ${TARGET_PAGE}`,
      );
      if (page.length > 0) yield page;
      const last = page.at(-1);
      if (page.length < TARGET_PAGE || last === undefined) return;
      after = last.id;
    }
  }

  private async exists(jobId: string): Promise<boolean> {
    const [gone] = await this.missing([jobId]);
    return !gone;
  }

  /** For each job id, whether its job hash is gone (one pipelined round trip). */
  private async missing(jobIds: string[]): Promise<boolean[]> {
    const pipeline = this.redis.pipeline();
    for (const id of jobIds) pipeline.exists(this.queue.toKey(id));
    const answers = (await pipeline.exec()) ?? [];
    return jobIds.map((id, i) => {
      const [error, found] = answers[i] ?? [new Error('no answer'), null];
      if (error) throw new Error(`could not look up campaign job ${id}: ${error.message}`);
      return found === 0;
    });
  }
}

/** Which job drives the campaign on, from its waves (in index order): the first wave started and not passed, else the first one pending. */
export function driverOf(waves: Array<{ index: number; state: CampaignWaveState }>): Driver {
  const current = waves.find((w) => w.state === 'RUNNING' || w.state === 'HALTED');
  if (current !== undefined) return { kind: 'wave', index: current.index, steps: true };
  const next = waves.find((w) => w.state === 'PENDING');
  if (next === undefined) return { kind: 'run', started: true };
  const passed = waves.filter((w) => w.index < next.index);
  return passed.length === 0 ? { kind: 'run', started: false } : { kind: 'wave', index: passed.at(-1)!.index, steps: false };
}

/**
 * The step's data as the wave's start gives it, plus, for a RUNNING target, its operation as dispatched: the job that
 * dispatched it is gone and cannot say whether it did, so the re-added step treats it as held (CampaignRunner.follow:
 * a PENDING operation is dispatched again only once unheld).
 */
function stepData(tenantId: string, campaignId: string, target: { id: string; state: CampaignTargetState; operationId: string | null }) {
  const data: CampaignJobData['campaign.step'] = { tenantId, campaignId, targetId: target.id };
  if (target.state === 'RUNNING' && target.operationId !== null) data.dispatchedOperationId = target.operationId;
  return data;
}

import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { JobSchedulerTemplateOptions, Queue } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { assertUnreachable, type JobData, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { manualJobId, settlementJobId } from '@payorch/settlement';

import { DATABASE, LOGGER, WORKER_CONFIG } from '../tokens';
import { type CatchUpResult, ScheduleCatchUpService } from './schedule-catch-up.service';

/** Job scheduler id of the repeatable `settlement.sweep` (no `:`: BullMQ builds `repeat:<id>:<millis>`). */
export const SETTLEMENT_SWEEP_SCHEDULER_ID = 'settlement-sweep';

/** The sweep's job scheduler, as the processor upserts it and SchedulerReconciler re-creates it. */
export function settlementSweepScheduler(config: Pick<WorkerConfig, 'SETTLEMENT_SWEEP_INTERVAL_MS'>) {
  const opts: JobSchedulerTemplateOptions = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } };
  return {
    id: SETTLEMENT_SWEEP_SCHEDULER_ID,
    repeat: { every: config.SETTLEMENT_SWEEP_INTERVAL_MS },
    template: { name: 'settlement.sweep' as const, data: {} as Record<string, never>, opts },
  };
}

/** Rows per page of the cross-tenant scan; every page is read, so none waits behind the oldest ones. */
const PAGE = 500;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

export interface SweepResult {
  /** Unfinished settlements unchanged for SETTLEMENT_SWEEP_AFTER_MS. */
  found: number;
  /** Had no job: `settlement.run` added with the job id of the normal path. */
  added: number;
  /** Their job had failed (an error other than a database outage, or stalled twice): retried. */
  retried: number;
  /** Their job is still waiting, delayed or running: left alone. */
  live: number;
  /** COMPLETED or FAILED by the time the sweep read them under their tenant. */
  finished: number;
  /** Scheduled runs that were due and have no settlement yet (lost before their first attempt): ScheduleCatchUpService. */
  catchUp: CatchUpResult;
}

type EnsureOutcome = 'added' | 'retried' | 'live';

/**
 * `settlement.run` jobs are added only when a schedule fires and when the gateway creates a manual settlement; a
 * settlement whose job is lost (Redis flushed or restarted empty, a job stalled twice, a non-database error on its
 * one attempt) would stay PENDING or RUNNING forever. PostgreSQL is the truth: every SETTLEMENT_SWEEP_INTERVAL_MS
 * this makes sure each settlement still PENDING or RUNNING and unchanged for SETTLEMENT_SWEEP_AFTER_MS has its job,
 * under the job id the normal path uses, so it can never run twice at once: BullMQ ignores an add whose id exists.
 * A run again is harmless (SettlementService reads the database first): a COMPLETED/FAILED settlement is skipped, a
 * PENDING close-day operation is sent, one sent before is recovered, never sent twice. The sweep only enqueues; the
 * settlement's status stays the service's to write. A scheduled run lost before its first attempt has no row to find:
 * the same sweep then catches up the schedules' due firings (ScheduleCatchUpService).
 */
@Injectable()
export class SettlementSweepService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @InjectQueue(QUEUES.settlement) private readonly queue: Queue,
    private readonly schedules: ScheduleCatchUpService,
  ) {}

  async sweep(): Promise<SweepResult> {
    const result = { ...(await this.unfinished()), catchUp: await this.schedules.catchUp() };
    if (result.added || result.retried) {
      this.logger.warn(result, 'settlements had lost their job and were queued again');
    } else if (result.found) {
      this.logger.info(result, 'settlement sweep');
    }
    return result;
  }

  /** The settlements PENDING or RUNNING unchanged for SETTLEMENT_SWEEP_AFTER_MS, each made sure to have its job. */
  private async unfinished(): Promise<Omit<SweepResult, 'catchUp'>> {
    const result = { found: 0, added: 0, retried: 0, live: 0, finished: 0 };
    const olderThan = `${this.config.SETTLEMENT_SWEEP_AFTER_MS} milliseconds`;
    // Keyset pages over the partial index of unfinished settlements (migration 20261206052302_added_unfinished_settlements_scan).
    let after = { updatedAt: '-infinity', id: NIL_UUID };
    for (;;) {
      const rows = await this.db.prisma.$queryRaw<Array<{ id: string; tenantId: string; updatedAt: Date }>>`
        SELECT "id", "tenantId", "updatedAt"
        FROM payorch_unfinished_settlements(${olderThan}::interval, ${after.updatedAt}::timestamptz, ${after.id}::uuid, ${PAGE}::int)`;
      result.found += rows.length;
      const byTenant = new Map<string, string[]>();
      for (const row of rows) byTenant.set(row.tenantId, [...(byTenant.get(row.tenantId) ?? []), row.id]);
      for (const [tenantId, ids] of byTenant) await this.ensureJobs(tenantId, ids, result);
      const last = rows.at(-1);
      if (rows.length < PAGE || last === undefined) break;
      after = { updatedAt: last.updatedAt.toISOString(), id: last.id };
    }
    return result;
  }

  /** Reads the tenant's settlements under its scope (RLS) and makes sure each one still unfinished has its job. */
  private async ensureJobs(tenantId: string, ids: string[], result: Omit<SweepResult, 'catchUp'>): Promise<void> {
    const settlements = await this.db.withTenant(tenantId, (tx) =>
      tx.settlement.findMany({
        where: { id: { in: ids }, status: { in: ['PENDING', 'RUNNING'] } },
        select: { id: true, terminalId: true, businessDate: true, runKey: true, trigger: true, startedAt: true },
      }),
    );
    result.finished += ids.length - settlements.length;
    for (const s of settlements) {
      const trigger = s.trigger as JobData['settlement.run']['trigger'];
      const businessDate = s.businessDate.toISOString().slice(0, 10);
      const data: JobData['settlement.run'] = {
        tenantId,
        terminalId: s.terminalId,
        businessDate,
        runKey: s.runKey,
        trigger,
        // The give-up window runs from the first attempt, which the settlement records; a lost job does not reopen it.
        ...(s.startedAt ? { firstAttemptAt: s.startedAt.toISOString() } : {}),
      };
      result[await this.ensureRunJob(data, runJobId(data))] += 1;
    }
  }

  /**
   * Adds the run when its job is gone, retries it when it failed, and replaces a completed (or orphaned) one: a
   * settlement still unfinished needs a run. A job waiting, delayed or running is left as it is; an add racing the
   * normal path's is one job all the same (same id).
   */
  private async ensureRunJob(data: JobData['settlement.run'], jobId: string): Promise<EnsureOutcome> {
    const existing = await this.queue.getJob(jobId);
    if (existing) {
      const state = await existing.getState();
      if (state === 'failed') {
        // Its data keeps firstAttemptAt and the retry count: the give-up window and the backoff go on.
        await existing.retry('failed', { resetAttemptsMade: true });
        return 'retried';
      }
      // 'unknown': a job hash in no list (Redis lost part of the queue); an add with its id would be ignored.
      if (state !== 'completed' && state !== 'unknown') return 'live';
      await existing.remove();
    }
    await this.queue.add('settlement.run', data, { jobId, removeOnComplete: { count: 1000 }, removeOnFail: false });
    return 'added';
  }
}

/** The job id the normal path gives the run (docs/settlements.md, "The run: idempotency and steps"). */
function runJobId(data: JobData['settlement.run']): string {
  switch (data.trigger) {
    case 'schedule':
      return settlementJobId(data.terminalId, data.businessDate);
    case 'manual':
      return manualJobId(data.terminalId, data.runKey);
    default:
      return assertUnreachable(data.trigger);
  }
}

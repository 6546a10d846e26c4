import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { JobState, Queue } from 'bullmq';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { type JobData, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { businessDateOf, lastScheduledInstant, scheduledFireJobId, scheduleRunKey, settlementJobId } from '@payorch/settlement';

import { DATABASE, LOGGER, WORKER_CONFIG } from '../tokens';
import { SCHEDULED_TERMINAL_SELECT, type ScheduleRow, scheduledTerminalOf, terminalsCoveredBy } from './schedule-sync.service';
import { SETTLEMENT_METRICS, type SettlementMetrics } from './settlement-metrics';

export interface CatchUpResult {
  /** Enabled schedules whose last firing (older than SETTLEMENT_CATCH_UP_AFTER_MS, after the schedule's last change) was checked. */
  due: number;
  /** Terminals those firings cover that have no settlement of the firing's business day. */
  missing: number;
  /** Of those, covered by a `settlement.fire` of that firing still queued (the worker busy or down at the time): left to it. */
  firing: number;
  /** Of those, whose `settlement.run` job exists (waiting, delayed, running, or done a moment ago): left to it. */
  live: number;
  /** Runs queued under the fire's job id: there was no job (the catch-ups). */
  added: number;
  /** Runs whose job had failed before the settlement existed: retried (catch-ups too). */
  retried: number;
}

/** A firing that was due, and the terminals it covers that have no settlement of its business day. */
interface DueFiring {
  tenantId: string;
  scheduleId: string;
  at: Date;
  businessDate: string;
  missing: string[];
}

/** Job states of a `settlement.fire` that has yet to queue its runs. */
const FIRE_PENDING: ReadonlySet<JobState | 'unknown'> = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);
/** Redis round trips at once while checking the runs of one firing. */
const PARALLEL = 50;

/**
 * A schedule's firing turns into settlements only when its jobs run: `settlement.fire` queues one `settlement.run` per
 * terminal, and the Settlement row appears at that run's first attempt. A firing whose jobs Redis lost before that (a
 * flush or a failover, the worker down over the fire time and Redis restarted meanwhile, a fire that failed) leaves
 * no row, so the sweep of unfinished settlements cannot see it. PostgreSQL says what was due: for every enabled
 * schedule its last firing older than SETTLEMENT_CATCH_UP_AFTER_MS (in the store's zone, as BullMQ's cron fires it),
 * the terminals that firing covers (the fire's own rule, terminalsCoveredBy; terminals created after it excluded) and
 * the settlements of its business day that exist (any trigger: a close-day run by hand for that day counts). A terminal
 * without one gets the run the fire would have queued — same data, same job id — unless a job is still there to do it;
 * BullMQ ignores an add whose job id exists and the run key is unique, so a catch-up racing the real fire is one
 * settlement. Only the last firing is caught up: one close-day settles everything since the terminal's previous one.
 * Part of the settlement sweep (`settlement.sweep`); it only enqueues.
 */
@Injectable()
export class ScheduleCatchUpService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SETTLEMENT_METRICS) private readonly metrics: SettlementMetrics,
    @InjectQueue(QUEUES.settlement) private readonly queue: Queue,
  ) {}

  async catchUp(now = new Date()): Promise<CatchUpResult> {
    const result: CatchUpResult = { due: 0, missing: 0, firing: 0, live: 0, added: 0, retried: 0 };
    const dueBy = new Date(now.getTime() - this.config.SETTLEMENT_CATCH_UP_AFTER_MS);
    const rows = await this.db.prisma.$queryRaw<ScheduleRow[]>`SELECT * FROM payorch_settlement_schedules()`;
    const byTenant = new Map<string, ScheduleRow[]>();
    for (const row of rows) {
      if (!row.enabled) continue;
      const list = byTenant.get(row.tenantId);
      if (list) list.push(row);
      else byTenant.set(row.tenantId, [row]);
    }
    const caughtUp: { tenantId: string; scheduleId: string; businessDate: string; runs: number }[] = [];
    for (const [tenantId, schedules] of byTenant) {
      const { due, firings } = await this.dueFirings(tenantId, schedules, dueBy);
      result.due += due;
      for (const firing of firings) {
        result.missing += firing.missing.length;
        const fire = await this.queue.getJob(scheduledFireJobId(firing.scheduleId, firing.at));
        if (fire && FIRE_PENDING.has(await fire.getState())) {
          result.firing += firing.missing.length;
          continue;
        }
        let runs = 0;
        for (let i = 0; i < firing.missing.length; i += PARALLEL) {
          const outcomes = await Promise.all(firing.missing.slice(i, i + PARALLEL).map((terminalId) => this.ensureRun(firing, terminalId)));
          for (const outcome of outcomes) {
            result[outcome] += 1;
            if (outcome !== 'live') runs += 1;
          }
        }
        if (runs > 0) caughtUp.push({ tenantId, scheduleId: firing.scheduleId, businessDate: firing.businessDate, runs });
      }
    }
    if (caughtUp.length > 0) {
      this.metrics.catchUps.inc(result.added + result.retried);
      this.logger.warn({ ...result, firings: caughtUp }, 'scheduled settlements that never started were queued (catch-up)');
    }
    return result;
  }

  /**
   * The tenant's firings that were due by `dueBy` with the terminals they cover that have no settlement of their
   * business day, read under the tenant's scope (RLS).
   */
  private dueFirings(tenantId: string, schedules: ScheduleRow[], dueBy: Date): Promise<{ due: number; firings: DueFiring[] }> {
    return this.db.withTenant(tenantId, async (tx) => {
      const storeIds = schedules.flatMap((s) => s.storeId ?? []);
      const terminalIds = schedules.flatMap((s) => s.terminalId ?? []);
      const terminals = (
        await tx.terminal.findMany({
          where: { status: { not: 'DISABLED' }, OR: [{ storeId: { in: storeIds } }, { id: { in: terminalIds } }] },
          select: { ...SCHEDULED_TERMINAL_SELECT, createdAt: true },
        })
      ).map(scheduledTerminalOf);
      const stores = await tx.store.findMany({
        where: { id: { in: [...new Set([...storeIds, ...terminals.map((t) => t.storeId)])] } },
        select: { id: true, timeZone: true },
      });
      const zones = new Map(stores.map((s) => [s.id, s.timeZone]));
      const byStore = new Map<string, typeof terminals>();
      for (const t of terminals) {
        const list = byStore.get(t.storeId);
        if (list) list.push(t);
        else byStore.set(t.storeId, [t]);
      }
      const byId = new Map(terminals.map((t) => [t.id, t]));
      // Only enabled schedules are here: a terminal's own schedule overrides its store's only while enabled.
      const ownScheduled = new Set(terminalIds);
      const firings: Omit<DueFiring, 'missing'>[] = [];
      const covered = new Map<string, string[]>();
      for (const schedule of schedules) {
        const own = schedule.terminalId ? byId.get(schedule.terminalId) : undefined;
        const pool = schedule.terminalId ? (own ? [own] : []) : (byStore.get(schedule.storeId!) ?? []);
        const storeId = schedule.terminalId ? pool[0]?.storeId : schedule.storeId;
        const timeZone = storeId ? zones.get(storeId) : undefined;
        if (timeZone === undefined) continue;
        const at = lastScheduledInstant(schedule.localTime, timeZone, dueBy);
        // Changed (created, enabled, moved) since: that firing was not this schedule's to make.
        if (at.getTime() < schedule.updatedAt.getTime()) continue;
        firings.push({ tenantId, scheduleId: schedule.id, at, businessDate: businessDateOf(at, timeZone) });
        covered.set(
          schedule.id,
          terminalsCoveredBy(schedule, pool, ownScheduled)
            .filter((t) => t.createdAt.getTime() <= at.getTime())
            .map((t) => t.id),
        );
      }
      const pairs = firings.flatMap((f) => covered.get(f.scheduleId)!.map((terminalId) => ({ terminalId, businessDate: f.businessDate })));
      if (pairs.length === 0) return { due: firings.length, firings: [] };
      // The settlements of those terminals and days, whatever started them (index ("tenantId", "terminalId", "businessDate")).
      const existing = await tx.$queryRaw<{ terminalId: string; businessDate: string }[]>`
        SELECT DISTINCT s."terminalId"::text AS "terminalId", to_char(s."businessDate", 'YYYY-MM-DD') AS "businessDate"
        FROM "Settlement" s
        JOIN unnest(${pairs.map((p) => p.terminalId)}::uuid[], ${pairs.map((p) => p.businessDate)}::date[]) AS d("terminalId", "businessDate")
          ON s."terminalId" = d."terminalId" AND s."businessDate" = d."businessDate"`;
      const settled = new Set(existing.map((e) => `${e.terminalId}/${e.businessDate}`));
      const missing = firings
        .map((f) => ({ ...f, missing: covered.get(f.scheduleId)!.filter((terminalId) => !settled.has(`${terminalId}/${f.businessDate}`)) }))
        .filter((f) => f.missing.length > 0);
      return { due: firings.length, firings: missing };
    });
  }

  /**
   * The run the firing would have queued, under its job id, unless a job of that id can still run it: waiting,
   * delayed or running (or completed: the settlement exists by now). A failed one is retried; one Redis kept in no
   * list is replaced (an add with its id would be ignored).
   */
  private async ensureRun(firing: DueFiring, terminalId: string): Promise<'added' | 'retried' | 'live'> {
    const jobId = settlementJobId(terminalId, firing.businessDate);
    const existing = await this.queue.getJob(jobId);
    if (existing) {
      const state = await existing.getState();
      if (state === 'failed') {
        await existing.retry('failed', { resetAttemptsMade: true });
        return 'retried';
      }
      if (state !== 'unknown') return 'live';
      await existing.remove();
    }
    const data: JobData['settlement.run'] = {
      tenantId: firing.tenantId,
      terminalId,
      businessDate: firing.businessDate,
      runKey: scheduleRunKey(terminalId, firing.businessDate),
      trigger: 'schedule',
    };
    await this.queue.add('settlement.run', data, { jobId, removeOnComplete: { count: 1000 }, removeOnFail: false });
    return 'added';
  }
}

import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';

import type { Database } from '@payorch/db';
import { type JobData, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { type TerminalStatuses, terminalRefusalOf } from '@payorch/operations';
import { businessDateOf, cronPatternOf, scheduleRunKey, schedulerIdOf, settlementJobId } from '@payorch/settlement';

import { DATABASE, LOGGER } from '../tokens';

/** A row of `payorch_settlement_schedules()` (every tenant's schedules, ids and times only). */
export interface ScheduleRow {
  id: string;
  tenantId: string;
  storeId: string | null;
  terminalId: string | null;
  localTime: string;
  enabled: boolean;
  updatedAt: Date;
}

interface Desired {
  schedulerId: string;
  pattern: string;
  tz: string;
  data: JobData['settlement.fire'];
}

export interface SyncResult {
  schedules: number;
  upserted: number;
  removed: number;
}

const SCHEDULER_PREFIX = 'schedule-';
const FAN_OUT_CHUNK = 500;

/** A terminal as far as the schedules go. */
export interface ScheduledTerminal extends TerminalStatuses {
  id: string;
  storeId: string;
}

/** What a firing reads of each terminal (ScheduledTerminal): the agent's status beside the terminal's. */
export const SCHEDULED_TERMINAL_SELECT = { id: true, storeId: true, status: true, agent: { select: { status: true } } } as const;

/** A terminal row read with SCHEDULED_TERMINAL_SELECT, as a ScheduledTerminal. */
export function scheduledTerminalOf<T extends { status: string; agent: { status: string } | null }>({ agent, ...terminal }: T) {
  return { ...terminal, agentStatus: agent?.status ?? null };
}

/**
 * The terminals a firing of `schedule` settles, one `settlement.run` each: a terminal schedule its terminal, a store
 * schedule the store's terminals except those with an enabled schedule of their own (`ownScheduled`); never one that
 * takes no new work (disabled, or its agent revoked: `terminalRefusalOf`, the gateway's and the settlement's rule —
 * a settlement queued for it would only fail). `terminals` holds at least those of the schedule's store (or its
 * terminal). The rule of the fire and of the catch-up (ScheduleCatchUpService) alike.
 */
export function terminalsCoveredBy<T extends ScheduledTerminal>(
  schedule: { storeId: string | null; terminalId: string | null },
  terminals: readonly T[],
  ownScheduled: ReadonlySet<string>,
): T[] {
  return terminals.filter(
    (t) => terminalRefusalOf(t) === null && (schedule.terminalId ? t.id === schedule.terminalId : t.storeId === schedule.storeId && !ownScheduled.has(t.id)),
  );
}

/** A store or a terminal with more than one enabled schedule of its own (made before the API refused them). */
export interface DuplicateScope {
  tenantId: string;
  storeId: string | null;
  terminalId: string | null;
  /** The enabled schedules of the scope, by id (a stable order). */
  scheduleIds: string[];
}

/**
 * Stores with more than one enabled store-wide schedule and terminals with more than one enabled own schedule. A
 * terminal is settled once per business day (one job id and one settlement key per terminal and day), so only the
 * first of them to fire in a day settles it; the others find the day settled. The API refuses a second enabled
 * schedule per scope (409 `settlement_schedule_exists`); rows made before that stay as they were.
 */
export function duplicateScopes(rows: readonly ScheduleRow[]): DuplicateScope[] {
  const byScope = new Map<string, ScheduleRow[]>();
  for (const row of rows) {
    if (!row.enabled) continue;
    const key = row.terminalId ? `${row.tenantId}:terminal:${row.terminalId}` : `${row.tenantId}:store:${row.storeId}`;
    const scope = byScope.get(key);
    if (scope) scope.push(row);
    else byScope.set(key, [row]);
  }
  const out: DuplicateScope[] = [];
  for (const scope of byScope.values()) {
    const first = scope[0];
    if (!first || scope.length < 2) continue;
    out.push({
      tenantId: first.tenantId,
      storeId: first.terminalId ? null : first.storeId,
      terminalId: first.terminalId,
      scheduleIds: scope.map((s) => s.id).sort(),
    });
  }
  return out;
}

/**
 * Turns SettlementSchedule rows into BullMQ job schedulers: one per schedule, a daily cron at the
 * schedule's local time with the store's `tz`. A scheduler fires `settlement.fire`, which enqueues
 * one `settlement.run` per terminal the schedule covers (job id per terminal and business day, so a
 * double fire or an overlapping manual run is one job).
 */
@Injectable()
export class ScheduleSyncService {
  /** The duplicate scopes already warned about (scope → its schedule ids), so each is logged once until it changes. */
  private warnedDuplicates = new Map<string, string>();

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
    @InjectQueue(QUEUES.settlement) private readonly queue: Queue,
  ) {}

  async sync(): Promise<SyncResult> {
    const rows = await this.db.prisma.$queryRaw<ScheduleRow[]>`SELECT * FROM payorch_settlement_schedules()`;
    this.warnDuplicates(rows);
    const desired = new Map<string, Desired>();
    const byTenant = new Map<string, ScheduleRow[]>();
    // Linear in the schedules of every tenant (up to SETTLEMENT_SCHEDULES_MAX_PER_TENANT each): each row appended, and
    // the existing schedulers found by id below, where a copied array per row and a scan per schedule were quadratic.
    for (const row of rows) {
      if (!row.enabled) continue;
      const schedules = byTenant.get(row.tenantId);
      if (schedules) schedules.push(row);
      else byTenant.set(row.tenantId, [row]);
    }
    for (const [tenantId, schedules] of byTenant) {
      const zones = await this.zonesOf(tenantId, schedules);
      for (const s of schedules) {
        const tz = zones.get(s.id);
        if (!tz) continue;
        desired.set(schedulerIdOf(s.id), { schedulerId: schedulerIdOf(s.id), pattern: cronPatternOf(s.localTime), tz, data: { tenantId, scheduleId: s.id } });
      }
    }
    const existing = new Map<string, Awaited<ReturnType<Queue['getJobSchedulers']>>[number]>();
    for (const scheduler of await this.queue.getJobSchedulers(0, -1)) {
      const id = scheduler.id ?? scheduler.key;
      if (id.startsWith(SCHEDULER_PREFIX)) existing.set(id, scheduler);
    }
    let upserted = 0;
    let removed = 0;
    for (const d of desired.values()) {
      const current = existing.get(d.schedulerId);
      if (current && current.pattern === d.pattern && current.tz === d.tz) continue;
      await this.queue.upsertJobScheduler(
        d.schedulerId,
        { pattern: d.pattern, tz: d.tz },
        { name: 'settlement.fire', data: d.data, opts: { removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } } },
      );
      upserted += 1;
    }
    for (const id of existing.keys()) {
      if (!desired.has(id)) {
        await this.queue.removeJobScheduler(id);
        removed += 1;
      }
    }
    if (upserted || removed) this.logger.info({ schedules: desired.size, upserted, removed }, 'settlement schedules synced');
    return { schedules: desired.size, upserted, removed };
  }

  /**
   * A warning per store or terminal with several enabled schedules (docs/settlements.md, "One enabled schedule per store
   * or terminal"), naming them: logged when a sync first sees the scope so, and again when its schedules change.
   */
  private warnDuplicates(rows: readonly ScheduleRow[]): void {
    const seen = new Map<string, string>();
    for (const scope of duplicateScopes(rows)) {
      const key = `${scope.tenantId}:${scope.terminalId ?? scope.storeId}`;
      const ids = scope.scheduleIds.join(',');
      seen.set(key, ids);
      if (this.warnedDuplicates.get(key) === ids) continue;
      this.logger.warn(
        { tenantId: scope.tenantId, storeId: scope.storeId, terminalId: scope.terminalId, scheduleIds: scope.scheduleIds },
        `${scope.terminalId ? 'a terminal' : 'a store'} has ${scope.scheduleIds.length} enabled settlement schedules: only the first to fire in a business day settles it; disable or delete all but one`,
      );
    }
    this.warnedDuplicates = seen;
  }

  /** Store zone of every schedule (a terminal schedule uses its terminal's store). */
  private zonesOf(tenantId: string, schedules: ScheduleRow[]): Promise<Map<string, string>> {
    return this.db.withTenant(tenantId, async (tx) => {
      const terminalIds = schedules.map((s) => s.terminalId).filter((id): id is string => id !== null);
      const terminals = await tx.terminal.findMany({ where: { id: { in: terminalIds } }, select: { id: true, storeId: true } });
      const storeIds = [...new Set([...schedules.map((s) => s.storeId).filter((id): id is string => id !== null), ...terminals.map((t) => t.storeId)])];
      const stores = await tx.store.findMany({ where: { id: { in: storeIds } }, select: { id: true, timeZone: true } });
      const zone = new Map(stores.map((s) => [s.id, s.timeZone]));
      const terminalStore = new Map(terminals.map((t) => [t.id, t.storeId]));
      const out = new Map<string, string>();
      for (const s of schedules) {
        const storeId = s.terminalId ? terminalStore.get(s.terminalId) : s.storeId;
        const tz = storeId ? zone.get(storeId) : undefined;
        if (tz) out.set(s.id, tz);
      }
      return out;
    });
  }

  /**
   * A schedule fired at `firedAt`: enqueue a run for each terminal it covers. A store schedule skips
   * terminals that have an enabled schedule of their own; every schedule skips terminals that take no new work
   * (disabled, or behind a revoked agent: terminalsCoveredBy).
   */
  async fire(data: JobData['settlement.fire'], firedAt: Date): Promise<{ enqueued: number; businessDate?: string }> {
    const plan = await this.db.withTenant(data.tenantId, async (tx) => {
      const schedule = await tx.settlementSchedule.findUnique({ where: { id: data.scheduleId } });
      if (!schedule || !schedule.enabled) return null;
      const select = SCHEDULED_TERMINAL_SELECT;
      let ownScheduled = new Set<string>();
      let candidates: ScheduledTerminal[];
      if (schedule.terminalId) {
        candidates = (await tx.terminal.findMany({ where: { id: schedule.terminalId, status: { not: 'DISABLED' } }, select })).map(scheduledTerminalOf);
      } else {
        const own = await tx.settlementSchedule.findMany({
          where: { enabled: true, terminalId: { not: null }, terminal: { storeId: schedule.storeId! } },
          select: { terminalId: true },
        });
        ownScheduled = new Set(own.map((o) => o.terminalId!));
        candidates = (
          await tx.terminal.findMany({
            where: { storeId: schedule.storeId!, status: { not: 'DISABLED' }, id: { notIn: [...ownScheduled] } },
            select,
          })
        ).map(scheduledTerminalOf);
      }
      const terminals = terminalsCoveredBy(schedule, candidates, ownScheduled);
      const storeId = terminals[0]?.storeId ?? schedule.storeId;
      const store = storeId ? await tx.store.findUnique({ where: { id: storeId }, select: { timeZone: true } }) : null;
      return store ? { terminals, businessDate: businessDateOf(firedAt, store.timeZone) } : null;
    });
    if (!plan) return { enqueued: 0 };
    const jobs = plan.terminals.map((t) => ({
      name: 'settlement.run' as const,
      data: {
        tenantId: data.tenantId,
        terminalId: t.id,
        businessDate: plan.businessDate,
        runKey: scheduleRunKey(t.id, plan.businessDate),
        trigger: 'schedule' as const,
      } satisfies JobData['settlement.run'],
      opts: { jobId: settlementJobId(t.id, plan.businessDate) },
    }));
    for (let i = 0; i < jobs.length; i += FAN_OUT_CHUNK) await this.queue.addBulk(jobs.slice(i, i + FAN_OUT_CHUNK));
    return { enqueued: jobs.length, businessDate: plan.businessDate };
  }
}

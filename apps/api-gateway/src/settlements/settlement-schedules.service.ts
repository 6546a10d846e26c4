import { Inject, Injectable } from '@nestjs/common';

import type { GatewayConfig } from '@payorch/config';
import type { Database, TransactionClient } from '@payorch/db';
import { ApiError, notFound, type TenantContext } from '@payorch/domain';

import { audit } from '../common/audit';
import { KEYSET_ORDER, keysetPage, type Page } from '../common/pagination';
import { mapPrismaError } from '../common/prisma-errors';
import { DATABASE, GATEWAY_CONFIG } from '../common/tokens';
import {
  type CreateScheduleDto,
  type ListSchedulesQuery,
  type ScheduleResponse,
  toScheduleResponse,
  type UpdateScheduleDto,
} from './dto/settlement-schedule.dto';
import { SettlementQueue } from './settlement-queue';

type ScheduleRow = Awaited<ReturnType<TransactionClient['settlementSchedule']['findUniqueOrThrow']>>;

@Injectable()
export class SettlementSchedulesService {
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(DATABASE) private readonly db: Database,
    private readonly queue: SettlementQueue,
  ) {}

  /**
   * A tenant has at most SETTLEMENT_SCHEDULES_MAX_PER_TENANT schedules (409 CONFLICT `settlement_schedule_limit`):
   * each is a BullMQ job scheduler (Redis), a firing a day and a row that every worker's schedule sync reads for every
   * tenant. A store has at most one enabled store-wide schedule and a terminal at most one enabled own schedule
   * (409 CONFLICT `settlement_schedule_exists`, assertSoleEnabled).
   */
  async create(ctx: TenantContext, dto: CreateScheduleDto): Promise<ScheduleResponse> {
    const limit = this.config.SETTLEMENT_SCHEDULES_MAX_PER_TENANT;
    const result = await this.db
      .withTenant(ctx, async (tx) => {
        await this.lockTenantSchedules(tx, ctx);
        if ((await tx.settlementSchedule.count()) >= limit) {
          throw new ApiError('CONFLICT', `a tenant has at most ${limit} settlement schedules: delete one before creating another`, {
            reason: 'settlement_schedule_limit',
            limit,
          });
        }
        if (dto.storeId && !(await tx.store.findUnique({ where: { id: dto.storeId }, select: { id: true } }))) throw notFound('store', dto.storeId);
        if (dto.terminalId && !(await tx.terminal.findUnique({ where: { id: dto.terminalId }, select: { id: true } })))
          throw notFound('terminal', dto.terminalId);
        if (dto.enabled) await this.assertSoleEnabled(tx, { storeId: dto.storeId ?? null, terminalId: dto.terminalId ?? null });
        const row = await tx.settlementSchedule.create({ data: { ...dto, tenantId: ctx.tenantId } });
        await audit(tx, ctx, {
          action: 'settlement_schedule.create',
          resourceType: 'settlement_schedule',
          resourceId: row.id,
          details: { localTime: dto.localTime },
        });
        return this.respond(tx, row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'settlement schedule' }));
    await this.queue.schedulesChanged(result.id);
    return result;
  }

  list(ctx: TenantContext, query: ListSchedulesQuery): Promise<Page<ScheduleResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      let zones = new Map<string, string>();
      const load = async (ids: string[]) => {
        const rows = await tx.settlementSchedule.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
        zones = await this.zones(tx, rows);
        return rows;
      };
      const filters = { storeId: query.storeId, terminalId: query.terminalId };
      return keysetPage(tx, 'SettlementSchedule', filters, query, load, (row) => toScheduleResponse(row, zones.get(row.id) ?? null));
    });
  }

  get(ctx: TenantContext, id: string): Promise<ScheduleResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      const row = await tx.settlementSchedule.findUnique({ where: { id } });
      if (!row) throw notFound('settlement schedule', id);
      return this.respond(tx, row);
    });
  }

  /**
   * Changes what the request changes, and only that: a field given with the value it has is no change. The row's
   * `updatedAt` says since when the schedule fires as it does, and the worker's catch-up of lost firings skips those
   * before it (a firing made before a schedule was created, enabled or moved was not this schedule's to make). Until
   * 2026-12-07 any PATCH touched it — `{"enabled": true}` on an enabled schedule too — and a firing whose runs Redis had
   * lost was then never caught up: the day was not closed on schedule.
   */
  async update(ctx: TenantContext, id: string, dto: UpdateScheduleDto): Promise<ScheduleResponse> {
    const { response, changed } = await this.db
      .withTenant(ctx, async (tx) => {
        await this.lockTenantSchedules(tx, ctx);
        const current = await tx.settlementSchedule.findUnique({ where: { id } });
        if (!current) throw notFound('settlement schedule', id);
        const changes: UpdateScheduleDto = {
          ...(dto.enabled !== undefined && dto.enabled !== current.enabled ? { enabled: dto.enabled } : {}),
          ...(dto.localTime !== undefined && dto.localTime !== current.localTime ? { localTime: dto.localTime } : {}),
        };
        if (Object.keys(changes).length === 0) return { response: await this.respond(tx, current), changed: false };
        // Only enabling can add an enabled schedule to a scope (the scope itself cannot change); a duplicate made before
        // the rule existed can still be moved, disabled or deleted.
        if (changes.enabled) await this.assertSoleEnabled(tx, current);
        const row = await tx.settlementSchedule.update({ where: { id }, data: changes });
        await audit(tx, ctx, {
          action: 'settlement_schedule.update',
          resourceType: 'settlement_schedule',
          resourceId: id,
          details: { fields: Object.keys(changes) },
        });
        return { response: await this.respond(tx, row), changed: true };
      })
      .catch((e) => mapPrismaError(e, { resource: 'settlement schedule', id }));
    if (changed) await this.queue.schedulesChanged(id);
    return response;
  }

  async remove(ctx: TenantContext, id: string): Promise<void> {
    await this.db
      .withTenant(ctx, async (tx) => {
        await tx.settlementSchedule.delete({ where: { id } });
        await audit(tx, ctx, { action: 'settlement_schedule.delete', resourceType: 'settlement_schedule', resourceId: id });
      })
      .catch((e) => mapPrismaError(e, { resource: 'settlement schedule', id }));
    await this.queue.schedulesChanged(id);
  }

  /**
   * Serialises the tenant's schedule writes that check other schedules (the per-tenant count, one enabled schedule per
   * scope), so two at once cannot both pass a check: the second waits for the first to commit, then reads its row.
   */
  private async lockTenantSchedules(tx: TransactionClient, ctx: TenantContext): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`settlement_schedules:${ctx.tenantId}`}, 0))`;
  }

  /**
   * One settlement per terminal and business day (docs/settlements.md): every firing of a day shares the terminal's job
   * id and settlement key, so a second enabled schedule of a store or a terminal would fire into a day already settled
   * and leave the rest of the day to the next business day. The store's schedule and a terminal's own schedule are
   * different scopes (the terminal's overrides the store's). Call under lockTenantSchedules.
   */
  private async assertSoleEnabled(tx: TransactionClient, scope: { storeId: string | null; terminalId: string | null }): Promise<void> {
    const where = scope.terminalId ? { terminalId: scope.terminalId } : { storeId: scope.storeId, terminalId: null };
    const existing = await tx.settlementSchedule.findFirst({
      where: { ...where, enabled: true },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      select: { id: true },
    });
    if (!existing) return;
    const owner = scope.terminalId ? 'the terminal' : 'the store';
    throw new ApiError(
      'CONFLICT',
      `${owner} already has an enabled settlement schedule (${existing.id}), and a terminal is settled once per business day: change that schedule (PATCH /v1/settlement-schedules/${existing.id}) instead of adding another`,
      { reason: 'settlement_schedule_exists', scheduleId: existing.id },
    );
  }

  private async respond(tx: TransactionClient, row: ScheduleRow): Promise<ScheduleResponse> {
    return toScheduleResponse(row, (await this.zones(tx, [row])).get(row.id) ?? null);
  }

  /** The store zone each schedule's local time is read in. */
  private async zones(tx: TransactionClient, rows: ScheduleRow[]): Promise<Map<string, string>> {
    const terminals = await tx.terminal.findMany({
      where: { id: { in: rows.flatMap((r) => (r.terminalId ? [r.terminalId] : [])) } },
      select: { id: true, store: { select: { timeZone: true } } },
    });
    const stores = await tx.store.findMany({
      where: { id: { in: rows.flatMap((r) => (r.storeId ? [r.storeId] : [])) } },
      select: { id: true, timeZone: true },
    });
    const byTerminal = new Map(terminals.map((t) => [t.id, t.store.timeZone]));
    const byStore = new Map(stores.map((s) => [s.id, s.timeZone]));
    const out = new Map<string, string>();
    for (const r of rows) {
      const tz = r.terminalId ? byTerminal.get(r.terminalId) : r.storeId ? byStore.get(r.storeId) : undefined;
      if (tz) out.set(r.id, tz);
    }
    return out;
  }
}

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
   * tenant, and nothing else bounded them (not even one per store).
   */
  async create(ctx: TenantContext, dto: CreateScheduleDto): Promise<ScheduleResponse> {
    const limit = this.config.SETTLEMENT_SCHEDULES_MAX_PER_TENANT;
    const result = await this.db
      .withTenant(ctx, async (tx) => {
        // Serialises the tenant's creations, so two at once cannot both pass the count.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`settlement_schedules:${ctx.tenantId}`}, 0))`;
        if ((await tx.settlementSchedule.count()) >= limit) {
          throw new ApiError('CONFLICT', `a tenant has at most ${limit} settlement schedules: delete one before creating another`, {
            reason: 'settlement_schedule_limit',
            limit,
          });
        }
        if (dto.storeId && !(await tx.store.findUnique({ where: { id: dto.storeId }, select: { id: true } }))) throw notFound('store', dto.storeId);
        if (dto.terminalId && !(await tx.terminal.findUnique({ where: { id: dto.terminalId }, select: { id: true } })))
          throw notFound('terminal', dto.terminalId);
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

  async update(ctx: TenantContext, id: string, dto: UpdateScheduleDto): Promise<ScheduleResponse> {
    const result = await this.db
      .withTenant(ctx, async (tx) => {
        const row = await tx.settlementSchedule.update({ where: { id }, data: dto });
        await audit(tx, ctx, {
          action: 'settlement_schedule.update',
          resourceType: 'settlement_schedule',
          resourceId: id,
          details: { fields: Object.keys(dto) },
        });
        return this.respond(tx, row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'settlement schedule', id }));
    await this.queue.schedulesChanged(id);
    return result;
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

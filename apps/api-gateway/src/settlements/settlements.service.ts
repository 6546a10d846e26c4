import { Inject, Injectable } from '@nestjs/common';

import type { Database, Prisma } from '@payorch/db';
import { notFound, type TenantContext } from '@payorch/domain';
import { type BatchDiscrepancy, csvRow, discrepancyReportCsv, insertSettlement, localDateOf, manualJobId, type Totals } from '@payorch/settlement';

import { audit } from '../common/audit';
import { KEYSET_ORDER, keysetPage, type Page } from '../common/pagination';
import { DATABASE } from '../common/tokens';
import { requireOperableTerminal } from '../terminals/operable-terminal';
import {
  type DiscrepancyReportResponse,
  type ExportSettlementsQuery,
  type ListSettlementsQuery,
  type RunSettlementDto,
  type SettlementResponse,
  type SummaryCounts,
  type SummaryQuery,
  settlementStatus,
  toSettlementResponse,
} from './dto/settlement.dto';
import { SettlementQueue } from './settlement-queue';

/** CSV columns, in order (docs/settlements.md). */
export const CSV_COLUMNS = [
  'settlement_id',
  'business_date',
  'store_id',
  'terminal_id',
  'status',
  'trigger',
  'attempts',
  'started_at',
  'completed_at',
  'our_count',
  'our_net',
  'terminal_count',
  'terminal_net',
  'has_discrepancies',
  'discrepancy_count',
  'discrepancies',
  'error_code',
] as const;

const dateOf = (d: string) => new Date(`${d}T00:00:00Z`);
const countOf = (t: unknown) => (t ? Object.values((t as Totals).buckets ?? {}).reduce((n, b) => n + b.count, 0) : null);

@Injectable()
export class SettlementsService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    private readonly queue: SettlementQueue,
  ) {}

  /** Manual close-day now. The Idempotency-Key is the run key: the same key is the same settlement and the same job. */
  async run(ctx: TenantContext, terminalId: string, idempotencyKey: string, dto: RunSettlementDto): Promise<SettlementResponse> {
    const runKey = `manual:${idempotencyKey}`;
    const row = await this.db.withTenant(ctx, async (tx) => {
      const terminal = await requireOperableTerminal(tx, terminalId);
      const businessDate = dto.businessDate ?? localDateOf(new Date(), terminal.store.timeZone);
      const existing = await tx.settlement.findUnique({ where: { tenantId_runKey: { tenantId: ctx.tenantId, runKey } } });
      if (existing) return existing;
      // The settlement owner's insert (PENDING, queued for the worker); null = the same key won a concurrent request.
      const created = await insertSettlement(tx, {
        tenantId: ctx.tenantId,
        terminalId,
        storeId: terminal.storeId,
        businessDate: dateOf(businessDate),
        runKey,
        trigger: 'manual',
        status: 'PENDING',
      });
      if (created === null) return tx.settlement.findUniqueOrThrow({ where: { tenantId_runKey: { tenantId: ctx.tenantId, runKey } } });
      await audit(tx, ctx, { action: 'settlement.run', resourceType: 'settlement', resourceId: created.id, details: { terminalId, businessDate } });
      return created;
    });
    if (row.status === 'PENDING') {
      await this.queue.run(
        { tenantId: ctx.tenantId, terminalId, businessDate: row.businessDate.toISOString().slice(0, 10), runKey, trigger: 'manual' },
        manualJobId(terminalId, runKey),
      );
    }
    return toSettlementResponse(row);
  }

  list(ctx: TenantContext, query: ListSettlementsQuery): Promise<Page<SettlementResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const filters = {
        storeId: query.storeId,
        terminalId: query.terminalId,
        status: query.status,
        hasDiscrepancies: query.hasDiscrepancies,
        businessDate: query.from || query.to ? { gte: query.from, lte: query.to } : undefined,
      };
      const load = (ids: string[]) => tx.settlement.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      return keysetPage(tx, 'Settlement', filters, query, load, toSettlementResponse);
    });
  }

  get(ctx: TenantContext, id: string): Promise<SettlementResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      const row = await tx.settlement.findUnique({ where: { id } });
      if (!row) throw notFound('settlement', id);
      return toSettlementResponse(row);
    });
  }

  /** The discrepancy report of one settlement: its batches and every discrepancy with the batch it was found in. */
  discrepancyReport(ctx: TenantContext, id: string): Promise<DiscrepancyReportResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      const row = await tx.settlement.findUnique({ where: { id } });
      if (!row) throw notFound('settlement', id);
      const view = toSettlementResponse(row);
      return {
        settlementId: view.id,
        terminalId: view.terminalId,
        storeId: view.storeId,
        businessDate: view.businessDate,
        status: view.status,
        outcome: view.outcome,
        startedAt: view.startedAt,
        finishedAt: view.finishedAt,
        batches: view.batches,
        discrepancies: view.discrepancies,
      };
    });
  }

  /** The same report as RFC 4180 CSV, one row per discrepancy (header only when there is none). */
  async discrepancyCsv(ctx: TenantContext, id: string): Promise<string> {
    const report = await this.discrepancyReport(ctx, id);
    return discrepancyReportCsv({ ...report, discrepancies: report.discrepancies as unknown as BatchDiscrepancy[] });
  }

  /** Per-day progress and totals, for the chain and per store. */
  summary(ctx: TenantContext, query: SummaryQuery) {
    return this.db.withTenant(ctx, async (tx) => {
      const rows = await tx.settlement.findMany({
        where: { businessDate: dateOf(query.date), ...(query.storeId && { storeId: query.storeId }) },
        select: { storeId: true, status: true, hasDiscrepancies: true, ourTotals: true, terminalTotals: true },
      });
      const empty = (): SummaryCounts => ({ total: 0, completed: 0, failed: 0, pending: 0, withDiscrepancies: 0, ourNet: 0, terminalNet: 0 });
      const chain = empty();
      const stores = new Map<string, SummaryCounts>();
      for (const r of rows) {
        const store = stores.get(r.storeId) ?? empty();
        stores.set(r.storeId, store);
        for (const c of [chain, store]) {
          c.total += 1;
          if (r.status === 'COMPLETED') {
            c.completed += 1;
            c.ourNet += (r.ourTotals as Totals | null)?.net ?? 0;
            c.terminalNet += (r.terminalTotals as Totals | null)?.net ?? 0;
          } else if (r.status === 'FAILED') c.failed += 1;
          else c.pending += 1;
          if (r.hasDiscrepancies) c.withDiscrepancies += 1;
        }
      }
      return { date: query.date, chain, stores: [...stores.entries()].map(([storeId, c]) => ({ storeId, ...c })) };
    });
  }

  /** CSV of the filtered settlements, oldest business date first. */
  exportCsv(ctx: TenantContext, query: ExportSettlementsQuery): Promise<string> {
    return this.db.withTenant(
      ctx,
      async (tx) => {
        const rows = await tx.settlement.findMany({ where: this.filters(query), orderBy: [{ businessDate: 'asc' }, { createdAt: 'asc' }], take: query.limit });
        let out = csvRow(CSV_COLUMNS);
        for (const r of rows) {
          const discrepancies = (r.discrepancies as unknown[] | null) ?? [];
          out += csvRow([
            r.id,
            r.businessDate.toISOString().slice(0, 10),
            r.storeId,
            r.terminalId,
            settlementStatus.toApi(r.status),
            r.trigger,
            r.attempts,
            r.startedAt?.toISOString(),
            r.completedAt?.toISOString(),
            countOf(r.ourTotals),
            (r.ourTotals as Totals | null)?.net,
            countOf(r.terminalTotals),
            (r.terminalTotals as Totals | null)?.net,
            r.hasDiscrepancies,
            discrepancies.length,
            discrepancies.length ? discrepancies : '',
            (r.error as { code?: string } | null)?.code,
          ]);
        }
        return out;
      },
      { timeout: 30_000 },
    );
  }

  private filters(q: Omit<ListSettlementsQuery, 'cursor' | 'limit'>): Prisma.SettlementWhereInput {
    return {
      ...(q.storeId && { storeId: q.storeId }),
      ...(q.terminalId && { terminalId: q.terminalId }),
      ...(q.status && { status: q.status }),
      ...(q.hasDiscrepancies !== undefined && { hasDiscrepancies: q.hasDiscrepancies }),
      ...((q.from || q.to) && { businessDate: { ...(q.from && { gte: dateOf(q.from) }), ...(q.to && { lte: dateOf(q.to) }) } }),
    };
  }
}

import { Inject, Injectable } from '@nestjs/common';

import { type Database, Prisma, type TransactionClient } from '@payorch/db';
import { ApiError, notFound, type TenantContext } from '@payorch/domain';
import { type BatchDiscrepancy, businessDateOf, csvRow, discrepancyReportCsv, insertSettlement, manualJobId, UNCOMPARED_BUCKETS } from '@payorch/settlement';

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
  'batches',
  'batches_without_terminal_totals',
  'our_net_without_terminal_totals',
] as const;

const dateOf = (d: string) => new Date(`${d}T00:00:00Z`);

/** What a settlement's batches add up to ({@link batchFigures}); all zero for one not COMPLETED. */
interface BatchFigures {
  batches: number;
  batchesWithoutTerminalTotals: number;
  ourCount: number;
  ourNet: number;
  terminalCount: number;
  terminalNet: number;
  ourNetWithoutTerminalTotals: number;
}

/**
 * The count of a stored side's totals (`side`: JSON of a Totals) over the buckets its net covers: every bucket but those
 * no terminal reports (libs/settlement `UNCOMPARED_BUCKETS`, the list `netOf` leaves out: JPAY `sbp_payment` /
 * `sbp_refund`). Until 2026-12-07 our side counted them too, so a reconciled JPAY day with an SBP payment exported
 * `our_count` one above `terminal_count`.
 */
const countOf = (side: Prisma.Sql) => Prisma.sql`
  (SELECT sum((c->>'count')::bigint) FROM jsonb_each(${side}->'buckets') AS b(k, c)
    WHERE NOT (concat(${side}->>'protocol', ':', b.k) = ANY(${[...UNCOMPARED_BUCKETS]}::text[])))`;

/**
 * The figures of the settlement `s` (a row of "Settlement" in the statement), summed over every batch it reconciled,
 * each once (docs/settlements.md, "Day totals"). A settlement reconciles every batch its terminal closed since the
 * previous settlement — closes through the operations API, shifts closed on the terminal itself, the close-day of a
 * settlement that failed before its outcome was known — and its own last; `ourTotals` / `terminalTotals` are its own
 * batch's only, and each batch is in exactly one settlement's `batches` (its close-day and operations are marked with
 * that settlement). Our side and the terminal's are summed over the same batches, those whose terminal totals are
 * known, and counted over the same buckets ({@link countOf}: those the nets cover); our side of the others
 * (`closed_without_totals`, `closed_on_terminal`) is `ourNetWithoutTerminalTotals`. A row completed before `batches`
 * was stored is its own batch. Only COMPLETED settlements have figures (zero for the others); read in PostgreSQL, so
 * the totals' JSON (every transaction of the day) is never shipped. The worker counts a settlement's batches the same
 * way for its `settlement.completed` event (libs/settlement `batchNets`; the settlement-reconciliation e2e checks that
 * a day's events sum to this).
 */
const batchFigures = (s: Prisma.Sql) => Prisma.sql`
  SELECT count(*)::int AS "batches", count(*) FILTER (WHERE NOT b."compared")::int AS "batchesWithoutTerminalTotals",
    COALESCE(sum(b."ourCount") FILTER (WHERE b."compared"), 0)::bigint AS "ourCount",
    COALESCE(sum(b."ourNet") FILTER (WHERE b."compared"), 0)::bigint AS "ourNet",
    COALESCE(sum(b."terminalCount") FILTER (WHERE b."compared"), 0)::bigint AS "terminalCount",
    COALESCE(sum(b."terminalNet") FILTER (WHERE b."compared"), 0)::bigint AS "terminalNet",
    COALESCE(sum(b."ourNet") FILTER (WHERE NOT b."compared"), 0)::bigint AS "ourNetWithoutTerminalTotals"
  FROM (
    SELECT jsonb_typeof(e->'terminal') = 'object' AS "compared",
      (e->'ours'->>'net')::bigint AS "ourNet", (e->'terminal'->>'net')::bigint AS "terminalNet",
      ${countOf(Prisma.sql`e->'ours'`)} AS "ourCount", ${countOf(Prisma.sql`e->'terminal'`)} AS "terminalCount"
    FROM jsonb_array_elements(
      CASE WHEN ${s}."status" = 'COMPLETED'
        THEN COALESCE(${s}."batches", jsonb_build_array(jsonb_build_object('ours', ${s}."ourTotals", 'terminal', ${s}."terminalTotals"))) END
    ) AS e
  ) b`;

/** Progress counts of the summary (settlements, not batches). */
type ProgressCounts = Pick<SummaryCounts, 'total' | 'completed' | 'failed' | 'pending' | 'withDiscrepancies'>;

const emptyCounts = (): SummaryCounts => ({
  total: 0,
  completed: 0,
  failed: 0,
  pending: 0,
  withDiscrepancies: 0,
  batches: 0,
  batchesWithoutTerminalTotals: 0,
  ourNet: 0,
  terminalNet: 0,
  ourNetWithoutTerminalTotals: 0,
});

function addCounts(sum: SummaryCounts, counts: SummaryCounts): SummaryCounts {
  for (const key of Object.keys(sum) as (keyof SummaryCounts)[]) sum[key] += counts[key];
  return sum;
}

/** Postgres counts and sums (int4 / int8) as numbers: minor units stay far below 2^53. */
function figuresOf(row: Record<keyof BatchFigures, number | bigint>): BatchFigures {
  return {
    batches: Number(row.batches),
    batchesWithoutTerminalTotals: Number(row.batchesWithoutTerminalTotals),
    ourCount: Number(row.ourCount),
    ourNet: Number(row.ourNet),
    terminalCount: Number(row.terminalCount),
    terminalNet: Number(row.terminalNet),
    ourNetWithoutTerminalTotals: Number(row.ourNetWithoutTerminalTotals),
  };
}

const businessDateText = (d: Date) => d.toISOString().slice(0, 10);

/**
 * The settlement a manual run's Idempotency-Key already names, when this request asks for the same run: the same
 * terminal, and the same business date if the request names one (without one, the day the key's settlement was
 * created for). Anything else is 409 IDEMPOTENCY_KEY_REUSED, as for any key reused with another request.
 */
function sameRun<S extends { id: string; terminalId: string; businessDate: Date }>(
  settlement: S,
  terminalId: string,
  businessDate: string | undefined,
  idempotencyKey: string,
): S {
  const date = businessDateText(settlement.businessDate);
  if (settlement.terminalId === terminalId && (businessDate === undefined || businessDate === date)) return settlement;
  throw new ApiError(
    'IDEMPOTENCY_KEY_REUSED',
    `Idempotency-Key "${idempotencyKey}" already created settlement ${settlement.id} (terminal ${settlement.terminalId}, business date ${date}) with a different request`,
    { settlementId: settlement.id },
  );
}

@Injectable()
export class SettlementsService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    private readonly queue: SettlementQueue,
  ) {}

  /**
   * Manual close-day now. The Idempotency-Key is the run key: the same key is the same settlement and the same job.
   * Without a `businessDate`, the business day a close-day now settles in the store's zone, by the scheduler's own rule
   * (`businessDateOf`: before 06:00 local, the day that started yesterday).
   *
   * The key names its settlement for good (`Settlement.runKey`), longer than the gateway's 24 h replay record, which a
   * failed request also releases: a key already used for another terminal's settlement, or for another business date
   * when the request names one, is 409 IDEMPOTENCY_KEY_REUSED and nothing is queued ({@link sameRun}). Until
   * 2026-12-07 such a request answered the other settlement, and when that one was still PENDING queued its run under
   * this request's terminal: the worker then closed this terminal's day into the other terminal's settlement.
   * The job is queued from the row (its terminal), the worker's truth as well.
   */
  async run(ctx: TenantContext, terminalId: string, idempotencyKey: string, dto: RunSettlementDto): Promise<SettlementResponse> {
    const runKey = `manual:${idempotencyKey}`;
    const row = await this.db.withTenant(ctx, async (tx) => {
      const terminal = await requireOperableTerminal(tx, terminalId);
      const businessDate = dto.businessDate ?? businessDateOf(new Date(), terminal.store.timeZone);
      const byKey = { tenantId_runKey: { tenantId: ctx.tenantId, runKey } };
      const existing = await tx.settlement.findUnique({ where: byKey });
      if (existing) return sameRun(existing, terminalId, dto.businessDate, idempotencyKey);
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
      if (created === null) return sameRun(await tx.settlement.findUniqueOrThrow({ where: byKey }), terminalId, dto.businessDate, idempotencyKey);
      await audit(tx, ctx, { action: 'settlement.run', resourceType: 'settlement', resourceId: created.id, details: { terminalId, businessDate } });
      return created;
    });
    if (row.status === 'PENDING') {
      await this.queue.run(
        { tenantId: ctx.tenantId, terminalId: row.terminalId, businessDate: businessDateText(row.businessDate), runKey, trigger: 'manual' },
        manualJobId(row.terminalId, runKey),
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

  /**
   * Per-day progress and totals, for the chain and per store: the totals of every batch the day's COMPLETED settlements
   * reconciled, each once ({@link batchFigures}).
   */
  summary(ctx: TenantContext, query: SummaryQuery) {
    return this.db.withTenant(ctx, async (tx) => {
      const rows = await tx.$queryRaw<(Record<keyof BatchFigures, bigint> & ProgressCounts & { storeId: string })[]>`
        SELECT s."storeId", count(*)::int AS "total", count(*) FILTER (WHERE s."status" = 'COMPLETED')::int AS "completed",
          count(*) FILTER (WHERE s."status" = 'FAILED')::int AS "failed",
          count(*) FILTER (WHERE s."status" IN ('PENDING', 'RUNNING'))::int AS "pending",
          count(*) FILTER (WHERE s."hasDiscrepancies")::int AS "withDiscrepancies",
          sum(f."batches")::bigint AS "batches", sum(f."batchesWithoutTerminalTotals")::bigint AS "batchesWithoutTerminalTotals",
          sum(f."ourCount")::bigint AS "ourCount", sum(f."ourNet")::bigint AS "ourNet",
          sum(f."terminalCount")::bigint AS "terminalCount", sum(f."terminalNet")::bigint AS "terminalNet",
          sum(f."ourNetWithoutTerminalTotals")::bigint AS "ourNetWithoutTerminalTotals"
        FROM "Settlement" s CROSS JOIN LATERAL (${batchFigures(Prisma.raw('s'))}) f
        WHERE s."businessDate" = ${query.date}::date ${query.storeId ? Prisma.sql`AND s."storeId" = ${query.storeId}::uuid` : Prisma.empty}
        GROUP BY s."storeId" ORDER BY s."storeId"`;
      const countsOf = (r: (typeof rows)[number]): SummaryCounts => {
        const f = figuresOf(r);
        return {
          total: r.total,
          completed: r.completed,
          failed: r.failed,
          pending: r.pending,
          withDiscrepancies: r.withDiscrepancies,
          batches: f.batches,
          batchesWithoutTerminalTotals: f.batchesWithoutTerminalTotals,
          ourNet: f.ourNet,
          terminalNet: f.terminalNet,
          ourNetWithoutTerminalTotals: f.ourNetWithoutTerminalTotals,
        };
      };
      const counts = rows.map(countsOf);
      return {
        date: query.date,
        chain: counts.reduce(addCounts, emptyCounts()),
        stores: rows.map((r, i) => ({ storeId: r.storeId, ...counts[i]! })),
      };
    });
  }

  /** CSV of the filtered settlements, oldest business date first. */
  exportCsv(ctx: TenantContext, query: ExportSettlementsQuery): Promise<string> {
    return this.db.withTenant(
      ctx,
      async (tx) => {
        const rows = await tx.settlement.findMany({
          where: this.filters(query),
          orderBy: [{ businessDate: 'asc' }, { createdAt: 'asc' }],
          take: query.limit,
          select: {
            id: true,
            businessDate: true,
            storeId: true,
            terminalId: true,
            status: true,
            trigger: true,
            attempts: true,
            startedAt: true,
            completedAt: true,
            hasDiscrepancies: true,
            discrepancies: true,
            error: true,
          },
        });
        const figures = await this.figuresOf(
          tx,
          rows.filter((r) => r.status === 'COMPLETED').map((r) => r.id),
        );
        let out = csvRow(CSV_COLUMNS);
        for (const r of rows) {
          const discrepancies = (r.discrepancies as unknown[] | null) ?? [];
          const f = figures.get(r.id);
          // Our side and the terminal's over the same batches: empty when no batch of it has terminal totals.
          const compared = f !== undefined && f.batches > f.batchesWithoutTerminalTotals ? f : undefined;
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
            compared?.ourCount,
            compared?.ourNet,
            compared?.terminalCount,
            compared?.terminalNet,
            r.hasDiscrepancies,
            discrepancies.length,
            discrepancies.length ? discrepancies : '',
            (r.error as { code?: string } | null)?.code,
            f?.batches,
            f?.batchesWithoutTerminalTotals,
            f?.ourNetWithoutTerminalTotals,
          ]);
        }
        return out;
      },
      { timeout: 30_000 },
    );
  }

  /** The batch figures of these settlements, by id (COMPLETED ones: the others have none). */
  private async figuresOf(tx: TransactionClient, ids: string[]): Promise<Map<string, BatchFigures>> {
    if (ids.length === 0) return new Map();
    const rows = await tx.$queryRaw<(Record<keyof BatchFigures, bigint> & { id: string })[]>`
      SELECT s."id", f.* FROM "Settlement" s CROSS JOIN LATERAL (${batchFigures(Prisma.raw('s'))}) f WHERE s."id" = ANY(${ids}::uuid[])`;
    return new Map(rows.map((r) => [r.id, figuresOf(r)]));
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

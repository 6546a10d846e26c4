import { z } from 'zod';

import { BUSINESS_DATE_PATTERN } from '@payorch/settlement';

import { paginationQuery } from '../../common/pagination';
import { wireEnum } from '../../common/wire-enum';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

/**
 * `YYYY-MM-DD` that is a day of the calendar. The pattern alone let `2026-02-30` through: PostgreSQL refused it as
 * a filter (500), and `new Date()` rolled it over to March 2 (a manual run closed a day nobody asked for).
 */
export const calendarDate = z
  .string()
  .regex(BUSINESS_DATE_PATTERN, 'must be a date YYYY-MM-DD')
  .refine(isCalendarDate, { message: 'must be a date that exists' });
const businessDate = calendarDate;

function isCalendarDate(v: string): boolean {
  const day = new Date(`${v}T00:00:00Z`);
  return v >= '0001-01-01' && !Number.isNaN(day.getTime()) && day.toISOString().slice(0, 10) === v;
}
const STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED'] as const;
/** API casing: `pending`, `running`, `completed`, `failed`. */
export const settlementStatus = wireEnum('SettlementStatus', STATUSES);

export const runSettlementSchema = z
  .strictObject({
    businessDate: businessDate
      .optional()
      .describe(
        "Default: the business day a close-day now settles in the store's time zone, as a scheduled one does: today from 06:00 local time, before 06:00 the previous day (a night shift settles after midnight).",
      ),
  })
  .default({});
export type RunSettlementDto = z.infer<typeof runSettlementSchema>;

const filters = {
  from: businessDate.optional().describe('Business date from (inclusive).'),
  hasDiscrepancies: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  status: settlementStatus.input.optional(),
  storeId: canonicalUuid({ message: 'must be a UUID' }).optional(),
  terminalId: canonicalUuid({ message: 'must be a UUID' }).optional(),
  to: businessDate.optional().describe('Business date to (inclusive).'),
};
export const listSettlementsQuery = paginationQuery.extend(filters);
export type ListSettlementsQuery = z.infer<typeof listSettlementsQuery>;

export const exportSettlementsQuery = z.strictObject({ ...filters, limit: z.coerce.number().int().min(1).max(50_000).default(10_000) });
export type ExportSettlementsQuery = z.infer<typeof exportSettlementsQuery>;

export const summaryQuery = z.strictObject({ date: businessDate, storeId: canonicalUuid({ message: 'must be a UUID' }).optional() });
export type SummaryQuery = z.infer<typeof summaryQuery>;

const OUTCOMES = ['closed', 'closed_with_mismatch', 'already_closed', 'empty_day', 'closed_without_totals', 'not_closed'] as const;

const batchSchema = z.object({
  batchNumber: z.string().nullable(),
  closeDayOperationId: canonicalUuid().nullable().describe('The close-day operation that ended the batch; null for a batch closed on the terminal itself.'),
  closedAt: z.string().nullable(),
  closedBy: z.enum(['settlement', 'operations_api', 'terminal']),
  discrepancies: z.number(),
  operations: z.number(),
  ours: z.unknown(),
  outcome: z.string(),
  terminal: z.unknown().nullable(),
});

export const settlementResponseSchema = z.object({
  attempts: z.number(),
  batches: z.array(batchSchema).describe('Every batch this settlement reconciled (docs/reconciliation.md): closes outside a settlement first, its own last.'),
  businessDate: z.string(),
  completedAt: z.string().nullable().describe('Same as finishedAt (kept for compatibility).'),
  createdAt: z.string(),
  discrepancies: z.array(z.record(z.string(), z.unknown())).describe('Each names its `batch` (the close-day operation id).'),
  error: z.unknown().nullable(),
  finishedAt: z.string().nullable().describe('When the settlement became `completed` or `failed`; null while `pending` / `running`.'),
  hasDiscrepancies: z.boolean(),
  id: canonicalUuid(),
  operationId: canonicalUuid().nullable(),
  ourTotals: z.unknown().nullable(),
  outcome: z
    .enum(OUTCOMES)
    .nullable()
    .describe("What the terminal's close-day answer meant (docs/reconciliation.md, close-day answer → outcome); null until it answered."),
  runKey: z.string(),
  startedAt: z.string().nullable().describe("The first attempt's start; null only while `pending` (or `failed` before any attempt)."),
  status: settlementStatus.schema,
  storeId: canonicalUuid(),
  terminalId: canonicalUuid(),
  terminalTotals: z.unknown().nullable(),
  trigger: z.string(),
});
export type SettlementResponse = z.infer<typeof settlementResponseSchema>;

export interface SettlementRow {
  attempts: number;
  batches: unknown;
  businessDate: Date;
  completedAt: Date | null;
  createdAt: Date;
  discrepancies: unknown;
  error: unknown;
  hasDiscrepancies: boolean;
  id: string;
  operationId: string | null;
  ourTotals: unknown;
  outcome: string | null;
  runKey: string;
  startedAt: Date | null;
  status: (typeof STATUSES)[number];
  storeId: string;
  terminalId: string;
  terminalTotals: unknown;
  trigger: string;
}

export function toSettlementResponse(row: SettlementRow): SettlementResponse {
  return {
    attempts: row.attempts,
    batches: (row.batches as SettlementResponse['batches'] | null) ?? [],
    businessDate: row.businessDate.toISOString().slice(0, 10),
    completedAt: row.completedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    discrepancies: (row.discrepancies as Record<string, unknown>[] | null) ?? [],
    error: row.error ?? null,
    finishedAt: row.status === 'COMPLETED' || row.status === 'FAILED' ? (row.completedAt?.toISOString() ?? null) : null,
    hasDiscrepancies: row.hasDiscrepancies,
    id: row.id,
    operationId: row.operationId,
    ourTotals: row.ourTotals ?? null,
    outcome: (row.outcome as SettlementResponse['outcome']) ?? null,
    runKey: row.runKey,
    startedAt: row.startedAt?.toISOString() ?? null,
    status: settlementStatus.toApi(row.status),
    storeId: row.storeId,
    terminalId: row.terminalId,
    terminalTotals: row.terminalTotals ?? null,
    trigger: row.trigger,
  };
}

const counts = z.object({
  batches: z
    .number()
    .describe(
      "Batches the day's completed settlements reconciled, each once: a settlement's own batch and every batch of its terminal closed since the previous settlement (through the operations API, on the terminal itself, or by a settlement that failed before its close-day's outcome was known; docs/settlements.md).",
    ),
  batchesWithoutTerminalTotals: z
    .number()
    .describe('Of `batches`, those whose terminal totals are unknown (`closed_without_totals`, `closed_on_terminal`): in neither `ourNet` nor `terminalNet`.'),
  completed: z.number(),
  failed: z.number(),
  ourNet: z
    .number()
    .describe(
      'Our signed net, minor units, over the batches whose terminal totals are known: the same batches as `terminalNet`. Our net of the whole day is `ourNet + ourNetWithoutTerminalTotals`.',
    ),
  ourNetWithoutTerminalTotals: z.number().describe('Our signed net, minor units, of the batches without terminal totals (`batchesWithoutTerminalTotals`).'),
  pending: z.number().describe('`pending` + `running`.'),
  terminalNet: z.number().describe("The terminals' signed net, minor units, over the same batches as `ourNet`."),
  total: z.number(),
  withDiscrepancies: z.number(),
});
export const summaryResponseSchema = z.object({ chain: counts, date: z.string(), stores: z.array(counts.extend({ storeId: canonicalUuid() })) });
export type SummaryCounts = z.infer<typeof counts>;

/** `GET /v1/settlements/{id}/discrepancies`: the discrepancy report (also as CSV with `.csv`). */
export const discrepancyReportSchema = z.object({
  batches: z.array(batchSchema),
  businessDate: z.string(),
  discrepancies: z.array(z.record(z.string(), z.unknown())),
  finishedAt: z.string().nullable(),
  outcome: z.enum(OUTCOMES).nullable(),
  settlementId: canonicalUuid(),
  startedAt: z.string().nullable(),
  status: settlementStatus.schema,
  storeId: canonicalUuid(),
  terminalId: canonicalUuid(),
});
export type DiscrepancyReportResponse = z.infer<typeof discrepancyReportSchema>;

nameSchemas({
  RunSettlementRequest: runSettlementSchema,
  Settlement: settlementResponseSchema,
  SettlementSummary: summaryResponseSchema,
  DiscrepancyReport: discrepancyReportSchema,
});

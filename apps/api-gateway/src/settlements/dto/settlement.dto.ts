import { z } from 'zod';

import { BUSINESS_DATE_PATTERN } from '@payorch/settlement';

import { paginationQuery } from '../../common/pagination';

const businessDate = z.string().regex(BUSINESS_DATE_PATTERN, 'must be a date YYYY-MM-DD');
const STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED'] as const;

export const runSettlementSchema = z.strictObject({ businessDate: businessDate.optional().describe("Default: today in the store's time zone.") }).default({});
export type RunSettlementDto = z.infer<typeof runSettlementSchema>;

const filters = {
  from: businessDate.optional().describe('Business date from (inclusive).'),
  hasDiscrepancies: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  status: z.enum(STATUSES).optional(),
  storeId: z.uuid({ message: 'must be a UUID' }).optional(),
  terminalId: z.uuid({ message: 'must be a UUID' }).optional(),
  to: businessDate.optional().describe('Business date to (inclusive).'),
};
export const listSettlementsQuery = paginationQuery.extend(filters);
export type ListSettlementsQuery = z.infer<typeof listSettlementsQuery>;

export const exportSettlementsQuery = z.strictObject({ ...filters, limit: z.coerce.number().int().min(1).max(50_000).default(10_000) });
export type ExportSettlementsQuery = z.infer<typeof exportSettlementsQuery>;

export const summaryQuery = z.strictObject({ date: businessDate, storeId: z.uuid({ message: 'must be a UUID' }).optional() });
export type SummaryQuery = z.infer<typeof summaryQuery>;

export const settlementResponseSchema = z.object({
  attempts: z.number(),
  businessDate: z.string(),
  completedAt: z.string().nullable(),
  createdAt: z.string(),
  discrepancies: z.array(z.record(z.string(), z.unknown())),
  error: z.unknown().nullable(),
  hasDiscrepancies: z.boolean(),
  id: z.uuid(),
  operationId: z.uuid().nullable(),
  ourTotals: z.unknown().nullable(),
  runKey: z.string(),
  startedAt: z.string().nullable(),
  status: z.enum(STATUSES),
  storeId: z.uuid(),
  terminalId: z.uuid(),
  terminalTotals: z.unknown().nullable(),
  trigger: z.string(),
});
export type SettlementResponse = z.infer<typeof settlementResponseSchema>;

export interface SettlementRow {
  attempts: number;
  businessDate: Date;
  completedAt: Date | null;
  createdAt: Date;
  discrepancies: unknown;
  error: unknown;
  hasDiscrepancies: boolean;
  id: string;
  operationId: string | null;
  ourTotals: unknown;
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
    businessDate: row.businessDate.toISOString().slice(0, 10),
    completedAt: row.completedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    discrepancies: (row.discrepancies as Record<string, unknown>[] | null) ?? [],
    error: row.error ?? null,
    hasDiscrepancies: row.hasDiscrepancies,
    id: row.id,
    operationId: row.operationId,
    ourTotals: row.ourTotals ?? null,
    runKey: row.runKey,
    startedAt: row.startedAt?.toISOString() ?? null,
    status: row.status,
    storeId: row.storeId,
    terminalId: row.terminalId,
    terminalTotals: row.terminalTotals ?? null,
    trigger: row.trigger,
  };
}

const counts = z.object({
  completed: z.number(),
  failed: z.number(),
  ourNet: z.number().describe('Sum of our signed net over completed settlements, minor units.'),
  pending: z.number().describe('PENDING + RUNNING.'),
  terminalNet: z.number(),
  total: z.number(),
  withDiscrepancies: z.number(),
});
export const summaryResponseSchema = z.object({ chain: counts, date: z.string(), stores: z.array(counts.extend({ storeId: z.uuid() })) });
export type SummaryCounts = z.infer<typeof counts>;

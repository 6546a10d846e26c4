import { Controller, Get, Inject, Injectable, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';

import type { Database } from '@payorch/db';
import type { TenantContext } from '@payorch/domain';

import { RequireScopes } from '../common/auth.guard';
import { ValidQuery } from '../common/openapi';
import { DATABASE } from '../common/tokens';
import { Tenant } from '../common/tenant.decorator';
import { calendarDate } from '../settlements/dto/settlement.dto';
import { canonicalUuid, storableInstant } from '../common/zod';

/** Longest range of one summary request, in days (a year, leap day included). */
export const WALLET_SUMMARY_MAX_DAYS = 366;
const DAY_MS = 86_400_000;
const dayOf = (d: string) => new Date(`${d}T00:00:00Z`).getTime();
/**
 * A bound PostgreSQL takes (storableInstant): a day accepted by `calendarDate` (0001-01-01 … 9999-12-31) widened by the
 * zone offsets left years 1 … 9999 (`0000-12-31T…`: "date/time field value out of range", a 500). No row is older or
 * newer than these.
 */
const bound = storableInstant;

/**
 * A real calendar date (`2026-02-30` was a 500 from PostgreSQL's `::date`) and a range of at most
 * WALLET_SUMMARY_MAX_DAYS: the query reads every payment and operation of the range, so `1900-01-01`…`2100-12-31`
 * read all of the tenant's.
 */
export const walletSummariesQuery = z
  .strictObject({
    format: z.enum(['json', 'csv']).default('json'),
    from: calendarDate.describe('First business day (inclusive).'),
    merchantId: canonicalUuid().optional(),
    timeZone: z
      .string()
      .max(64)
      .refine((tz) => Intl.supportedValuesOf('timeZone').includes(tz) || tz === 'UTC', { message: 'must be an IANA time zone such as Europe/Moscow' })
      .default('UTC')
      .describe('Business days are calendar days in this zone (default UTC).'),
    to: calendarDate.describe(`Last business day (inclusive); at most ${WALLET_SUMMARY_MAX_DAYS} days from \`from\`.`),
  })
  .superRefine((q, ctx) => {
    const days = (dayOf(q.to) - dayOf(q.from)) / DAY_MS + 1;
    if (days < 1) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must not be before from' });
    else if (days > WALLET_SUMMARY_MAX_DAYS) ctx.addIssue({ code: 'custom', path: ['to'], message: `at most ${WALLET_SUMMARY_MAX_DAYS} days from from` });
  });
export type WalletSummariesQuery = z.infer<typeof walletSummariesQuery>;

export interface WalletDaySummary {
  merchantId: string;
  businessDate: string;
  currency: string;
  payments: { count: number; amount: number };
  captures: { count: number; amount: number };
  cancels: { count: number; amount: number };
  refunds: { count: number; amount: number };
  /** captured − refunded, minor units. */
  net: number;
}

interface SummaryRow {
  merchantId: string;
  day: string;
  currency: string;
  payments: bigint;
  paymentsAmount: bigint;
  captures: bigint;
  capturesAmount: bigint;
  cancels: bigint;
  cancelsAmount: bigint;
  refunds: bigint;
  refundsAmount: bigint;
}

const CSV_COLUMNS = [
  'merchantId',
  'businessDate',
  'currency',
  'payments',
  'paymentsAmount',
  'captures',
  'capturesAmount',
  'cancels',
  'cancelsAmount',
  'refunds',
  'refundsAmount',
  'net',
];

/**
 * Daily wallet summary per Assist merchant account and business day: paid payments (authorised or charged),
 * captures (two-stage captures, and one-stage payments, which capture when paid), authorisation cancels,
 * refunds and net (captured − refunded). Counted when the money moved: a payment on its creation day, an
 * operation on the day it succeeded. Read under the tenant (RLS).
 */
@Injectable()
export class WalletSummariesService {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  summaries(ctx: TenantContext, q: WalletSummariesQuery): Promise<WalletDaySummary[]> {
    // The instants the range's local days can span in any zone (UTC −12 h … +14 h): bounds the (tenantId, createdAt)
    // and (tenantId, completedAt) index scans, so the work is the range's rows, not every row of the tenant.
    const after = bound(dayOf(q.from) - DAY_MS);
    const before = bound(dayOf(q.to) + 2 * DAY_MS);
    return this.db.withTenant(ctx, async (tx) => {
      const rows = await tx.$queryRaw<SummaryRow[]>`
        WITH ev AS (
          SELECT w."merchantId", w."currency", (w."createdAt" AT TIME ZONE ${q.timeZone})::date AS day,
                 1 AS payments, w."amount" AS payments_amount,
                 CASE WHEN w."twoStage" THEN 0 ELSE 1 END AS captures, CASE WHEN w."twoStage" THEN 0 ELSE w."amount" END AS captures_amount,
                 0 AS cancels, 0::bigint AS cancels_amount, 0 AS refunds, 0::bigint AS refunds_amount
          FROM "WalletPayment" w WHERE w."authorizedAmount" > 0 AND w."createdAt" >= ${after} AND w."createdAt" < ${before}
          UNION ALL
          SELECT w."merchantId", o."currency", (o."completedAt" AT TIME ZONE ${q.timeZone})::date,
                 0, 0::bigint,
                 (o."kind" = 'CAPTURE')::int, CASE WHEN o."kind" = 'CAPTURE' THEN o."amount" ELSE 0 END,
                 (o."kind" = 'CANCEL_AUTHORIZATION')::int, CASE WHEN o."kind" = 'CANCEL_AUTHORIZATION' THEN o."amount" ELSE 0 END,
                 (o."kind" = 'REFUND')::int, CASE WHEN o."kind" = 'REFUND' THEN o."amount" ELSE 0 END
          FROM "WalletPaymentOperation" o JOIN "WalletPayment" w ON w."id" = o."paymentId"
          WHERE o."state" = 'SUCCEEDED' AND o."completedAt" >= ${after} AND o."completedAt" < ${before}
        )
        SELECT "merchantId"::text AS "merchantId", to_char(day, 'YYYY-MM-DD') AS day, "currency",
               sum(payments)::bigint AS payments, sum(payments_amount)::bigint AS "paymentsAmount",
               sum(captures)::bigint AS captures, sum(captures_amount)::bigint AS "capturesAmount",
               sum(cancels)::bigint AS cancels, sum(cancels_amount)::bigint AS "cancelsAmount",
               sum(refunds)::bigint AS refunds, sum(refunds_amount)::bigint AS "refundsAmount"
        FROM ev
        WHERE day BETWEEN ${q.from}::date AND ${q.to}::date
          AND (${q.merchantId ?? null}::uuid IS NULL OR "merchantId" = ${q.merchantId ?? null}::uuid)
        GROUP BY "merchantId", day, "currency"
        ORDER BY day, "merchantId", "currency"`;
      return rows.map((r) => ({
        merchantId: r.merchantId,
        businessDate: r.day,
        currency: r.currency,
        payments: { count: Number(r.payments), amount: Number(r.paymentsAmount) },
        captures: { count: Number(r.captures), amount: Number(r.capturesAmount) },
        cancels: { count: Number(r.cancels), amount: Number(r.cancelsAmount) },
        refunds: { count: Number(r.refunds), amount: Number(r.refundsAmount) },
        net: Number(r.capturesAmount) - Number(r.refundsAmount),
      }));
    });
  }
}

export function walletSummariesCsv(rows: readonly WalletDaySummary[]): string {
  const line = (cells: readonly (string | number)[]) =>
    cells.map((c) => (/[",\n]/.test(String(c)) ? `"${String(c).replace(/"/g, '""')}"` : String(c))).join(',') + '\n';
  return (
    line(CSV_COLUMNS) +
    rows
      .map((r) =>
        line([
          r.merchantId,
          r.businessDate,
          r.currency,
          r.payments.count,
          r.payments.amount,
          r.captures.count,
          r.captures.amount,
          r.cancels.count,
          r.cancels.amount,
          r.refunds.count,
          r.refunds.amount,
          r.net,
        ]),
      )
      .join('')
  );
}

/** `GET /v1/settlements/wallet-summaries` (+ `?format=csv`), next to the terminal settlements. */
@ApiTags('wallet-payments')
@ApiBearerAuth()
@Controller('v1/settlements/wallet-summaries')
export class WalletSummariesController {
  constructor(private readonly service: WalletSummariesService) {}

  @Get()
  @RequireScopes('settlements:read')
  @ApiOperation({ summary: 'Daily wallet summary per merchant account and business day (payments, captures, cancels, refunds, net); ?format=csv' })
  @ApiProduces('application/json', 'text/csv')
  async list(@Tenant() ctx: TenantContext, @ValidQuery(walletSummariesQuery) query: WalletSummariesQuery, @Res({ passthrough: true }) res: Response) {
    const rows = await this.service.summaries(ctx, query);
    if (query.format !== 'csv') return { data: rows };
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', 'attachment; filename="wallet-summaries.csv"');
    return walletSummariesCsv(rows);
  }
}

import { Inject, Injectable } from '@nestjs/common';

import type { Database } from '@payorch/db';
import type { TenantContext } from '@payorch/domain';

import { DATABASE } from '../common/tokens';
import type { OperationStats, OperationStatsQuery } from './dto/stats.dto';

interface BucketRow {
  start: Date;
  total: bigint;
  approved: bigint;
  declined: bigint;
  failed: bigint;
  unknown: bigint;
  offline: bigint;
}

interface TimingRow {
  start: Date;
  protocol: string;
  finished: bigint;
  p50: number;
  p99: number;
}

const FINISHED = ['APPROVED', 'DECLINED', 'FAILED', 'CANCELED'];

/**
 * Aggregates for the console's plots, computed in PostgreSQL inside the tenant's transaction: row-level
 * security alone confines them to the tenant (no tenant filter in the SQL). Buckets are `date_bin` slots
 * aligned to the epoch, every slot of the window present (zeros included).
 */
@Injectable()
export class StatsService {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  operations(ctx: TenantContext, q: OperationStatsQuery, now = new Date()): Promise<OperationStats> {
    const width = `${q.bucketMinutes} minutes`;
    const to = now;
    const from = new Date(now.getTime() - q.hours * 3_600_000);
    return this.db.withTenant(ctx, async (tx) => {
      const buckets = await tx.$queryRaw<BucketRow[]>`
        WITH slots AS (
          SELECT generate_series(date_bin(${width}::interval, ${from}::timestamptz, 'epoch'), ${to}::timestamptz - interval '1 millisecond', ${width}::interval) AS start
        ),
        ops AS (
          SELECT date_bin(${width}::interval, o."createdAt", 'epoch') AS start, o."state"::text AS state
          FROM "TerminalOperation" o
          WHERE o."createdAt" >= ${from}::timestamptz AND o."createdAt" < ${to}::timestamptz
        ),
        offline AS (
          SELECT date_bin(${width}::interval, e."createdAt", 'epoch') AS start, count(*) AS n
          FROM "DomainEvent" e
          WHERE e."type" = 'terminal.offline' AND e."createdAt" >= ${from}::timestamptz AND e."createdAt" < ${to}::timestamptz
          GROUP BY 1
        )
        SELECT s.start,
               count(ops.state) AS total,
               count(*) FILTER (WHERE ops.state = 'APPROVED') AS approved,
               count(*) FILTER (WHERE ops.state = 'DECLINED') AS declined,
               count(*) FILTER (WHERE ops.state = 'FAILED') AS failed,
               count(*) FILTER (WHERE ops.state = 'UNKNOWN') AS unknown,
               coalesce(max(offline.n), 0) AS offline
        FROM slots s
        LEFT JOIN ops ON ops.start = s.start
        LEFT JOIN offline ON offline.start = s.start
        GROUP BY s.start
        ORDER BY s.start`;
      const timings = await tx.$queryRaw<TimingRow[]>`
        SELECT date_bin(${width}::interval, o."createdAt", 'epoch') AS start,
               lower(t."protocol"::text) AS protocol,
               count(*) AS finished,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o."completedAt" - o."createdAt") * 1000) AS p50,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM o."completedAt" - o."createdAt") * 1000) AS p99
        FROM "TerminalOperation" o
        JOIN "Terminal" t ON t."tenantId" = o."tenantId" AND t."id" = o."terminalId"
        WHERE o."createdAt" >= ${from}::timestamptz AND o."createdAt" < ${to}::timestamptz
          AND o."completedAt" IS NOT NULL AND o."state"::text = ANY(${FINISHED})
        GROUP BY 1, 2
        ORDER BY 1, 2`;
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        bucketMinutes: q.bucketMinutes,
        buckets: buckets.map((b) => {
          const [approved, declined, failed] = [Number(b.approved), Number(b.declined), Number(b.failed)];
          const decided = approved + declined + failed;
          return {
            start: b.start.toISOString(),
            total: Number(b.total),
            approved,
            declined,
            failed,
            unknown: Number(b.unknown),
            approvalRate: decided === 0 ? null : approved / decided,
            perMinute: Number(b.total) / q.bucketMinutes,
            terminalsWentOffline: Number(b.offline),
          };
        }),
        timings: timings.map((t) => ({
          start: t.start.toISOString(),
          protocol: t.protocol,
          finished: Number(t.finished),
          p50Ms: Math.round(Number(t.p50)),
          p99Ms: Math.round(Number(t.p99)),
        })),
      };
    });
  }
}

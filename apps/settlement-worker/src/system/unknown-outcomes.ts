import { Inject, Injectable } from '@nestjs/common';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { Logger, Registry } from '@payorch/logging';
import { WALLET_PERSON_ERROR_CODES } from '@payorch/wallet-payments';

import { REGISTRY } from '../health/health.controller';
import { DATABASE, LOGGER, WORKER_CONFIG } from '../tokens';
import { type UnknownOutcomeCount, type UnknownOutcomeKind, type UnknownOutcomeMetrics, unknownOutcomeMetrics } from '../worker-metrics';
import { type ScrapeCache, type ScrapeCacheOptions, scrapedMetrics } from './scrape-cache';

/** A read serves the scrapes of this long after it started: several Prometheus servers, or a dashboard, cost one. */
export const UNKNOWN_OUTCOMES_CACHE_MS = 5_000;
/** How long a scrape waits for a read in flight before it answers with the previous values (scrape timeouts are ~10 s). */
export const UNKNOWN_OUTCOMES_WAIT_MS = 3_000;

/**
 * One read of `payorch_unknown_outcome_counts` (SECURITY DEFINER, cross-tenant, counts and ages only: the migrations
 * `added_unknown_outcome_counts` and `counted_another_device_as_needing_human` say what each kind counts): one row per
 * kind, also when it has none.
 */
export async function readUnknownOutcomes(db: Database, recoveryMaxAttempts: number): Promise<UnknownOutcomeCount[]> {
  const rows = await db.prisma.$queryRaw<Array<{ kind: UnknownOutcomeKind; unknown: bigint; needingHuman: bigint; oldestSeconds: number }>>`
    SELECT * FROM payorch_unknown_outcome_counts(${recoveryMaxAttempts}::int, ${[...WALLET_PERSON_ERROR_CODES]}::text[])`;
  return rows.map((row) => ({ kind: row.kind, unknown: Number(row.unknown), needingHuman: Number(row.needingHuman), oldestSeconds: row.oldestSeconds }));
}

/** The gauges of `unknownOutcomeMetrics` on `registry`, fed by `read` through a ScrapeCache. */
export function watchUnknownOutcomes(
  registry: Registry,
  read: () => Promise<readonly UnknownOutcomeCount[]>,
  options: Omit<ScrapeCacheOptions, 'onFailure'> & { logger?: Logger },
): { metrics: UnknownOutcomeMetrics; cache: ScrapeCache<readonly UnknownOutcomeCount[]> } {
  return scrapedMetrics(read, (current) => unknownOutcomeMetrics(registry, current), { ...options, what: 'unknown-outcome counts' });
}

/**
 * The worker's gauges of payments whose outcome is unknown (`payorch_unknown_outcomes`,
 * `payorch_unknown_outcomes_needing_human`, `payorch_unknown_outcome_oldest_seconds`, by kind), read from PostgreSQL
 * when /metrics is scraped. An operation needs a person once its recovery attempts reach RECOVERY_MAX_ATTEMPTS, the
 * budget of this worker's recovery sweep, or from the first attempt that found its terminal reaching another device than
 * the one its command went to (flagged `another_device`: migration `counted_another_device_as_needing_human`). What to
 * do about them: docs/runbooks/unknown-outcomes.md.
 */
@Injectable()
export class UnknownOutcomeGauges {
  readonly metrics: UnknownOutcomeMetrics;

  constructor(
    @Inject(DATABASE) db: Database,
    @Inject(WORKER_CONFIG) config: WorkerConfig,
    @Inject(LOGGER) logger: Logger,
    @Inject(REGISTRY) registry: Registry,
  ) {
    this.metrics = watchUnknownOutcomes(registry, () => readUnknownOutcomes(db, config.RECOVERY_MAX_ATTEMPTS), {
      ttlMs: UNKNOWN_OUTCOMES_CACHE_MS,
      waitMs: UNKNOWN_OUTCOMES_WAIT_MS,
      logger,
    }).metrics;
  }
}

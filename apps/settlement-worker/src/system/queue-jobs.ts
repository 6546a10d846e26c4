import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';

import { QUEUES } from '@payorch/domain';
import type { Logger, Registry } from '@payorch/logging';

import { REGISTRY } from '../health/health.controller';
import { LOGGER } from '../tokens';
import { QUEUE_JOB_STATES, type QueueJobCount, type QueueJobMetrics, queueJobMetrics, type QueueJobState } from '../worker-metrics';
import { type ScrapeCache, type ScrapeCacheOptions, scrapedMetrics } from './scrape-cache';

/** A read serves the scrapes of this long after it started: several Prometheus servers, or a dashboard, cost one. */
export const QUEUE_JOBS_CACHE_MS = 5_000;
/** How long a scrape waits for a read in flight before it answers with the previous values (scrape timeouts are ~10 s). */
export const QUEUE_JOBS_WAIT_MS = 3_000;

/** The job counts of every queue by state: one getJobCounts per queue, all queues at once. */
export async function readQueueJobs(queues: readonly Queue[]): Promise<QueueJobCount[]> {
  return Promise.all(
    queues.map(async (queue) => {
      const counts = await queue.getJobCounts(...QUEUE_JOB_STATES);
      return { queue: queue.name, counts: Object.fromEntries(QUEUE_JOB_STATES.map((state) => [state, counts[state] ?? 0])) as Record<QueueJobState, number> };
    }),
  );
}

/** The metrics of `queueJobMetrics` on `registry`, fed by `read` through a ScrapeCache. */
export function watchQueueJobs(
  registry: Registry,
  read: () => Promise<readonly QueueJobCount[]>,
  options: Omit<ScrapeCacheOptions, 'onFailure'> & { logger?: Logger },
): { metrics: QueueJobMetrics; cache: ScrapeCache<readonly QueueJobCount[]> } {
  return scrapedMetrics(read, (current) => queueJobMetrics(registry, current), { ...options, what: 'queue job counts' });
}

/**
 * The worker's gauge of jobs per queue and state (`payorch_queue_jobs{queue,state}`), read from Redis when /metrics is
 * scraped, through the app's own queues (the `bull` connection, which waits out a Redis outage: hence the bounded wait).
 * A failed job used up its attempts and waits for an operator: every job of these queues resumes from its PostgreSQL
 * rows, so `npm run admin -- jobs retry` is safe once the cause is fixed (docs/runbooks/production.md).
 */
@Injectable()
export class QueueJobGauges {
  readonly metrics: QueueJobMetrics;

  constructor(
    @InjectQueue(QUEUES.campaigns) campaigns: Queue,
    @InjectQueue(QUEUES.operationsRecovery) recovery: Queue,
    @InjectQueue(QUEUES.settlement) settlement: Queue,
    @InjectQueue(QUEUES.system) system: Queue,
    @InjectQueue(QUEUES.walletPayments) wallet: Queue,
    @InjectQueue(QUEUES.webhooks) webhooks: Queue,
    @Inject(LOGGER) logger: Logger,
    @Inject(REGISTRY) registry: Registry,
  ) {
    // Every queue of QUEUES: one added there and not here fails to compile.
    const queues = {
      [QUEUES.campaigns]: campaigns,
      [QUEUES.operationsRecovery]: recovery,
      [QUEUES.settlement]: settlement,
      [QUEUES.system]: system,
      [QUEUES.walletPayments]: wallet,
      [QUEUES.webhooks]: webhooks,
    } satisfies Record<(typeof QUEUES)[keyof typeof QUEUES], Queue>;
    const all = Object.values(queues);
    this.metrics = watchQueueJobs(registry, () => readQueueJobs(all), { ttlMs: QUEUE_JOBS_CACHE_MS, waitMs: QUEUE_JOBS_WAIT_MS, logger }).metrics;
  }
}

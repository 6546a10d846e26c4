import { Counter, Gauge, Histogram } from 'prom-client';

import type { Registry } from '@payorch/logging';

export function workerMetrics(registry: Registry) {
  return {
    jobs: new Counter({
      name: 'payorch_jobs_total',
      help: 'Jobs processed by queue, name and outcome.',
      labelNames: ['queue', 'name', 'outcome'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'payorch_job_duration_seconds',
      help: 'Job processing time.',
      labelNames: ['queue', 'name'] as const,
      registers: [registry],
    }),
    webhookRequeued: new Counter({
      name: 'payorch_webhook_deliveries_requeued_total',
      help: 'Webhook deliveries PENDING/RETRYING past their due time by WEBHOOK_REQUEUE_AFTER_MS that had no job left to run them, queued again by the webhook sweep (docs/webhooks.md), by reason: missing (Redis lost the job, or it was removed), failed (a non-outage error on its one attempt, or stalled past its limit), completed (finished before the delivery was pending again), orphaned (a job hash in no state).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  };
}
export type WorkerMetrics = ReturnType<typeof workerMetrics>;

/** A kind of payment whose outcome can be unknown: a terminal operation, a wallet payment, a wallet capture / cancel / refund. */
export type UnknownOutcomeKind = 'operation' | 'wallet_payment' | 'wallet_operation';

/** Of one kind, across tenants: rows UNKNOWN, those of them waiting for a person, and how long the oldest has been in doubt. */
export interface UnknownOutcomeCount {
  readonly kind: UnknownOutcomeKind;
  readonly unknown: number;
  readonly needingHuman: number;
  /** 0 when there is none. */
  readonly oldestSeconds: number;
}

/**
 * Payments whose outcome is unknown, across tenants, computed when scraped (system/unknown-outcomes.ts;
 * docs/runbooks/unknown-outcomes.md). `current()` answers the latest counts, one read shared by the three gauges of a
 * scrape and cached between scrapes, or undefined before any read succeeded (the gauges then show no value): after a
 * failed read the gauges keep what they showed, and `readFailures` counts it. Every worker reports the same numbers
 * (they are the database's): alert on `max by (kind)`, never on a sum over instances.
 */
export function unknownOutcomeMetrics(registry: Registry, current: () => Promise<readonly UnknownOutcomeCount[] | undefined>) {
  const gauge = (name: string, help: string, value: (count: UnknownOutcomeCount) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['kind'] as const,
      registers: [registry],
      async collect() {
        for (const count of (await current()) ?? []) this.set({ kind: count.kind }, value(count));
      },
    });
  return {
    unknown: gauge(
      'payorch_unknown_outcomes',
      'Payments whose outcome is unknown (state UNKNOWN: they may have been charged), across tenants, by kind (operation: terminal operation; wallet_payment; wallet_operation: capture / cancel / refund).',
      (count) => count.unknown,
    ),
    needingHuman: gauge(
      'payorch_unknown_outcomes_needing_human',
      'Of payorch_unknown_outcomes, those the system will not resolve by itself: an operation whose recovery gave up (RECOVERY_MAX_ATTEMPTS) or met another device than the one it was sent to, a wallet payment or operation whose error is ORDER_NOT_PROVEN or ORDER_MISMATCH. Resolve them by hand (docs/runbooks/unknown-outcomes.md).',
      (count) => count.needingHuman,
    ),
    oldestSeconds: gauge(
      'payorch_unknown_outcome_oldest_seconds',
      'Age of the oldest payment of the kind whose outcome is unknown, 0 when there is none: an operation since it became UNKNOWN, a wallet payment since it was created, a wallet operation since it was sent.',
      (count) => count.oldestSeconds,
    ),
    readFailures: new Counter({
      name: 'payorch_unknown_outcomes_read_failures_total',
      help: 'Reads of the unknown-outcome counts that failed (error) or that a scrape stopped waiting for (timeout): the payorch_unknown_outcome* gauges kept their previous values.',
      labelNames: ['reason'] as const,
      registers: [registry],
      // The scrape's own read (shared with the gauges): its failure is in the same answer.
      async collect() {
        await current();
      },
    }),
  };
}
export type UnknownOutcomeMetrics = ReturnType<typeof unknownOutcomeMetrics>;

/** The states `payorch_queue_jobs` reports (BullMQ's getJobCounts types): completed jobs are left out (removed by count). */
export const QUEUE_JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed'] as const;
export type QueueJobState = (typeof QUEUE_JOB_STATES)[number];

/** One queue's job counts by state. */
export interface QueueJobCount {
  readonly queue: string;
  readonly counts: Readonly<Record<QueueJobState, number>>;
}

/**
 * Jobs of every queue by state, read from Redis when scraped (system/queue-jobs.ts). `current()` answers the latest
 * counts, one read shared by the gauge and the counter of a scrape and cached between scrapes, or undefined before any
 * read succeeded: after a failed read the gauge keeps what it showed, and `readFailures` counts it. `failed` is the
 * failed set: jobs that used up their attempts, kept for an operator to retry (`npm run admin -- jobs failed|retry`).
 * Every worker reports the same numbers (they are Redis's): alert on `max by (queue, state)`, never on a sum over instances.
 */
export function queueJobMetrics(registry: Registry, current: () => Promise<readonly QueueJobCount[] | undefined>) {
  return {
    jobs: new Gauge({
      name: 'payorch_queue_jobs',
      help: 'Jobs in each BullMQ queue by state (waiting, active, delayed, prioritized, waiting-children, failed), read from Redis; failed: jobs that used up their attempts, left for an operator to retry (npm run admin -- jobs failed / jobs retry). The same on every worker: use max by (queue, state).',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
      async collect() {
        for (const { queue, counts } of (await current()) ?? []) {
          for (const state of QUEUE_JOB_STATES) this.set({ queue, state }, counts[state]);
        }
      },
    }),
    readFailures: new Counter({
      name: 'payorch_queue_jobs_read_failures_total',
      help: 'Reads of the queue job counts that failed (error) or that a scrape stopped waiting for (timeout): payorch_queue_jobs kept its previous values.',
      labelNames: ['reason'] as const,
      registers: [registry],
      // The scrape's own read (shared with the gauge): its failure is in the same answer.
      async collect() {
        await current();
      },
    }),
  };
}
export type QueueJobMetrics = ReturnType<typeof queueJobMetrics>;

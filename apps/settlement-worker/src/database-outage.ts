import { DelayedError, type Job } from 'bullmq';

import { isDatabaseUnavailable } from '@payorch/db';
import type { Logger } from '@payorch/logging';

/** How long a job waits when PostgreSQL is unavailable before it runs again. */
export const DATABASE_OUTAGE_DELAY_MS = 5_000;

/**
 * A job that failed because PostgreSQL is unavailable goes back to the delayed set and runs again
 * later, without spending one of its attempts (bullmq "manually delay a job": moveToDelayed, then
 * DelayedError). Any other error is rethrown as it is. Without a lock token (or if Redis is gone too)
 * the error is rethrown: the job then fails as an ordinary attempt and BullMQ's backoff applies.
 */
export async function deferOnDatabaseOutage(job: Job, token: string | undefined, error: unknown, logger: Logger): Promise<never> {
  if (!token || !isDatabaseUnavailable(error)) throw error;
  try {
    await job.moveToDelayed(Date.now() + DATABASE_OUTAGE_DELAY_MS, token);
  } catch {
    throw error;
  }
  logger.warn({ jobId: job.id, job: job.name, delayMs: DATABASE_OUTAGE_DELAY_MS }, 'job postponed: database unavailable');
  throw new DelayedError();
}

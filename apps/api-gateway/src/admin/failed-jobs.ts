import { ErrorCode, type Job, Queue } from 'bullmq';

import { ApiError, QUEUES } from '@payorch/domain';
import { bullPrefix, type RedisClient } from '@payorch/redis';

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** Every queue of the deployment (libs/domain QUEUES), sorted: what `--queue` accepts. */
export const QUEUE_NAMES: readonly QueueName[] = Object.values(QUEUES).sort();

export const isQueueName = (name: string): name is QueueName => (QUEUE_NAMES as readonly string[]).includes(name);

/** How many jobs `retryAll` moves back at once (each is its own script call, then its audit row). */
export const RETRY_BATCH = 50;

/**
 * A failed job as an operator sees it: what it is, why it failed, and its tenant, nothing else of its data (payloads
 * carry ids only, but an operator has no use for the others and should not copy them around).
 */
export interface FailedJob {
  id: string;
  name: string;
  failedReason: string;
  attemptsMade: number;
  finishedOn: string | null;
  tenantId?: string;
}

/**
 * Writes the audit row of one job just moved back to waiting (the CLI: AdminService.auditJobRetry, actor "admin"): in
 * its tenant's audit log, or, for a deployment-wide job (no tenantId in its data: sweeps, schedules), in the platform
 * audit log (the rows of no tenant). A rejection is reported, not thrown.
 */
export type JobRetryAudit = (queue: QueueName, job: FailedJob) => Promise<void>;

/**
 * A job the command moved back to waiting, and whether its retry is recorded: `written` in its tenant's audit log (or
 * the platform's, for a job of no tenant: no `tenantId`); `failed`: retried, but its audit row could not be written
 * (`auditError` says why).
 */
export interface RetriedJob {
  id: string;
  name: string;
  tenantId?: string;
  audit: 'written' | 'failed';
  auditError?: string;
}

export interface RetryResult {
  queue: QueueName;
  /** How many jobs were moved back (the length of `jobs`). */
  retried: number;
  jobs: RetriedJob[];
  /** `retryAll` only: why it stopped before the last failed job (an audit row not written, an error); absent when it did not. */
  stopped?: string;
}

function toFailedJob(job: Job): FailedJob {
  const tenantId: unknown = (job.data as { tenantId?: unknown } | null)?.tenantId;
  return {
    id: job.id ?? '',
    name: job.name,
    failedReason: job.failedReason,
    attemptsMade: job.attemptsMade,
    finishedOn: job.finishedOn === undefined ? null : new Date(job.finishedOn).toISOString(),
    ...(typeof tenantId === 'string' ? { tenantId } : {}),
  };
}

/**
 * The failed sets of the deployment's BullMQ queues (jobs that used up their attempts), read and retried by the admin
 * CLI on the workers' keys: `bullPrefix(REDIS_KEY_PREFIX)`, as the worker's BullModule. A retry moves a job back to
 * waiting with its attempts counted from zero, so it gets its whole retry policy again; it is safe because every job
 * of these queues resumes from its PostgreSQL rows (a job that finds its work done changes nothing).
 *
 * Every retry is audited: right after the job moved back (and only then: a job found no longer failed is neither
 * moved nor audited), `audit` writes it to its tenant's audit log, or to the platform's for a job of no tenant. A write
 * that fails does not undo the retry (the job may already be running); the result marks the job `failed` for the
 * caller to report.
 */
export class FailedJobs {
  private readonly queues = new Map<QueueName, Queue>();

  /** `connection` stays the caller's: close() leaves it open. */
  constructor(
    private readonly connection: RedisClient,
    private readonly keyPrefix: string,
  ) {}

  /** The newest `limit` failed jobs of `queue`, and how many there are in all. */
  async list(queue: QueueName, limit: number): Promise<{ queue: QueueName; failed: number; jobs: FailedJob[] }> {
    const q = this.queue(queue);
    const [failed, jobs] = await Promise.all([q.getFailedCount(), q.getFailed(0, limit - 1)]);
    return { queue, failed, jobs: jobs.map(toFailedJob) };
  }

  /** Moves one failed job back to waiting and audits it; an unknown id, or a job that is not failed, is an error. */
  async retry(queue: QueueName, id: string, audit: JobRetryAudit): Promise<RetryResult> {
    const q = this.queue(queue);
    const job = await q.getJob(id);
    if (!job) throw new ApiError('NOT_FOUND', `job ${id} was not found in queue ${queue}`, { queue, id });
    const state = await job.getState();
    if (state !== 'failed') throw new ApiError('CONFLICT', `job ${id} of queue ${queue} is ${state}, not failed`);
    const failed = toFailedJob(job);
    if (!(await moveBack(job))) throw new ApiError('CONFLICT', `job ${id} of queue ${queue} is no longer failed (retried or removed meanwhile)`);
    return { queue, retried: 1, jobs: [await audited(queue, failed, audit)] };
  }

  /**
   * Moves every job that is failed now back to waiting, oldest first, and audits each. The ids are taken once at the
   * start: a job that fails again meanwhile stays failed (a cause not fixed is not retried in a loop), and one that
   * left the failed set meanwhile (retried by someone else, removed) is skipped: not counted, not audited. It stops
   * after the batch in which an audit row could not be written (no more retries that no audit log would show) or an
   * error met a job (Redis gone): `stopped` says why, and `jobs` still lists every job moved back before.
   */
  async retryAll(queue: QueueName, audit: JobRetryAudit): Promise<RetryResult> {
    const q = this.queue(queue);
    const ids = await q.getRanges(['failed'], 0, -1, true);
    const jobs: RetriedJob[] = [];
    for (let i = 0; i < ids.length; i += RETRY_BATCH) {
      // Settled, not Promise.all: every job of the batch moved back is listed (and audited) even when another one failed.
      const batch = await Promise.allSettled(ids.slice(i, i + RETRY_BATCH).map((id) => retryIfFailed(q, id, audit)));
      for (const outcome of batch) if (outcome.status === 'fulfilled' && outcome.value) jobs.push(outcome.value);
      const error = batch.find((outcome) => outcome.status === 'rejected');
      const left = Math.max(0, ids.length - i - RETRY_BATCH);
      if (error) {
        const reason = error.reason instanceof Error ? error.reason.message : String(error.reason);
        return {
          queue,
          retried: jobs.length,
          jobs,
          stopped: `stopped at an error (${reason}): the jobs not listed were not retried (the one the error met may have been), nor were the ${left} after this batch`,
        };
      }
      if (left > 0 && jobs.some((job) => job.audit === 'failed')) {
        return {
          queue,
          retried: jobs.length,
          jobs,
          stopped: `stopped after this batch, as an audit row could not be written: the ${left} job(s) after it were left failed`,
        };
      }
    }
    return { queue, retried: jobs.length, jobs };
  }

  /** Closes the queues it opened (not the connection). */
  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }

  private queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: bullPrefix(this.keyPrefix) });
      // A connection error also fails the command that met it, which is how the caller learns of it.
      queue.on('error', () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }
}

/** Retries job `id` if it is still failed, and audits it: null when it is gone or no longer in the failed set. */
async function retryIfFailed(queue: Queue, id: string, audit: JobRetryAudit): Promise<RetriedJob | null> {
  const job = await queue.getJob(id);
  if (!job) return null;
  const failed = toFailedJob(job);
  if (!(await moveBack(job))) return null;
  return audited(queue.name as QueueName, failed, audit);
}

/**
 * Moves a failed job back to waiting, its attempts counted afresh: false when it is gone or no longer failed. It
 * clears the failure on `job` too (failedReason null): read what the audit needs before.
 */
async function moveBack(job: Job): Promise<boolean> {
  try {
    await job.retry('failed', { resetAttemptsMade: true });
    return true;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === ErrorCode.JobNotExist || code === ErrorCode.JobNotInState) return false;
    throw error;
  }
}

/**
 * Writes the audit row of a job just moved back, as it was when it failed (`toFailedJob` before the retry): every job,
 * in its tenant's log or, of no tenant, in the platform's.
 */
async function audited(queue: QueueName, failed: FailedJob, audit: JobRetryAudit): Promise<RetriedJob> {
  const retried = { id: failed.id, name: failed.name, ...(failed.tenantId === undefined ? {} : { tenantId: failed.tenantId }) };
  try {
    await audit(queue, failed);
    return { ...retried, audit: 'written' };
  } catch (error) {
    return { ...retried, audit: 'failed', auditError: error instanceof Error ? error.message : String(error) };
  }
}

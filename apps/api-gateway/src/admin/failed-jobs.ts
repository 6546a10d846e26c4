import { ErrorCode, type Job, Queue } from 'bullmq';

import { ApiError, QUEUES } from '@payorch/domain';
import { bullPrefix, type RedisClient } from '@payorch/redis';

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** Every queue of the deployment (libs/domain QUEUES), sorted: what `--queue` accepts. */
export const QUEUE_NAMES: readonly QueueName[] = Object.values(QUEUES).sort();

export const isQueueName = (name: string): name is QueueName => (QUEUE_NAMES as readonly string[]).includes(name);

/** How many jobs `retryAll` moves back at once (each is its own script call). */
const RETRY_BATCH = 50;

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

  /** Moves one failed job back to waiting; an unknown id, or a job that is not failed, is an error. */
  async retry(queue: QueueName, id: string): Promise<{ queue: QueueName; retried: number }> {
    const q = this.queue(queue);
    const job = await q.getJob(id);
    if (!job) throw new ApiError('NOT_FOUND', `job ${id} was not found in queue ${queue}`, { queue, id });
    const state = await job.getState();
    if (state !== 'failed') throw new ApiError('CONFLICT', `job ${id} of queue ${queue} is ${state}, not failed`);
    await job.retry('failed', { resetAttemptsMade: true });
    return { queue, retried: 1 };
  }

  /**
   * Moves every job that is failed now back to waiting, oldest first. The ids are taken once at the start: a job that
   * fails again meanwhile stays failed (a cause not fixed is not retried in a loop), and one that left the failed set
   * meanwhile (retried by someone else, removed) is skipped and not counted.
   */
  async retryAll(queue: QueueName): Promise<{ queue: QueueName; retried: number }> {
    const q = this.queue(queue);
    const ids = await q.getRanges(['failed'], 0, -1, true);
    let retried = 0;
    for (let i = 0; i < ids.length; i += RETRY_BATCH) {
      const moved = await Promise.all(ids.slice(i, i + RETRY_BATCH).map((id) => retryIfFailed(q, id)));
      retried += moved.filter(Boolean).length;
    }
    return { queue, retried };
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

/** Retries job `id` if it is still failed: false when it is gone or no longer in the failed set. */
async function retryIfFailed(queue: Queue, id: string): Promise<boolean> {
  const job = await queue.getJob(id);
  if (!job) return false;
  try {
    await job.retry('failed', { resetAttemptsMade: true });
    return true;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === ErrorCode.JobNotExist || code === ErrorCode.JobNotInState) return false;
    throw error;
  }
}

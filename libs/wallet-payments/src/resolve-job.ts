import type { JobsOptions } from 'bullmq';

import type { JobData } from '@payorch/domain';

export const RESOLVE_JOB = 'wallet_payment.resolve' as const;
export const SWEEP_JOB = 'wallet_payment.sweep' as const;
export const SWEEP_SCHEDULER_ID = 'wallet_payment.sweep';

/** One resolution job per payment (BullMQ ignores an add with an existing id): idempotent by construction. */
export const resolveJobId = (paymentId: string) => `wallet_payment.resolve-${paymentId}`;

export interface ResolvePolicy {
  readonly delayMs: number;
  readonly attempts: number;
  readonly backoffMs: number;
}

export function resolveJob(
  data: JobData[typeof RESOLVE_JOB],
  policy: ResolvePolicy,
): { name: typeof RESOLVE_JOB; data: JobData[typeof RESOLVE_JOB]; opts: JobsOptions } {
  return {
    name: RESOLVE_JOB,
    data: { paymentId: data.paymentId, tenantId: data.tenantId },
    opts: {
      jobId: resolveJobId(data.paymentId),
      delay: policy.delayMs,
      attempts: policy.attempts,
      backoff: { type: 'exponential', delay: policy.backoffMs },
      removeOnComplete: { count: 1000 },
      removeOnFail: false,
    },
  };
}

/** The subset of a BullMQ Queue this needs (so producers can pass their own Queue instance). */
export interface ResolveQueue {
  getJob(
    id: string,
  ): Promise<
    | { getState(): Promise<string>; retry(state?: 'failed' | 'completed', opts?: { resetAttemptsMade?: boolean }): Promise<void>; remove(): Promise<void> }
    | undefined
  >;
  add(name: string, data: unknown, opts: JobsOptions): Promise<unknown>;
}

/**
 * Makes sure a resolution job for the payment is waiting, delayed or running: adds it, retries it
 * when it failed earlier (its attempts ran out), or replaces a completed one. Never two at once.
 */
export async function ensureResolveJob(queue: ResolveQueue, data: JobData[typeof RESOLVE_JOB], policy: ResolvePolicy): Promise<'added' | 'retried' | 'exists'> {
  const job = resolveJob(data, policy);
  const existing = await queue.getJob(job.opts.jobId!);
  if (existing) {
    const state = await existing.getState();
    if (state === 'failed') {
      await existing.retry('failed', { resetAttemptsMade: true });
      return 'retried';
    }
    if (state !== 'completed') return 'exists';
    await existing.remove();
  }
  await queue.add(job.name, job.data, job.opts);
  return 'added';
}

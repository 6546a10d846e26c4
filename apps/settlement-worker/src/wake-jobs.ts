import type { Queue } from 'bullmq';

/**
 * Wakes a parked job: one that waits for something another job or an operator changes (a concurrency slot, a paused
 * campaign) waits in the delayed set with a long fallback delay, and whoever changes it promotes it here instead of
 * the job re-running on a short timer to look (the settlement's TenantSlots and the webhooks' DeliverySlots wake the
 * same way; campaign steps through ParkedSteps). False when the job is not delayed (any more: its fallback delay ran
 * out, it runs, it ended and was removed) — it needs no wake, and the caller may pass the turn on.
 */
export async function wakeJob(queue: Queue, jobId: string): Promise<boolean> {
  const job = await queue.getJob(jobId);
  if (job === undefined) return false;
  return job.promote().then(
    () => true,
    () => false,
  );
}

/** Wakes every job of `jobIds` that is parked (`batch` at a time: a resumed campaign wakes a whole wave); returns how many were. */
export async function wakeJobs(queue: Queue, jobIds: readonly string[], batch = 200): Promise<number> {
  let woken = 0;
  for (let i = 0; i < jobIds.length; i += batch) {
    const results = await Promise.all(jobIds.slice(i, i + batch).map((id) => wakeJob(queue, id).catch(() => false)));
    woken += results.filter(Boolean).length;
  }
  return woken;
}

/**
 * Every queue and job name with its payload type, shared by producers and consumers.
 * Payloads carry ids only: BullMQ stores job data in clear text in Redis.
 */
export const QUEUES = {
  system: 'system',
} as const;

export interface JobData {
  /** Proves the queue wiring end to end: the worker records that it ran. */
  'system.ping': { requestedAt: string; requestId: string };
}

export type JobName = keyof JobData;

export const JOB_NAMES: readonly JobName[] = ['system.ping'];

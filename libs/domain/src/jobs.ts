/**
 * Every queue and job name with its payload type, shared by producers and consumers.
 * Payloads carry ids only: BullMQ stores job data in clear text in Redis.
 */
export const QUEUES = {
  /** Fleet campaigns (job names and payloads in @payorch/campaigns). */
  campaigns: 'campaigns',
  operationsRecovery: 'operations-recovery',
  settlement: 'settlement',
  system: 'system',
  walletPayments: 'wallet-payments',
  webhooks: 'webhooks',
} as const;

export interface JobData {
  /** Resolves one UNKNOWN operation through `operation.recover` on its terminal (jobId `recover-<operationId>-<attempt>`). */
  'operation.recover': { tenantId: string; operationId: string };
  /** Repeatable: SENT/IN_PROGRESS past the horizon → UNKNOWN, then `operation.recover` for UNKNOWN ones due a retry. */
  'operation.recovery_sweep': Record<string, never>;
  /** Closes one terminal's day and reconciles it (jobId `settlement:<terminalId>:<businessDate>`; runKey is Settlement.runKey). */
  'settlement.run': {
    tenantId: string;
    terminalId: string;
    businessDate: string;
    runKey: string;
    trigger: 'schedule' | 'manual';
    /** Set by the job itself: the step reached, and when the first attempt started (give-up window). */
    step?: 'start' | 'close' | 'reconcile' | 'done';
    firstAttemptAt?: string;
    retries?: number;
  };
  /** Fired by a schedule's BullMQ job scheduler: enqueues `settlement.run` for every terminal it covers. */
  'settlement.fire': { tenantId: string; scheduleId: string };
  /** Repeatable: re-adds `settlement.run` (same job id) for PENDING/RUNNING settlements whose job is gone (payorch_unfinished_settlements). */
  'settlement.sweep': Record<string, never>;
  /** Repeatable and on demand: turns SettlementSchedule rows into BullMQ job schedulers. */
  'settlement.sync': Record<string, never>;
  /** Proves the queue wiring end to end: the worker records that it ran. */
  'system.ping': { requestedAt: string; requestId: string };
  /** Resolves one wallet payment whose outcome is pending (unknown, in process, requires action) through Assist's order state. */
  'wallet_payment.resolve': { paymentId: string; tenantId: string };
  /** Repeatable: re-enqueues `wallet_payment.resolve` for payments left UNKNOWN/PROCESSING (payorch_unresolved_wallet_payments). */
  'wallet_payment.sweep': Record<string, never>;
  /** Sends one WebhookDelivery (jobId = delivery id); retried by the job itself with capped exponential backoff. */
  'webhook.deliver': { tenantId: string; deliveryId: string };
  /** Creates the deliveries of one DomainEvent for the matching enabled endpoints (jobId = the event id). */
  'webhook.fanout': { tenantId: string; eventId: string };
  /** Repeatable: fan-out for events past the watermark that a matching endpoint has no delivery for yet. */
  'webhook.sweep': Record<string, never>;
}

export type JobName = keyof JobData;

export const JOB_NAMES: readonly JobName[] = [
  'operation.recover',
  'operation.recovery_sweep',
  'settlement.fire',
  'settlement.run',
  'settlement.sweep',
  'settlement.sync',
  'system.ping',
  'wallet_payment.resolve',
  'wallet_payment.sweep',
  'webhook.deliver',
  'webhook.fanout',
  'webhook.sweep',
];

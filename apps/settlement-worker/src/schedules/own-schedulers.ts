import type { JobSchedulerTemplateOptions, RepeatOptions } from 'bullmq';

import type { CampaignJobName } from '@payorch/campaigns';

import type { WorkerConfig } from '@payorch/config';
import { type JobName, QUEUES } from '@payorch/domain';
import { SWEEP_JOB, SWEEP_SCHEDULER_ID } from '@payorch/wallet-payments';

import { campaignSweepScheduler } from '../campaigns/campaign-sweep';

import { RECOVERY_SWEEP_SCHEDULER_ID } from '../recovery/recovery.tokens';
import { settlementSweepScheduler } from '../settlement/settlement-sweep.service';
import { SYNC_SCHEDULER_ID } from '../settlement/settlement.processor';
import { WEBHOOK_SWEEP_SCHEDULER_ID } from '../webhooks/webhooks.tokens';

export type ReconciledQueue =
  typeof QUEUES.settlement | typeof QUEUES.operationsRecovery | typeof QUEUES.webhooks | typeof QUEUES.walletPayments | typeof QUEUES.campaigns;

export interface OwnScheduler {
  queue: ReconciledQueue;
  id: string;
  repeat: Omit<RepeatOptions, 'key'>;
  template: { name: JobName | CampaignJobName; data: Record<string, never>; opts: JobSchedulerTemplateOptions };
}

const kept = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } };

/**
 * The worker's own repeatable jobs (the sweeps and the schedule sync), the same ones each processor
 * upserts in onModuleInit. SchedulerReconciler re-creates any that Redis lost; a scheduler that
 * exists is left as its processor made it.
 */
export function ownSchedulers(config: WorkerConfig): OwnScheduler[] {
  return [
    {
      queue: QUEUES.settlement,
      id: SYNC_SCHEDULER_ID,
      repeat: { every: config.SETTLEMENT_SYNC_INTERVAL_MS },
      template: { name: 'settlement.sync', data: {}, opts: { removeOnComplete: true, removeOnFail: { count: 100 } } },
    },
    { queue: QUEUES.settlement, ...settlementSweepScheduler(config) },
    {
      queue: QUEUES.operationsRecovery,
      id: RECOVERY_SWEEP_SCHEDULER_ID,
      repeat: { every: config.RECOVERY_INTERVAL_MS },
      template: { name: 'operation.recovery_sweep', data: {}, opts: kept },
    },
    {
      queue: QUEUES.webhooks,
      id: WEBHOOK_SWEEP_SCHEDULER_ID,
      repeat: { every: config.WEBHOOK_SWEEP_INTERVAL_MS },
      template: { name: 'webhook.sweep', data: {}, opts: kept },
    },
    {
      queue: QUEUES.walletPayments,
      id: SWEEP_SCHEDULER_ID,
      repeat: { every: config.WALLET_SWEEP_INTERVAL_MS },
      template: { name: SWEEP_JOB, data: {}, opts: kept },
    },
    { queue: QUEUES.campaigns, ...campaignSweepScheduler(config) },
  ];
}

import { QUEUES } from '@payorch/domain';

/**
 * The campaign queue's jobs, shared by the gateway (producer of `campaign.run`) and the worker (its
 * processor, which adds the waves and steps as a BullMQ flow). Job ids derive from the business key, so a
 * repeated add (an API replay, a worker resuming after a crash) finds the job already there while it is open;
 * finished waves and steps are removed (their rows are the record), and one added again runs, finds its rows
 * ended and changes nothing.
 */
export const CAMPAIGN_QUEUE = QUEUES.campaigns;

export interface CampaignJobData {
  /**
   * Parent of the waves: completes the campaign once its last wave ended (added by the gateway). `started`: its first
   * wave was added (set by the run itself; and by the campaign sweep when it adds the run again under a wave already
   * started, so that the run waits for that wave instead of starting wave 0).
   */
  'campaign.run': { tenantId: string; campaignId: string; started?: boolean };
  /** Parent of one wave's steps: judges the wave and adds the next one (child of `campaign.run`). */
  'campaign.wave': { tenantId: string; campaignId: string; waveIndex: number };
  /**
   * One terminal's operation (child of its `campaign.wave`). `dispatchedOperationId`: written by the step just
   * before it dispatches that operation, so that a re-run leaves a PENDING one to the connector holding it in
   * the terminal's queue instead of dispatching it again (see CampaignRunner.follow).
   */
  'campaign.step': {
    tenantId: string;
    campaignId: string;
    targetId: string;
    dispatchedOperationId?: string;
    /**
     * Set when the step parks for a concurrency slot (it is then listed in the worker's waiting lists, ParkedSteps):
     * each later run first takes it off those lists (it is listed again if it parks again), until the dispatch of its
     * operation clears it.
     */
    parked?: boolean;
  };
  /**
   * Added by the gateway after a resume or a cancel: wakes the campaign's parked jobs (its steps and a halted wave
   * waiting on the pause, its steps waiting for a slot) so that they run now rather than after their fallback delay.
   */
  'campaign.wake': { tenantId: string; campaignId: string };
  /**
   * Repeatable (CAMPAIGN_SWEEP_INTERVAL_MS, and once at each worker start): adds again the jobs of the open campaigns
   * that Redis lost, read from their rows, retries their failed ones, and removes the jobs ended campaigns left behind
   * (apps/settlement-worker campaign-sweep.ts).
   */
  'campaign.sweep': Record<string, never>;
}

export type CampaignJobName = keyof CampaignJobData;
export const CAMPAIGN_JOB_NAMES: readonly CampaignJobName[] = ['campaign.run', 'campaign.wave', 'campaign.step', 'campaign.wake', 'campaign.sweep'];

export const campaignJobId = (campaignId: string) => `campaign-${campaignId}`;
export const waveJobId = (campaignId: string, waveIndex: number) => `campaign-${campaignId}-wave-${waveIndex}`;
export const stepJobId = (targetId: string) => `campaign-step-${targetId}`;
/** Job scheduler id of the repeatable `campaign.sweep` (no `:`: BullMQ builds `repeat:<id>:<millis>`). */
export const CAMPAIGN_SWEEP_SCHEDULER_ID = 'campaign-sweep';
/** The sweep a worker runs at its start (one at a time however many workers start: same id, removed once done). */
export const CAMPAIGN_SWEEP_START_JOB_ID = 'campaign-sweep-start';
/** One wake per resume or cancel (`eventId`: that transition's `campaign.resumed` / `campaign.canceled` event). */
export const campaignWakeJobId = (campaignId: string, eventId: string) => `campaign-${campaignId}-wake-${eventId}`;

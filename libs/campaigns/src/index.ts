/**
 * @payorch/campaigns — fleet campaigns (docs/campaigns.md): the rollout rules (pure: waves, maintenance windows,
 * retries, failure threshold, ETA), the terminal selector (SQL over the tenant's terminals and stores) and the
 * one writer of `Campaign.state`, `CampaignWave.state` and `CampaignTarget.state` (transition.ts).
 */
export { CAMPAIGN_JOB_NAMES, CAMPAIGN_QUEUE, type CampaignJobData, type CampaignJobName, campaignJobId, campaignWakeJobId, stepJobId, waveJobId } from './jobs';
export {
  attemptsBefore,
  type CampaignPolicy,
  DEFAULT_POLICY,
  estimateEta,
  isRetryable,
  localMinutes,
  type MaintenanceWindow,
  MAX_ATTEMPTS_BEFORE_DEADLINE,
  minutesOf,
  msUntilWindow,
  nextAttempt,
  planWaves,
  type PlannedWave,
  RETRYABLE_CODES,
  type RetryableCode,
  type RetryDecision,
  type WaveSize,
  type WaveTally,
  waveHalts,
} from './policy';
export { LABEL_KEY, LABEL_VALUE_MAX, LABELS_MAX, labelMap, selectorSql, selectorWhere, type TerminalSelector } from './selector';
export {
  CAMPAIGN_TRANSITIONS,
  type CampaignEventType,
  type CampaignTransition,
  CampaignTransitionError,
  canTransitionCampaign,
  canTransitionTarget,
  insertCampaign,
  type NewCampaign,
  type NewCampaignTarget,
  skipOpenTargets,
  TARGET_CREATED_AS,
  TARGET_TRANSITIONS,
  type TargetColumns,
  type TargetTransition,
  transitionCampaign,
  transitionTarget,
  transitionWave,
  WAVE_TRANSITIONS,
  type WaveTransition,
} from './transition';

export const CAMPAIGN_RUNNER = Symbol('CAMPAIGN_RUNNER');
export const CAMPAIGN_SWEEP = Symbol('CAMPAIGN_SWEEP');

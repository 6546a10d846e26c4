export const CAMPAIGN_RUNNER = Symbol('CAMPAIGN_RUNNER');

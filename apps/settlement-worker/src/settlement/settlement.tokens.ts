export const TENANT_SLOTS = Symbol('TENANT_SLOTS');
export const SETTLEMENT_REDIS = Symbol('SETTLEMENT_REDIS');

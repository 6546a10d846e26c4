/** DI tokens for objects built from config in main.ts (never from process.env inside modules). */
export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');
export const DATABASE = Symbol('DATABASE');
export const REDIS = Symbol('REDIS');
export const LOGGER = Symbol('LOGGER');
export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');
export const SECRET_BOX = Symbol('SECRET_BOX');
/** How the gateway resolves tenant-given host names (tests inject a fake one; no test resolves real names). */
export const EGRESS_RESOLVER = Symbol('EGRESS_RESOLVER');

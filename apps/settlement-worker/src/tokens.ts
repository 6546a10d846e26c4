export const WORKER_CONFIG = Symbol('WORKER_CONFIG');
export const DATABASE = Symbol('DATABASE');
export const LOGGER = Symbol('LOGGER');
export const METRICS = Symbol('METRICS');

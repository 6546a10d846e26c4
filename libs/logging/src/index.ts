export { createLogger, REDACT_PATHS, type CreateLoggerOptions, type Logger } from './logger';
export { luhnValid, maskPan, scrubPans } from './pan';
export { authMetrics, createMetricsRegistry, httpMetrics, type Registry } from './metrics';

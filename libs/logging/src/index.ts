export { httpLogging, type HttpLoggingOptions } from './http';
export { createLogger, REDACT_PATHS, type CreateLoggerOptions, type Logger } from './logger';
export { luhnValid, maskPan, scrubPans } from './pan';
export { authMetrics, commandBusMetrics, createMetricsRegistry, egressLookupMetrics, httpMetrics, readinessMetrics, type Registry } from './metrics';

import pino, { type Logger, type LoggerOptions } from 'pino';

import { scrubPans } from './pan';

/**
 * Keys whose values never reach a log line, at any of the first three levels of a log object.
 * Job payloads and log lines carry ids; these paths are the safety net, not the design.
 */
const SECRET_KEYS = [
  'authorization',
  'password',
  'newPassword',
  'adminPassword',
  'pin',
  'pinBlock',
  'pan',
  'cardNumber',
  'track2',
  'cvc',
  'cvv',
  'token',
  'enrollmentToken',
  'credential',
  'apiKey',
  'secret',
  'salt',
  'privateKey',
  'paymentToken',
  'plainTextPan',
  'cookie',
];

export const REDACT_PATHS: string[] = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["idempotency-key"]',
];

export interface CreateLoggerOptions {
  name: string;
  level?: LoggerOptions['level'];
  /** Where to write; defaults to stdout. Tests pass a stream to assert on output. */
  destination?: pino.DestinationStream;
  base?: Record<string, unknown>;
}

/** The one way payorch creates loggers: JSON lines, redaction, and PAN scrubbing of messages. */
export function createLogger(options: CreateLoggerOptions): Logger {
  const config: LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    base: { service: options.name, ...options.base },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: {
      // Free-text messages may quote a device's display or an error string: scrub card numbers there too.
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubPans(a) : a)) as typeof args;
        method.apply(this, scrubbed);
      },
    },
    formatters: { level: (label) => ({ level: label }) },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}

export type { Logger };

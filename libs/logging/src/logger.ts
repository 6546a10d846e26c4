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
  // Credential headers as client libraries spell them: pino's paths are case-sensitive, and only Node's incoming
  // `req.headers` are lower case. An outgoing request's headers (the agent's `Authorization: Bearer pac_…`, a fetch
  // option) logged whole would keep the secret.
  'Authorization',
  'Cookie',
  'proxy-authorization',
  'Proxy-Authorization',
  'set-cookie',
  'Set-Cookie',
  'x-api-key',
  'X-Api-Key',
];

/** `key` under `parent` as a pino path: a header name with a dash goes in brackets (`*["set-cookie"]`). */
const under = (parent: string, key: string) => (/^[A-Za-z_$][\w$]*$/.test(key) ? [parent, key].filter(Boolean).join('.') : `${parent}["${key}"]`);

export const REDACT_PATHS: string[] = [
  ...SECRET_KEYS.map((k) => under('', k)),
  ...SECRET_KEYS.map((k) => under('*', k)),
  ...SECRET_KEYS.map((k) => under('*.*', k)),
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

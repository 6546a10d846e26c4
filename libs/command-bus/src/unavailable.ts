/**
 * "Redis is unavailable": the one place that decides it for Redis (libs/db `isDatabaseUnavailable`
 * does it for PostgreSQL). Callers answer 503 + Retry-After (gateway) instead of 500.
 *
 * What ioredis 6 throws when its server is gone, for clients with `enableOfflineQueue: false` (every
 * producer here fails fast): "Stream isn't writeable and enableOfflineQueue options is false"; for a
 * command in flight when the connection drops: "Connection is closed."; after `maxRetriesPerRequest`
 * reconnect attempts: `MaxRetriesPerRequestError`; and socket errors (ECONNREFUSED…) on connect.
 */
const MESSAGES = [/^Stream isn't writeable/, /^Connection is closed\.?$/, /^Reached the max retries per request limit/];
const NAMES = new Set(['MaxRetriesPerRequestError']);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

export function isRedisUnavailable(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 4) return false;
  const { name, message, code, cause } = error as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown };
  if (typeof name === 'string' && NAMES.has(name)) return true;
  if (typeof message === 'string' && MESSAGES.some((re) => re.test(message))) return true;
  if (typeof code === 'string' && SOCKET_CODES.has(code) && typeof message === 'string' && /redis|6379|connect/i.test(message)) return true;
  return cause !== undefined && isRedisUnavailable(cause, depth + 1);
}

/**
 * "The database is unavailable": the one place that decides it (issue 15, degrade, don't crash).
 * Callers answer 503 + Retry-After (gateway), retry later (BullMQ processors, sweeps) or log a warning
 * instead of an error; anything else stays a bug (500).
 *
 * What Prisma 7 + @prisma/adapter-pg actually throw when PostgreSQL goes away (reproduced against an
 * owned PostgreSQL, libs/testing owned-postgres.ts; see unavailable.spec.ts for the exact shapes):
 * - model queries and `$transaction` while it is down: `PrismaClientKnownRequestError` P1001, with
 *   `meta.driverAdapterError.cause.kind = 'DatabaseNotReachable'` (pg's ECONNREFUSED, mapped by the adapter);
 * - `$queryRaw`/`$executeRaw`: P2010 ("raw query failed") wrapping the same adapter error, or
 *   `kind: 'postgres', code: '57P01'` for a query running when it shuts down;
 * - a transaction whose connection dies, a SIGKILLed server, a pool or connect timeout: pg's plain
 *   `Error`s with no code ('Connection terminated unexpectedly', 'Client has encountered a connection
 *   error and is not queryable', 'timeout exceeded when trying to connect', 'Connection terminated
 *   due to connection timeout'), which the adapter passes through unwrapped;
 * - no free connection within `$transaction`'s maxWait: P2028 "Unable to start a transaction in the given time".
 */

/** Prisma codes that mean the server cannot be reached or dropped the connection (docs: error reference). */
const PRISMA_CODES = new Set([
  'P1001', // can't reach database server
  'P1002', // reached but timed out
  'P1008', // operations timed out (adapter: SocketTimeout)
  'P1017', // server has closed the connection (adapter: ConnectionClosed)
  'P2024', // timed out fetching a new connection from the pool
]);

/** `DriverAdapterError.cause.kind` values of @prisma/driver-adapter-utils that mean the same. */
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);

/** SQLSTATEs: 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 53300 too many connections; class 08 below. */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** Socket errors (node `err.code`) on the way to the server. */
// ENOTFOUND: the host name did not resolve (Prisma's adapter reports it DatabaseNotReachable; the bare driver passed
// pg's own error, a 500 until 2026-12-07).
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/** pg / pg-pool errors that carry no code: only their messages say what happened. */
const DRIVER_MESSAGES = [
  /^Connection terminated/, // 'Connection terminated unexpectedly', '… due to connection timeout'
  /^timeout exceeded when trying to connect$/, // pg-pool connectionTimeoutMillis
  /is not queryable$/, // 'Client has encountered a connection error and is not queryable'
];

const MAX_DEPTH = 5;

export function isDatabaseUnavailable(error: unknown): boolean {
  return matches(error, 0);
}

function matches(error: unknown, depth: number): boolean {
  if (depth > MAX_DEPTH || error === null || typeof error !== 'object') return false;
  const e = error as {
    code?: unknown;
    errorCode?: unknown;
    kind?: unknown;
    originalCode?: unknown;
    message?: unknown;
    meta?: { driverAdapterError?: unknown };
    cause?: unknown;
  };
  // PrismaClientKnownRequestError.code, PrismaClientInitializationError.errorCode
  for (const code of [e.code, e.errorCode]) {
    if (typeof code === 'string' && (PRISMA_CODES.has(code) || isUnavailableSqlState(code) || SOCKET_CODES.has(code))) return true;
  }
  // a DriverAdapterError's cause: { kind, code?, originalCode? }
  if (typeof e.kind === 'string' && ADAPTER_KINDS.has(e.kind)) return true;
  if (typeof e.originalCode === 'string' && isUnavailableSqlState(e.originalCode)) return true;
  // P2028 also means "transaction expired/closed" (a slow request, not an outage): only the pool wait counts.
  if (e.code === 'P2028' && typeof e.message === 'string' && e.message.includes('Unable to start a transaction in the given time')) return true;
  if (typeof e.code !== 'string' && typeof e.message === 'string' && DRIVER_MESSAGES.some((re) => re.test(e.message as string))) return true;
  if (e.meta && matches(e.meta.driverAdapterError, depth + 1)) return true;
  // AggregateError (pg tries every address of a host name)
  const errors = (error as { errors?: unknown }).errors;
  if (Array.isArray(errors) && errors.some((x) => matches(x, depth + 1))) return true;
  return matches(e.cause, depth + 1);
}

function isUnavailableSqlState(code: string): boolean {
  return SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code);
}

import { Prisma } from './client';
import { isDatabaseUnavailable } from './unavailable';

/** A DriverAdapterError as @prisma/adapter-pg throws it: the mapped pg error is its `cause`. */
const adapterError = (cause: Record<string, unknown>) => Object.assign(new Error(String(cause.kind)), { name: 'DriverAdapterError', cause });
const known = (code: string, message: string, cause?: Record<string, unknown>) =>
  new Prisma.PrismaClientKnownRequestError(message, { code, clientVersion: '7.10.1', meta: cause ? { driverAdapterError: adapterError(cause) } : {} });
/** pg's own errors: a socket error, a server error (ErrorResponse), or a bare Error with only a message. */
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, errno: -111, syscall: 'connect' });
const serverError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'FATAL' });

describe(isDatabaseUnavailable.name, () => {
  it.each([
    [
      'model query while down (P1001, DatabaseNotReachable)',
      known('P1001', "Can't reach database server at 127.0.0.1:5432", { kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 }),
    ],
    [
      'raw query while down (P2010 wrapping DatabaseNotReachable)',
      known('P2010', 'Raw query failed. Code: `N/A`', { kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 }),
    ],
    [
      'query running at shutdown (P2010 wrapping 57P01)',
      known('P2010', 'Raw query failed. Code: `57P01`', { kind: 'postgres', code: '57P01', originalCode: '57P01', severity: 'FATAL' }),
    ],
    [
      'server starting up (57P03)',
      known('P2010', 'Raw query failed. Code: `57P03`', { kind: 'postgres', code: '57P03', originalCode: '57P03', severity: 'FATAL' }),
    ],
    [
      'connection exception class 08',
      known('P2010', 'Raw query failed. Code: `08006`', { kind: 'postgres', code: '08006', originalCode: '08006', severity: 'FATAL' }),
    ],
    ['connection closed (P1017)', known('P1017', 'Server has closed the connection.', { kind: 'ConnectionClosed' })],
    ['socket timeout (P1008)', known('P1008', 'Operations timed out', { kind: 'SocketTimeout' })],
    ['pool timeout (P2024)', known('P2024', 'Timed out fetching a new connection from the connection pool.')],
    ['no connection within maxWait (P2028)', known('P2028', 'Transaction API error: Unable to start a transaction in the given time.')],
    ['P1002', known('P1002', 'The database server was reached but timed out.')],
    ['initialization error (errorCode P1001)', Object.assign(new Prisma.PrismaClientInitializationError("Can't reach database server", '7.10.1', 'P1001'))],
    ['SIGKILLed server mid-transaction', new Error('Connection terminated unexpectedly')],
    [
      'connect timeout',
      Object.assign(new Error('Connection terminated due to connection timeout'), { cause: new Error('Connection terminated unexpectedly') }),
    ],
    ['pool wait timeout', new Error('timeout exceeded when trying to connect')],
    ['broken client reused', new Error('Client has encountered a connection error and is not queryable')],
    ['ECONNREFUSED', socketError('ECONNREFUSED')],
    ['ECONNRESET', socketError('ECONNRESET')],
    // A host name that does not resolve, as pg raises it on the bare-driver path (a 500 until 2026-12-07).
    [
      'ENOTFOUND',
      Object.assign(new Error('getaddrinfo ENOTFOUND db.invalid'), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname: 'db.invalid' }),
    ],
    ['pg admin shutdown', serverError('57P01', 'terminating connection due to administrator command')],
    ['AggregateError of refused addresses', new AggregateError([socketError('ECONNREFUSED'), socketError('ECONNREFUSED')], 'connect failed')],
    ['wrapped in a cause', new Error('settlement failed', { cause: known('P1001', "Can't reach database server") })],
  ])('recognises %s', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation (P2002)', known('P2002', 'Unique constraint failed', { kind: 'UniqueConstraintViolation' })],
    [
      'a raw query error of the application (P2010, 42P01)',
      known('P2010', 'Raw query failed. Code: `42P01`', { kind: 'postgres', code: '42P01', originalCode: '42P01', severity: 'ERROR' }),
    ],
    [
      'an expired interactive transaction (P2028)',
      known('P2028', 'Transaction API error: Transaction already closed: the timeout for this transaction was 10000 ms.'),
    ],
    ['not found (P2025)', known('P2025', 'Record to update not found.')],
    ['RLS rejection', serverError('42501', 'new row violates row-level security policy')],
    ['a domain error whose message mentions a connection', Object.assign(new Error('Connection terminated unexpectedly'), { code: 'TERMINAL_BUSY' })],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['not an error', 'Connection terminated unexpectedly'],
    ['null', null],
  ])('does not count %s', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });

  it('stops on a cyclic cause chain', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isDatabaseUnavailable(a)).toBe(false);
  });
});

import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';

import { Prisma, PrismaClient } from '@payorch/prisma';

export { Prisma, PrismaClient };
export type TransactionClient = Prisma.TransactionClient;

export interface CreatePrismaOptions {
  /** Pool size of the underlying `pg` pool. */
  max?: number;
  /**
   * How long a query waits for a pooled connection or for a new connection to be established (ms).
   * pg's default (0) waits forever: an unreachable server, or a full pool, would hang requests instead of
   * failing fast with an error that isDatabaseUnavailable() recognises (→ 503, retried job).
   */
  connectionTimeoutMillis?: number;
}

/** Connections per process when the caller does not say. */
const DEFAULT_POOL_SIZE = 10;

/** Prisma Client 7 over node-postgres (no query-engine binary). */
export function createPrismaClient(connectionString: string, options: CreatePrismaOptions = {}): PrismaClient {
  return prismaOnPool(createPool(connectionString, options));
}

/**
 * The process's `pg` pool, in pipeline mode (pg ≥ 8.23): a connection writes each statement as soon as it is
 * issued, which the hot path's SqlTransaction uses (several statements per round trip); Prisma issues one at a
 * time, for which pipeline mode changes nothing.
 */
export function createPool(connectionString: string, options: CreatePrismaOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5_000,
    pipeline: true,
  } as pg.PoolConfig);
  // An idle connection that dies (server restart) must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  // Nor one that dies while checked out (pg-pool listens to a client's errors only while it is idle): the connection's
  // error fails the statements in flight on it, which is how its user learns; pg-pool discards it when it is released
  // (not queryable any more). Without this listener a backend ended between two statements of a transaction
  // (PostgreSQL restarted, pg_terminate_backend) emitted an 'error' nobody listened to: the process crashed.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** Prisma over a pool the caller owns (and ends, after `$disconnect`). */
export function prismaOnPool(pool: pg.Pool): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
}

import { PrismaPg } from '@prisma/adapter-pg';

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

/** Prisma Client 7 over node-postgres (no query-engine binary). */
export function createPrismaClient(connectionString: string, options: CreatePrismaOptions = {}): PrismaClient {
  const adapter = new PrismaPg({ connectionString, max: options.max ?? 10, connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5_000 });
  return new PrismaClient({ adapter });
}

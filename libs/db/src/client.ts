import { PrismaPg } from '@prisma/adapter-pg';

import { Prisma, PrismaClient } from '@payorch/prisma';

export { Prisma, PrismaClient };
export type TransactionClient = Prisma.TransactionClient;

export interface CreatePrismaOptions {
  /** Pool size of the underlying `pg` pool. */
  max?: number;
}

/** Prisma Client 7 over node-postgres (no query-engine binary). */
export function createPrismaClient(connectionString: string, options: CreatePrismaOptions = {}): PrismaClient {
  const adapter = new PrismaPg({ connectionString, max: options.max ?? 10 });
  return new PrismaClient({ adapter });
}

export { createPrismaClient, Prisma, PrismaClient, type CreatePrismaOptions, type TransactionClient } from './client';
export {
  Database,
  type AgentCredentialLookup,
  type AgentEnrollmentLookup,
  type ApiKeyLookup,
  type WithTenantOptions,
} from './database';
export { appUrlFromAdminUrl } from './urls';

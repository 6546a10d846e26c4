export { createPrismaClient, Prisma, PrismaClient, type CreatePrismaOptions, type TransactionClient } from './client';
export {
  Database,
  type DatabaseOptions,
  type AgentCredentialLookup,
  type AgentEnrollmentLookup,
  type ApiKeyLookup,
  type WithTenantOptions,
  type WithTenantSqlOptions,
} from './database';
export { isDatabaseUnavailable } from './unavailable';
export { appUrlFromAdminUrl } from './urls';
export {
  eventIdentity,
  expectEvents,
  publishEvent,
  publishEvents,
  recordEvent,
  type DomainEventType,
  type PublishedEvent,
  type PublishEventInput,
} from './events';
export { compareAndSetLifecycle, lifecycleColumns, type LifecycleTable } from './compare-and-set';
export { isSqlTransaction, type SqlClient, SqlTransaction } from './sql-transaction';

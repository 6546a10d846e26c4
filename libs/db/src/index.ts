export { createPrismaClient, Prisma, PrismaClient, type CreatePrismaOptions, type TransactionClient } from './client';
export {
  Database,
  type DatabaseOptions,
  type AgentAccessCheck,
  type AgentAccessState,
  type AgentCredentialLookup,
  type AgentEnrollmentLookup,
  type ApiKeyLookup,
  type WithTenantOptions,
  type WithTenantSqlOptions,
} from './database';
export { isDatabaseUnavailable } from './unavailable';
export { inTenantsTransaction, SharedTenantTransactions, type TenantOutcome } from './shared-transactions';
export { appUrlFromAdminUrl } from './urls';
export {
  eventIdentity,
  expectEvents,
  insertEvents,
  newEvents,
  publishEvent,
  publishEvents,
  recordEvent,
  type DomainEventType,
  type PublishedEvent,
  type PublishEventInput,
} from './events';
export { compareAndSetLifecycle, lifecycleColumns, type LifecycleTable } from './compare-and-set';
export { canDefer, type DeferringSqlClient, isSqlTransaction, type SqlClient, SqlTransaction, TenantSql } from './sql-transaction';
export { SCHEMA_MIGRATION } from './schema-version';

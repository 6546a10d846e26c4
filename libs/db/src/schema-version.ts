/**
 * The newest migration this build's code was written against (`prisma/migrations`): a service is not ready, and the
 * worker takes no job, until the migration step has applied it (libs/health `SchemaCheck`, docs/runbooks/database.md,
 * "Rolling deploys"). `npm run db:migrate:create` names each new migration here; `test/architecture/migrations.spec.ts`
 * fails while this is not the newest folder.
 */
export const SCHEMA_MIGRATION = '20261207161755_schema_version_readable_by_the_services';

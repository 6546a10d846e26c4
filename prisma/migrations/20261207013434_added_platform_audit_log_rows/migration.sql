-- The platform audit log: the operator's actions that concern no tenant. `npm run admin -- jobs retry` audits each
-- job it moves back in its tenant's log (`job.retry`); a deployment-wide job (no tenant in its data: the sweeps) was
-- recorded only in the command's output. Its row now goes to the same table with no tenant. Row-level security
-- (tenant_isolation: "tenantId" = payorch_current_tenant()) matches no tenant to NULL: the application role neither
-- reads nor writes these rows, only the owner role (the admin CLI) does; `GET /v1/audit-log` never shows them. Read
-- them as the owner: SELECT … FROM "AuditLog" WHERE "tenantId" IS NULL ORDER BY "createdAt" (AuditLog_tenantId_createdAt_idx).
--
-- Compatible with the previous release (docs/runbooks/database.md): its code writes every row with a tenant, and reads
-- only under a tenant's scope.

-- AlterTable
ALTER TABLE "AuditLog" ALTER COLUMN "tenantId" DROP NOT NULL;

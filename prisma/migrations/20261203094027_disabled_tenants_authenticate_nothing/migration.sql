-- CreateEnum
CREATE TYPE "TenantStatus" AS ENUM ('ACTIVE', 'DISABLED');

-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "disabledAt" TIMESTAMPTZ(3),
ADD COLUMN     "status" "TenantStatus" NOT NULL DEFAULT 'ACTIVE';

-- A DISABLED tenant's credentials authenticate nothing: the SECURITY DEFINER lookups that run
-- before a tenant is known return no row for it (API keys, agent enrollment, agent credentials).
CREATE OR REPLACE FUNCTION payorch_find_api_key(p_prefix text)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "hash" text, "scopes" text[], "revokedAt" timestamptz, "expiresAt" timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT k."id", k."tenantId", k."hash", k."scopes", k."revokedAt", k."expiresAt"
        FROM "ApiKey" k JOIN "Tenant" t ON t."id" = k."tenantId"
        WHERE k."prefix" = p_prefix AND t."status" = 'ACTIVE' $$;

CREATE OR REPLACE FUNCTION payorch_find_agent_by_enrollment(p_prefix text)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "enrollmentTokenHash" text, "enrollmentExpiresAt" timestamptz, "status" "AgentStatus")
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT a."id", a."tenantId", a."enrollmentTokenHash", a."enrollmentExpiresAt", a."status"
        FROM "Agent" a JOIN "Tenant" t ON t."id" = a."tenantId"
        WHERE a."enrollmentTokenPrefix" = p_prefix AND t."status" = 'ACTIVE' $$;

CREATE OR REPLACE FUNCTION payorch_find_agent_by_credential(p_prefix text)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "credentialHash" text, "status" "AgentStatus")
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT a."id", a."tenantId", a."credentialHash", a."status"
        FROM "Agent" a JOIN "Tenant" t ON t."id" = a."tenantId"
        WHERE a."credentialPrefix" = p_prefix AND t."status" = 'ACTIVE' $$;

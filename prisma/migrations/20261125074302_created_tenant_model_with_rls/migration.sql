-- CreateEnum
CREATE TYPE "AgentStatus" AS ENUM ('PENDING_ENROLLMENT', 'ACTIVE', 'REVOKED');

-- CreateEnum
CREATE TYPE "TerminalProtocol" AS ENUM ('JOINPROTO', 'JPAY', 'SSI_ECR');

-- CreateEnum
CREATE TYPE "TerminalStatus" AS ENUM ('UNKNOWN', 'ONLINE', 'OFFLINE', 'DISABLED');

-- CreateTable
CREATE TABLE "Tenant" (
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Tenant_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ApiKey" (
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(3),
    "hash" TEXT NOT NULL,
    "id" UUID NOT NULL,
    "lastUsedAt" TIMESTAMPTZ(3),
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "revokedAt" TIMESTAMPTZ(3),
    "scopes" TEXT[],
    "tenantId" UUID NOT NULL,

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Store" (
    "address" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "reference" TEXT,
    "tenantId" UUID NOT NULL,
    "timeZone" TEXT NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Store_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Agent" (
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "credentialHash" TEXT,
    "credentialPrefix" TEXT,
    "enrollmentExpiresAt" TIMESTAMPTZ(3),
    "enrollmentTokenHash" TEXT,
    "enrollmentTokenPrefix" TEXT,
    "id" UUID NOT NULL,
    "lastSeenAt" TIMESTAMPTZ(3),
    "name" TEXT NOT NULL,
    "status" "AgentStatus" NOT NULL DEFAULT 'PENDING_ENROLLMENT',
    "storeId" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,
    "version" TEXT,

    CONSTRAINT "Agent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Terminal" (
    "agentId" UUID,
    "connection" JSONB NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "credentialsEncrypted" TEXT,
    "department" TEXT,
    "dialect" TEXT,
    "id" UUID NOT NULL,
    "info" JSONB,
    "lastSeenAt" TIMESTAMPTZ(3),
    "merchantId" TEXT,
    "name" TEXT NOT NULL,
    "protocol" "TerminalProtocol" NOT NULL,
    "status" "TerminalStatus" NOT NULL DEFAULT 'UNKNOWN',
    "storeId" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "terminalId" TEXT,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Terminal_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AuditLog" (
    "action" TEXT NOT NULL,
    "actorId" TEXT,
    "actorType" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "details" JSONB,
    "id" UUID NOT NULL,
    "requestId" TEXT,
    "resourceId" TEXT,
    "resourceType" TEXT NOT NULL,
    "tenantId" UUID NOT NULL,

    CONSTRAINT "AuditLog_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "IdempotencyRecord" (
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,
    "key" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "requestHash" TEXT NOT NULL,
    "responseBody" JSONB,
    "responseStatus" INTEGER,
    "tenantId" UUID NOT NULL,

    CONSTRAINT "IdempotencyRecord_pkey" PRIMARY KEY ("tenantId","key")
);

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_prefix_key" ON "ApiKey"("prefix");

-- CreateIndex
CREATE INDEX "ApiKey_tenantId_createdAt_idx" ON "ApiKey"("tenantId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_tenantId_id_key" ON "ApiKey"("tenantId", "id");

-- CreateIndex
CREATE INDEX "Store_tenantId_createdAt_idx" ON "Store"("tenantId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Store_tenantId_id_key" ON "Store"("tenantId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Store_tenantId_reference_key" ON "Store"("tenantId", "reference");

-- CreateIndex
CREATE UNIQUE INDEX "Agent_credentialPrefix_key" ON "Agent"("credentialPrefix");

-- CreateIndex
CREATE UNIQUE INDEX "Agent_enrollmentTokenPrefix_key" ON "Agent"("enrollmentTokenPrefix");

-- CreateIndex
CREATE INDEX "Agent_tenantId_createdAt_idx" ON "Agent"("tenantId", "createdAt");

-- CreateIndex
CREATE INDEX "Agent_tenantId_storeId_idx" ON "Agent"("tenantId", "storeId");

-- CreateIndex
CREATE UNIQUE INDEX "Agent_tenantId_id_key" ON "Agent"("tenantId", "id");

-- CreateIndex
CREATE INDEX "Terminal_tenantId_createdAt_idx" ON "Terminal"("tenantId", "createdAt");

-- CreateIndex
CREATE INDEX "Terminal_tenantId_storeId_idx" ON "Terminal"("tenantId", "storeId");

-- CreateIndex
CREATE INDEX "Terminal_tenantId_agentId_idx" ON "Terminal"("tenantId", "agentId");

-- CreateIndex
CREATE UNIQUE INDEX "Terminal_tenantId_id_key" ON "Terminal"("tenantId", "id");

-- CreateIndex
CREATE INDEX "AuditLog_tenantId_createdAt_idx" ON "AuditLog"("tenantId", "createdAt");

-- CreateIndex
CREATE INDEX "AuditLog_tenantId_resourceType_resourceId_idx" ON "AuditLog"("tenantId", "resourceType", "resourceId");

-- CreateIndex
CREATE INDEX "IdempotencyRecord_expiresAt_idx" ON "IdempotencyRecord"("expiresAt");

-- AddForeignKey
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Store" ADD CONSTRAINT "Store_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Agent" ADD CONSTRAINT "Agent_tenantId_storeId_fkey" FOREIGN KEY ("tenantId", "storeId") REFERENCES "Store"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Agent" ADD CONSTRAINT "Agent_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Terminal" ADD CONSTRAINT "Terminal_tenantId_agentId_fkey" FOREIGN KEY ("tenantId", "agentId") REFERENCES "Agent"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Terminal" ADD CONSTRAINT "Terminal_tenantId_storeId_fkey" FOREIGN KEY ("tenantId", "storeId") REFERENCES "Store"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Terminal" ADD CONSTRAINT "Terminal_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AuditLog" ADD CONSTRAINT "AuditLog_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "IdempotencyRecord" ADD CONSTRAINT "IdempotencyRecord_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- ---------------------------------------------------------------------------
-- Row-level security (hand-written; docs/architecture.md#tenant-isolation).
-- The services connect as "payorch_app": not the owner, no BYPASSRLS. Every
-- tenant-scoped transaction starts with set_config('app.tenant_id', <uuid>, true).
-- NULLIF: after a transaction-local setting ends the session value is '' (not NULL).
-- ---------------------------------------------------------------------------
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'payorch_app') THEN
    CREATE ROLE payorch_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
END
$$;

CREATE FUNCTION payorch_current_tenant() RETURNS uuid
  LANGUAGE sql STABLE
  AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

GRANT USAGE ON SCHEMA public TO payorch_app;
GRANT EXECUTE ON FUNCTION payorch_current_tenant() TO payorch_app;

ALTER TABLE "Tenant" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Tenant" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON "Tenant" USING ("id" = payorch_current_tenant());
GRANT SELECT ON "Tenant" TO payorch_app;

ALTER TABLE "ApiKey" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "ApiKey" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "ApiKey"
  USING ("tenantId" = payorch_current_tenant()) WITH CHECK ("tenantId" = payorch_current_tenant());
GRANT SELECT, INSERT, UPDATE ON "ApiKey" TO payorch_app;

ALTER TABLE "Store" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Store" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "Store"
  USING ("tenantId" = payorch_current_tenant()) WITH CHECK ("tenantId" = payorch_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON "Store" TO payorch_app;

ALTER TABLE "Agent" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Agent" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "Agent"
  USING ("tenantId" = payorch_current_tenant()) WITH CHECK ("tenantId" = payorch_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON "Agent" TO payorch_app;

ALTER TABLE "Terminal" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Terminal" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "Terminal"
  USING ("tenantId" = payorch_current_tenant()) WITH CHECK ("tenantId" = payorch_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON "Terminal" TO payorch_app;

-- The audit log is append-only for the application.
ALTER TABLE "AuditLog" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "AuditLog" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "AuditLog"
  USING ("tenantId" = payorch_current_tenant()) WITH CHECK ("tenantId" = payorch_current_tenant());
GRANT SELECT, INSERT ON "AuditLog" TO payorch_app;

ALTER TABLE "IdempotencyRecord" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "IdempotencyRecord" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "IdempotencyRecord"
  USING ("tenantId" = payorch_current_tenant()) WITH CHECK ("tenantId" = payorch_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON "IdempotencyRecord" TO payorch_app;

-- Authentication happens before a tenant is known: these SECURITY DEFINER lookups are the
-- only cross-tenant reads the application role can make. They return one row by its
-- unguessable public prefix and nothing else. The owner role must bypass RLS
-- (superuser or BYPASSRLS; see docs/runbooks/database.md).
CREATE FUNCTION payorch_find_api_key(p_prefix text)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "hash" text, "scopes" text[], "revokedAt" timestamptz, "expiresAt" timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT k."id", k."tenantId", k."hash", k."scopes", k."revokedAt", k."expiresAt" FROM "ApiKey" k WHERE k."prefix" = p_prefix $$;
REVOKE ALL ON FUNCTION payorch_find_api_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_find_api_key(text) TO payorch_app;

CREATE FUNCTION payorch_find_agent_by_enrollment(p_prefix text)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "enrollmentTokenHash" text, "enrollmentExpiresAt" timestamptz, "status" "AgentStatus")
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT a."id", a."tenantId", a."enrollmentTokenHash", a."enrollmentExpiresAt", a."status" FROM "Agent" a WHERE a."enrollmentTokenPrefix" = p_prefix $$;
REVOKE ALL ON FUNCTION payorch_find_agent_by_enrollment(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_find_agent_by_enrollment(text) TO payorch_app;

CREATE FUNCTION payorch_find_agent_by_credential(p_prefix text)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "credentialHash" text, "status" "AgentStatus")
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT a."id", a."tenantId", a."credentialHash", a."status" FROM "Agent" a WHERE a."credentialPrefix" = p_prefix $$;
REVOKE ALL ON FUNCTION payorch_find_agent_by_credential(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_find_agent_by_credential(text) TO payorch_app;

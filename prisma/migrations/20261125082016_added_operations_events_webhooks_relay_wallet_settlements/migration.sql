-- CreateEnum
CREATE TYPE "OperationType" AS ENUM ('PURCHASE', 'PURCHASE_WITH_CASHBACK', 'REFUND', 'VOID', 'PARTIAL_VOID', 'PREAUTH', 'PREAUTH_CAPTURE', 'PREAUTH_CANCEL', 'CASH_WITHDRAWAL', 'CASH_DEPOSIT', 'BALANCE_INQUIRY', 'PIN_CHANGE', 'CARD_CHECK', 'SBP_PAYMENT', 'SBP_REFUND', 'SETTLEMENT', 'REPORT_X', 'REPORT_Z', 'LOAD_KEYS', 'LOAD_CONFIG', 'UPDATE_APP', 'UPLOAD_LOGS', 'ECHO', 'TERMINAL_INFO');

-- CreateEnum
CREATE TYPE "OperationState" AS ENUM ('PENDING', 'SENT', 'IN_PROGRESS', 'APPROVED', 'DECLINED', 'CANCELED', 'FAILED', 'UNKNOWN');

-- CreateEnum
CREATE TYPE "WebhookDeliveryStatus" AS ENUM ('PENDING', 'DELIVERED', 'RETRYING', 'FAILED');

-- CreateEnum
CREATE TYPE "WalletTokenType" AS ENUM ('APPLE_PAY', 'GOOGLE_PAY', 'SAMSUNG_PAY');

-- CreateEnum
CREATE TYPE "WalletPaymentState" AS ENUM ('PENDING', 'PROCESSING', 'REQUIRES_ACTION', 'APPROVED', 'AUTHORIZED', 'DECLINED', 'CANCELED', 'REJECTED', 'UNKNOWN');

-- CreateEnum
CREATE TYPE "SettlementStatus" AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED');

-- CreateTable
CREATE TABLE "TerminalOperation" (
    "amount" BIGINT,
    "approvalCode" TEXT,
    "cashbackAmount" BIGINT,
    "completedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "currency" TEXT,
    "error" JSONB,
    "id" UUID NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "maskedPan" TEXT,
    "originalOperationId" UUID,
    "protocolRefs" JSONB,
    "receipt" JSONB,
    "recoveryAttempts" INTEGER NOT NULL DEFAULT 0,
    "requestHash" TEXT NOT NULL,
    "responseCode" TEXT,
    "responseMessage" TEXT,
    "result" JSONB,
    "rrn" TEXT,
    "settlementId" UUID,
    "state" "OperationState" NOT NULL DEFAULT 'PENDING',
    "stateReason" TEXT,
    "storeId" UUID NOT NULL,
    "subStatus" TEXT,
    "tenantId" UUID NOT NULL,
    "terminalId" UUID NOT NULL,
    "type" "OperationType" NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "TerminalOperation_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "OperationEvent" (
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "data" JSONB,
    "fromState" "OperationState",
    "id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "operationId" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "toState" "OperationState",

    CONSTRAINT "OperationEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "DomainEvent" (
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "data" JSONB NOT NULL,
    "id" UUID NOT NULL,
    "subjectId" TEXT,
    "subjectType" TEXT NOT NULL,
    "tenantId" UUID NOT NULL,
    "type" TEXT NOT NULL,

    CONSTRAINT "DomainEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookEndpoint" (
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "description" TEXT,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "eventTypes" TEXT[],
    "id" UUID NOT NULL,
    "secretEncrypted" TEXT NOT NULL,
    "tenantId" UUID NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,
    "url" TEXT NOT NULL,

    CONSTRAINT "WebhookEndpoint_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookDelivery" (
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deliveredAt" TIMESTAMPTZ(3),
    "endpointId" UUID NOT NULL,
    "eventId" UUID NOT NULL,
    "id" UUID NOT NULL,
    "lastError" TEXT,
    "lastStatusCode" INTEGER,
    "nextAttemptAt" TIMESTAMPTZ(3),
    "status" "WebhookDeliveryStatus" NOT NULL DEFAULT 'PENDING',
    "tenantId" UUID NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "WebhookDelivery_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "EgressRule" (
    "cidr" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "description" TEXT,
    "host" TEXT,
    "id" UUID NOT NULL,
    "port" INTEGER NOT NULL,
    "tenantId" UUID NOT NULL,

    CONSTRAINT "EgressRule_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RelaySession" (
    "bytesFromHost" BIGINT NOT NULL DEFAULT 0,
    "bytesToHost" BIGINT NOT NULL DEFAULT 0,
    "endedAt" TIMESTAMPTZ(3),
    "host" TEXT NOT NULL,
    "id" UUID NOT NULL,
    "operationId" UUID,
    "outcome" TEXT NOT NULL,
    "port" INTEGER NOT NULL,
    "reason" TEXT,
    "resolvedAddress" TEXT,
    "startedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "tenantId" UUID NOT NULL,
    "terminalId" UUID NOT NULL,

    CONSTRAINT "RelaySession_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AssistMerchant" (
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "id" UUID NOT NULL,
    "merchantId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "secretsEncrypted" TEXT NOT NULL,
    "serverUrl" TEXT NOT NULL,
    "tenantId" UUID NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "AssistMerchant_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WalletPayment" (
    "amount" BIGINT NOT NULL,
    "assistOrder" JSONB,
    "completedAt" TIMESTAMPTZ(3),
    "continueUrl" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "currency" TEXT NOT NULL,
    "customer" JSONB,
    "error" JSONB,
    "id" UUID NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "maskedPan" TEXT,
    "merchantId" UUID NOT NULL,
    "orderNumber" TEXT NOT NULL,
    "requestHash" TEXT NOT NULL,
    "resolutionAttempts" INTEGER NOT NULL DEFAULT 0,
    "state" "WalletPaymentState" NOT NULL DEFAULT 'PENDING',
    "tenantId" UUID NOT NULL,
    "testMode" BOOLEAN,
    "tokenType" "WalletTokenType" NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "WalletPayment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SettlementSchedule" (
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "id" UUID NOT NULL,
    "localTime" TEXT NOT NULL,
    "storeId" UUID,
    "tenantId" UUID NOT NULL,
    "terminalId" UUID,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "SettlementSchedule_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Settlement" (
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "businessDate" DATE NOT NULL,
    "completedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "discrepancies" JSONB,
    "error" JSONB,
    "hasDiscrepancies" BOOLEAN NOT NULL DEFAULT false,
    "id" UUID NOT NULL,
    "operationId" UUID,
    "ourTotals" JSONB,
    "progress" JSONB,
    "runKey" TEXT NOT NULL,
    "startedAt" TIMESTAMPTZ(3),
    "status" "SettlementStatus" NOT NULL DEFAULT 'PENDING',
    "storeId" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "terminalId" UUID NOT NULL,
    "terminalTotals" JSONB,
    "trigger" TEXT NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Settlement_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "TerminalOperation_tenantId_createdAt_idx" ON "TerminalOperation"("tenantId", "createdAt");

-- CreateIndex
CREATE INDEX "TerminalOperation_tenantId_terminalId_createdAt_idx" ON "TerminalOperation"("tenantId", "terminalId", "createdAt");

-- CreateIndex
CREATE INDEX "TerminalOperation_tenantId_storeId_createdAt_idx" ON "TerminalOperation"("tenantId", "storeId", "createdAt");

-- CreateIndex
CREATE INDEX "TerminalOperation_tenantId_state_idx" ON "TerminalOperation"("tenantId", "state");

-- CreateIndex
CREATE INDEX "TerminalOperation_state_updatedAt_idx" ON "TerminalOperation"("state", "updatedAt");

-- CreateIndex
CREATE UNIQUE INDEX "TerminalOperation_tenantId_id_key" ON "TerminalOperation"("tenantId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "TerminalOperation_tenantId_idempotencyKey_key" ON "TerminalOperation"("tenantId", "idempotencyKey");

-- CreateIndex
CREATE INDEX "OperationEvent_tenantId_operationId_createdAt_idx" ON "OperationEvent"("tenantId", "operationId", "createdAt");

-- CreateIndex
CREATE INDEX "DomainEvent_tenantId_createdAt_idx" ON "DomainEvent"("tenantId", "createdAt");

-- CreateIndex
CREATE INDEX "DomainEvent_tenantId_type_createdAt_idx" ON "DomainEvent"("tenantId", "type", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "DomainEvent_tenantId_id_key" ON "DomainEvent"("tenantId", "id");

-- CreateIndex
CREATE INDEX "WebhookEndpoint_tenantId_createdAt_idx" ON "WebhookEndpoint"("tenantId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookEndpoint_tenantId_id_key" ON "WebhookEndpoint"("tenantId", "id");

-- CreateIndex
CREATE INDEX "WebhookDelivery_tenantId_createdAt_idx" ON "WebhookDelivery"("tenantId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_tenantId_id_key" ON "WebhookDelivery"("tenantId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_endpointId_eventId_key" ON "WebhookDelivery"("endpointId", "eventId");

-- CreateIndex
CREATE INDEX "EgressRule_tenantId_createdAt_idx" ON "EgressRule"("tenantId", "createdAt");

-- CreateIndex
CREATE INDEX "RelaySession_tenantId_startedAt_idx" ON "RelaySession"("tenantId", "startedAt");

-- CreateIndex
CREATE INDEX "RelaySession_tenantId_terminalId_startedAt_idx" ON "RelaySession"("tenantId", "terminalId", "startedAt");

-- CreateIndex
CREATE INDEX "AssistMerchant_tenantId_createdAt_idx" ON "AssistMerchant"("tenantId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "AssistMerchant_tenantId_id_key" ON "AssistMerchant"("tenantId", "id");

-- CreateIndex
CREATE INDEX "WalletPayment_tenantId_createdAt_idx" ON "WalletPayment"("tenantId", "createdAt");

-- CreateIndex
CREATE INDEX "WalletPayment_state_updatedAt_idx" ON "WalletPayment"("state", "updatedAt");

-- CreateIndex
CREATE UNIQUE INDEX "WalletPayment_tenantId_id_key" ON "WalletPayment"("tenantId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "WalletPayment_tenantId_idempotencyKey_key" ON "WalletPayment"("tenantId", "idempotencyKey");

-- CreateIndex
CREATE UNIQUE INDEX "WalletPayment_merchantId_orderNumber_key" ON "WalletPayment"("merchantId", "orderNumber");

-- CreateIndex
CREATE INDEX "SettlementSchedule_tenantId_createdAt_idx" ON "SettlementSchedule"("tenantId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "SettlementSchedule_tenantId_id_key" ON "SettlementSchedule"("tenantId", "id");

-- CreateIndex
CREATE INDEX "Settlement_tenantId_createdAt_idx" ON "Settlement"("tenantId", "createdAt");

-- CreateIndex
CREATE INDEX "Settlement_tenantId_terminalId_businessDate_idx" ON "Settlement"("tenantId", "terminalId", "businessDate");

-- CreateIndex
CREATE INDEX "Settlement_tenantId_storeId_businessDate_idx" ON "Settlement"("tenantId", "storeId", "businessDate");

-- CreateIndex
CREATE UNIQUE INDEX "Settlement_tenantId_id_key" ON "Settlement"("tenantId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Settlement_tenantId_runKey_key" ON "Settlement"("tenantId", "runKey");

-- AddForeignKey
ALTER TABLE "TerminalOperation" ADD CONSTRAINT "TerminalOperation_tenantId_originalOperationId_fkey" FOREIGN KEY ("tenantId", "originalOperationId") REFERENCES "TerminalOperation"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TerminalOperation" ADD CONSTRAINT "TerminalOperation_tenantId_settlementId_fkey" FOREIGN KEY ("tenantId", "settlementId") REFERENCES "Settlement"("tenantId", "id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TerminalOperation" ADD CONSTRAINT "TerminalOperation_tenantId_storeId_fkey" FOREIGN KEY ("tenantId", "storeId") REFERENCES "Store"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TerminalOperation" ADD CONSTRAINT "TerminalOperation_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TerminalOperation" ADD CONSTRAINT "TerminalOperation_tenantId_terminalId_fkey" FOREIGN KEY ("tenantId", "terminalId") REFERENCES "Terminal"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "OperationEvent" ADD CONSTRAINT "OperationEvent_tenantId_operationId_fkey" FOREIGN KEY ("tenantId", "operationId") REFERENCES "TerminalOperation"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "OperationEvent" ADD CONSTRAINT "OperationEvent_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "DomainEvent" ADD CONSTRAINT "DomainEvent_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookEndpoint" ADD CONSTRAINT "WebhookEndpoint_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_tenantId_endpointId_fkey" FOREIGN KEY ("tenantId", "endpointId") REFERENCES "WebhookEndpoint"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_tenantId_eventId_fkey" FOREIGN KEY ("tenantId", "eventId") REFERENCES "DomainEvent"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EgressRule" ADD CONSTRAINT "EgressRule_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RelaySession" ADD CONSTRAINT "RelaySession_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RelaySession" ADD CONSTRAINT "RelaySession_tenantId_terminalId_fkey" FOREIGN KEY ("tenantId", "terminalId") REFERENCES "Terminal"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AssistMerchant" ADD CONSTRAINT "AssistMerchant_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WalletPayment" ADD CONSTRAINT "WalletPayment_tenantId_merchantId_fkey" FOREIGN KEY ("tenantId", "merchantId") REFERENCES "AssistMerchant"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WalletPayment" ADD CONSTRAINT "WalletPayment_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SettlementSchedule" ADD CONSTRAINT "SettlementSchedule_tenantId_storeId_fkey" FOREIGN KEY ("tenantId", "storeId") REFERENCES "Store"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SettlementSchedule" ADD CONSTRAINT "SettlementSchedule_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SettlementSchedule" ADD CONSTRAINT "SettlementSchedule_tenantId_terminalId_fkey" FOREIGN KEY ("tenantId", "terminalId") REFERENCES "Terminal"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Settlement" ADD CONSTRAINT "Settlement_tenantId_storeId_fkey" FOREIGN KEY ("tenantId", "storeId") REFERENCES "Store"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Settlement" ADD CONSTRAINT "Settlement_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Settlement" ADD CONSTRAINT "Settlement_tenantId_terminalId_fkey" FOREIGN KEY ("tenantId", "terminalId") REFERENCES "Terminal"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- ---------------------------------------------------------------------------
-- Row-level security for every table above (same rules as the first migration).
-- ---------------------------------------------------------------------------
CREATE FUNCTION payorch_enable_tenant_rls(p_table regclass, p_privileges text) RETURNS void
  LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', p_table);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', p_table);
  EXECUTE format(
    'CREATE POLICY tenant_isolation ON %s USING ("tenantId" = payorch_current_tenant()) WITH CHECK ("tenantId" = payorch_current_tenant())',
    p_table);
  EXECUTE format('GRANT %s ON %s TO payorch_app', p_privileges, p_table);
END
$$;

SELECT payorch_enable_tenant_rls('"TerminalOperation"', 'SELECT, INSERT, UPDATE');
SELECT payorch_enable_tenant_rls('"OperationEvent"', 'SELECT, INSERT');
SELECT payorch_enable_tenant_rls('"DomainEvent"', 'SELECT, INSERT');
SELECT payorch_enable_tenant_rls('"WebhookEndpoint"', 'SELECT, INSERT, UPDATE, DELETE');
SELECT payorch_enable_tenant_rls('"WebhookDelivery"', 'SELECT, INSERT, UPDATE');
SELECT payorch_enable_tenant_rls('"EgressRule"', 'SELECT, INSERT, UPDATE, DELETE');
SELECT payorch_enable_tenant_rls('"RelaySession"', 'SELECT, INSERT, UPDATE');
SELECT payorch_enable_tenant_rls('"AssistMerchant"', 'SELECT, INSERT, UPDATE, DELETE');
SELECT payorch_enable_tenant_rls('"WalletPayment"', 'SELECT, INSERT, UPDATE');
SELECT payorch_enable_tenant_rls('"SettlementSchedule"', 'SELECT, INSERT, UPDATE, DELETE');
SELECT payorch_enable_tenant_rls('"Settlement"', 'SELECT, INSERT, UPDATE');

-- Background work starts without a tenant: these lookups return ids and tenant ids only;
-- every read or write of the rows themselves then happens inside withTenant.
CREATE FUNCTION payorch_unresolved_operations(p_older_than interval, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT o."id", o."tenantId" FROM "TerminalOperation" o
        WHERE o."state" = 'UNKNOWN' AND o."updatedAt" < now() - p_older_than
        ORDER BY o."updatedAt" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_unresolved_operations(interval, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_unresolved_operations(interval, int) TO payorch_app;

CREATE FUNCTION payorch_unresolved_wallet_payments(p_older_than interval, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT w."id", w."tenantId" FROM "WalletPayment" w
        WHERE w."state" IN ('UNKNOWN', 'PROCESSING') AND w."updatedAt" < now() - p_older_than
        ORDER BY w."updatedAt" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_unresolved_wallet_payments(interval, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_unresolved_wallet_payments(interval, int) TO payorch_app;

CREATE FUNCTION payorch_settlement_schedules()
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "storeId" uuid, "terminalId" uuid, "localTime" text, "enabled" boolean, "updatedAt" timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT s."id", s."tenantId", s."storeId", s."terminalId", s."localTime", s."enabled", s."updatedAt" FROM "SettlementSchedule" s $$;
REVOKE ALL ON FUNCTION payorch_settlement_schedules() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_settlement_schedules() TO payorch_app;

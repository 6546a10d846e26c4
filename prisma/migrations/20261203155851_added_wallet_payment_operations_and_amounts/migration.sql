-- CreateEnum
CREATE TYPE "WalletOperationKind" AS ENUM ('CAPTURE', 'CANCEL_AUTHORIZATION', 'REFUND');

-- CreateEnum
CREATE TYPE "WalletOperationState" AS ENUM ('PENDING', 'SUCCEEDED', 'FAILED', 'UNKNOWN');

-- AlterEnum
-- This migration adds more than one value to an enum.
-- With PostgreSQL versions 11 and earlier, this is not possible
-- in a single migration. This can be worked around by creating
-- multiple migrations, each migration adding only one value to
-- the enum.


ALTER TYPE "WalletPaymentState" ADD VALUE 'PARTIALLY_CAPTURED';
ALTER TYPE "WalletPaymentState" ADD VALUE 'PARTIALLY_REFUNDED';
ALTER TYPE "WalletPaymentState" ADD VALUE 'REFUNDED';

-- AlterTable
ALTER TABLE "WalletPayment" ADD COLUMN     "authorizedAmount" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "capturedAmount" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "refundedAmount" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "releasedAmount" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "twoStage" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
CREATE TABLE "WalletPaymentOperation" (
    "amount" BIGINT NOT NULL,
    "assistBillNumber" TEXT,
    "assistOperation" JSONB,
    "completedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "currency" TEXT NOT NULL,
    "error" JSONB,
    "id" UUID NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "kind" "WalletOperationKind" NOT NULL,
    "paymentId" UUID NOT NULL,
    "resolutionAttempts" INTEGER NOT NULL DEFAULT 0,
    "sentAt" TIMESTAMPTZ(3),
    "state" "WalletOperationState" NOT NULL DEFAULT 'PENDING',
    "tenantId" UUID NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "WalletPaymentOperation_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "WalletPaymentOperation_tenantId_paymentId_createdAt_idx" ON "WalletPaymentOperation"("tenantId", "paymentId", "createdAt");

-- CreateIndex
CREATE INDEX "WalletPaymentOperation_tenantId_completedAt_idx" ON "WalletPaymentOperation"("tenantId", "completedAt");

-- CreateIndex
CREATE INDEX "WalletPaymentOperation_state_updatedAt_idx" ON "WalletPaymentOperation"("state", "updatedAt");

-- CreateIndex
CREATE UNIQUE INDEX "WalletPaymentOperation_tenantId_id_key" ON "WalletPaymentOperation"("tenantId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "WalletPaymentOperation_tenantId_idempotencyKey_key" ON "WalletPaymentOperation"("tenantId", "idempotencyKey");

-- AddForeignKey
ALTER TABLE "WalletPaymentOperation" ADD CONSTRAINT "WalletPaymentOperation_tenantId_paymentId_fkey" FOREIGN KEY ("tenantId", "paymentId") REFERENCES "WalletPayment"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WalletPaymentOperation" ADD CONSTRAINT "WalletPaymentOperation_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Issue 17: at most one capture / cancel / refund in flight per payment (PENDING: being sent; UNKNOWN: its
-- answer was lost and orderstate resolves it). A second one is refused (409 WALLET_OPERATION_IN_PROGRESS)
-- instead of racing the amounts.
CREATE UNIQUE INDEX "WalletPaymentOperation_one_open_per_payment"
  ON "WalletPaymentOperation"("paymentId") WHERE "state" IN ('PENDING', 'UNKNOWN');

SELECT payorch_enable_tenant_rls('"WalletPaymentOperation"', 'SELECT, INSERT, UPDATE');

-- Amounts of the payments that existed before: an authorized payment holds its amount, an approved one
-- (one- or two-stage) captured it, a canceled one released it.
UPDATE "WalletPayment" SET "authorizedAmount" = "amount" WHERE "state" IN ('AUTHORIZED', 'APPROVED', 'CANCELED');
UPDATE "WalletPayment" SET "capturedAmount" = "amount" WHERE "state" = 'APPROVED';
UPDATE "WalletPayment" SET "releasedAmount" = "amount" WHERE "state" = 'CANCELED';
-- Only a two-stage payment (Delay=1) is ever Delayed.
UPDATE "WalletPayment" SET "twoStage" = true WHERE "state" = 'AUTHORIZED';

-- The sweep also finds payments with an operation left open (answer lost, gateway gone mid-call). Two
-- index scans ("state", "updatedAt" on each table) instead of an EXISTS per payment.
CREATE OR REPLACE FUNCTION payorch_unresolved_wallet_payments(p_older_than interval, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT t."id", t."tenantId" FROM (
          SELECT w."id", w."tenantId", w."updatedAt" FROM "WalletPayment" w
           WHERE w."state" IN ('PENDING', 'PROCESSING', 'REQUIRES_ACTION', 'UNKNOWN') AND w."updatedAt" < now() - p_older_than
          UNION
          SELECT w."id", w."tenantId", w."updatedAt" FROM "WalletPaymentOperation" o JOIN "WalletPayment" w ON w."id" = o."paymentId"
           WHERE o."state" IN ('PENDING', 'UNKNOWN') AND o."updatedAt" < now() - p_older_than
        ) t
        ORDER BY t."updatedAt" LIMIT p_limit $$;

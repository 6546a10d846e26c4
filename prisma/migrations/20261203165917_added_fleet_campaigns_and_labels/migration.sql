-- CreateEnum
CREATE TYPE "CampaignState" AS ENUM ('RUNNING', 'PAUSED', 'COMPLETED', 'CANCELED');

-- CreateEnum
CREATE TYPE "CampaignWaveState" AS ENUM ('PENDING', 'RUNNING', 'PASSED', 'HALTED');

-- CreateEnum
CREATE TYPE "CampaignTargetState" AS ENUM ('PENDING', 'RUNNING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'SKIPPED');

-- AlterTable
ALTER TABLE "Store" ADD COLUMN     "labels" JSONB NOT NULL DEFAULT '{}';

-- AlterTable
ALTER TABLE "Terminal" ADD COLUMN     "labels" JSONB NOT NULL DEFAULT '{}';

-- CreateTable
CREATE TABLE "Campaign" (
    "completedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deadline" TIMESTAMPTZ(3),
    "id" UUID NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "operationType" "OperationType" NOT NULL,
    "params" JSONB NOT NULL DEFAULT '{}',
    "pauseReason" TEXT,
    "policy" JSONB NOT NULL,
    "selector" JSONB NOT NULL,
    "state" "CampaignState" NOT NULL,
    "tenantId" UUID NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Campaign_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "CampaignWave" (
    "campaignId" UUID NOT NULL,
    "canary" BOOLEAN NOT NULL DEFAULT false,
    "completedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "id" UUID NOT NULL,
    "index" INTEGER NOT NULL,
    "size" INTEGER NOT NULL,
    "startedAt" TIMESTAMPTZ(3),
    "state" "CampaignWaveState" NOT NULL,
    "tenantId" UUID NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "CampaignWave_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "CampaignTarget" (
    "answer" JSONB,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "campaignId" UUID NOT NULL,
    "completedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "id" UUID NOT NULL,
    "lastError" TEXT,
    "nextAttemptAt" TIMESTAMPTZ(3),
    "operationId" UUID,
    "reason" TEXT,
    "startedAt" TIMESTAMPTZ(3),
    "state" "CampaignTargetState" NOT NULL,
    "storeId" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "terminalId" UUID NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,
    "waveIndex" INTEGER,

    CONSTRAINT "CampaignTarget_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Campaign_tenantId_createdAt_id_idx" ON "Campaign"("tenantId", "createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Campaign_tenantId_id_key" ON "Campaign"("tenantId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Campaign_tenantId_idempotencyKey_key" ON "Campaign"("tenantId", "idempotencyKey");

-- CreateIndex
CREATE UNIQUE INDEX "CampaignWave_tenantId_id_key" ON "CampaignWave"("tenantId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "CampaignWave_campaignId_index_key" ON "CampaignWave"("campaignId", "index");

-- CreateIndex
CREATE INDEX "CampaignTarget_tenantId_campaignId_createdAt_id_idx" ON "CampaignTarget"("tenantId", "campaignId", "createdAt", "id");

-- CreateIndex
CREATE INDEX "CampaignTarget_campaignId_waveIndex_state_idx" ON "CampaignTarget"("campaignId", "waveIndex", "state");

-- CreateIndex
CREATE INDEX "CampaignTarget_tenantId_state_storeId_idx" ON "CampaignTarget"("tenantId", "state", "storeId");

-- CreateIndex
CREATE UNIQUE INDEX "CampaignTarget_tenantId_id_key" ON "CampaignTarget"("tenantId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "CampaignTarget_campaignId_terminalId_key" ON "CampaignTarget"("campaignId", "terminalId");

-- CreateIndex
CREATE INDEX "Store_labels_idx" ON "Store" USING GIN ("labels" jsonb_path_ops);

-- CreateIndex
CREATE INDEX "Terminal_labels_idx" ON "Terminal" USING GIN ("labels" jsonb_path_ops);

-- AddForeignKey
ALTER TABLE "Campaign" ADD CONSTRAINT "Campaign_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CampaignWave" ADD CONSTRAINT "CampaignWave_tenantId_campaignId_fkey" FOREIGN KEY ("tenantId", "campaignId") REFERENCES "Campaign"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CampaignWave" ADD CONSTRAINT "CampaignWave_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CampaignTarget" ADD CONSTRAINT "CampaignTarget_tenantId_campaignId_fkey" FOREIGN KEY ("tenantId", "campaignId") REFERENCES "Campaign"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CampaignTarget" ADD CONSTRAINT "CampaignTarget_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CampaignTarget" ADD CONSTRAINT "CampaignTarget_tenantId_terminalId_fkey" FOREIGN KEY ("tenantId", "terminalId") REFERENCES "Terminal"("tenantId", "id") ON DELETE CASCADE ON UPDATE CASCADE;

-- ---------------------------------------------------------------------------
-- Row-level security for the campaign tables (same rules as every tenant table).
-- Campaign state is written only by libs/campaigns/src/transition.ts; the app role never deletes
-- (rows go with their tenant, or with their terminal for targets).
-- ---------------------------------------------------------------------------
SELECT payorch_enable_tenant_rls('"Campaign"', 'SELECT, INSERT, UPDATE');
SELECT payorch_enable_tenant_rls('"CampaignWave"', 'SELECT, INSERT, UPDATE');
SELECT payorch_enable_tenant_rls('"CampaignTarget"', 'SELECT, INSERT, UPDATE');

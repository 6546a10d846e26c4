-- DropIndex
DROP INDEX "OperationEvent_tenantId_operationId_createdAt_idx";

-- AlterTable
ALTER TABLE "OperationEvent" ADD COLUMN     "seq" BIGSERIAL NOT NULL;

-- CreateIndex
CREATE INDEX "OperationEvent_tenantId_operationId_seq_idx" ON "OperationEvent"("tenantId", "operationId", "seq");

-- Steps are inserted by the application (payorch_app): it needs the sequence behind the new column's default.
GRANT USAGE ON SEQUENCE "OperationEvent_seq_seq" TO payorch_app;

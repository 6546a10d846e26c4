-- AlterTable
ALTER TABLE "Settlement" ADD COLUMN     "batches" JSONB,
ADD COLUMN     "outcome" TEXT;

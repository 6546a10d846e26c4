-- AlterTable
ALTER TABLE "Terminal" ADD COLUMN     "protocolSequence" INTEGER NOT NULL DEFAULT 0;

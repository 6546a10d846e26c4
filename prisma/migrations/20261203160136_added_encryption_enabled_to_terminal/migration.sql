-- AlterTable
ALTER TABLE "Terminal" ADD COLUMN     "encryptionEnabled" BOOLEAN NOT NULL DEFAULT false;

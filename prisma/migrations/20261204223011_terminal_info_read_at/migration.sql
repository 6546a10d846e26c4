-- AlterTable
ALTER TABLE "Terminal" ADD COLUMN     "infoReadAt" TIMESTAMPTZ(3);

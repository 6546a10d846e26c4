-- DropForeignKey
ALTER TABLE "RelaySession" DROP CONSTRAINT "RelaySession_tenantId_terminalId_fkey";

-- AddForeignKey
ALTER TABLE "RelaySession" ADD CONSTRAINT "RelaySession_tenantId_terminalId_fkey" FOREIGN KEY ("tenantId", "terminalId") REFERENCES "Terminal"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

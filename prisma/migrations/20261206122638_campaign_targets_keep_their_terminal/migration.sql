-- DropForeignKey
ALTER TABLE "CampaignTarget" DROP CONSTRAINT "CampaignTarget_tenantId_terminalId_fkey";

-- AddForeignKey
ALTER TABLE "CampaignTarget" ADD CONSTRAINT "CampaignTarget_tenantId_terminalId_fkey" FOREIGN KEY ("tenantId", "terminalId") REFERENCES "Terminal"("tenantId", "id") ON DELETE RESTRICT ON UPDATE CASCADE;

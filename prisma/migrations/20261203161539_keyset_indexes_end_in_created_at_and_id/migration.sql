-- Issue 19: keyset lists page with a row comparison ("createdAt", "id") < (c, i); these indexes end in
-- (createdAt, id) so the comparison bounds the scan at the cursor at any depth: operations (all, by state),
-- settlements (all, of one business day). Event catch-up with a type filter reads (tenantId, type, seq).
-- Each replaces an index that was its prefix, so writes maintain no more indexes than before.

-- DropIndex
DROP INDEX "TerminalOperation_tenantId_createdAt_idx";

-- DropIndex
DROP INDEX "TerminalOperation_tenantId_state_idx";

-- DropIndex
DROP INDEX "DomainEvent_tenantId_type_createdAt_idx";

-- DropIndex
DROP INDEX "Settlement_tenantId_createdAt_idx";

-- CreateIndex
CREATE INDEX "TerminalOperation_tenantId_createdAt_id_idx" ON "TerminalOperation"("tenantId", "createdAt", "id");

-- CreateIndex
CREATE INDEX "TerminalOperation_tenantId_state_createdAt_id_idx" ON "TerminalOperation"("tenantId", "state", "createdAt", "id");

-- CreateIndex
CREATE INDEX "DomainEvent_tenantId_type_seq_idx" ON "DomainEvent"("tenantId", "type", "seq");

-- CreateIndex
CREATE INDEX "Settlement_tenantId_createdAt_id_idx" ON "Settlement"("tenantId", "createdAt", "id");

-- CreateIndex
CREATE INDEX "Settlement_tenantId_businessDate_createdAt_id_idx" ON "Settlement"("tenantId", "businessDate", "createdAt", "id");

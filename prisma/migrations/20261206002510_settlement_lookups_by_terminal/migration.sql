-- Issue 19, "flat as tables grow": every settlement looks for its terminal's operations that are approved and not
-- settled yet (the ones it settles) and for the terminal's close-days done outside a settlement since the last one.
-- Both used to be answered through ("tenantId", "terminalId", "createdAt") or the tenant's ("tenantId", "createdAt",
-- "id"), i.e. by reading the terminal's (or the tenant's) whole history: 40 ms and 27 ms per settlement at 200,000
-- settled operations, growing every day. These partial indexes hold only what those questions ask for: the
-- approved operations not settled yet (an operation leaves the index when a settlement marks it), and the
-- close-day operations (one or two a day per terminal). apps/settlement-worker settlement-plans.int-spec.ts holds
-- every statement of a settlement to a bounded read. Build time on a large table: these take a write lock for the
-- build; build them CONCURRENTLY by hand first if the table is large (the statements below are then no-ops).
CREATE INDEX IF NOT EXISTS "TerminalOperation_unsettled_by_terminal_idx" ON "TerminalOperation"("terminalId", "createdAt")
  WHERE "state" = 'APPROVED' AND "settlementId" IS NULL;
CREATE INDEX IF NOT EXISTS "TerminalOperation_close_days_by_terminal_idx" ON "TerminalOperation"("terminalId", "createdAt")
  WHERE "type" IN ('SETTLEMENT', 'REPORT_Z') AND "settlementId" IS NULL;


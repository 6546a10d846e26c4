-- Issue 19, "flat as tables grow": every settlement, when it completes, reads "the previous settlement" of its terminal
-- (the newest COMPLETED one by "completedAt"; its close-day bounds the batches this one reconciles:
-- apps/settlement-worker settlement.service.ts closedOutside). Answered through ("tenantId", "terminalId",
-- "businessDate"), that read every settlement the terminal ever had and sorted them (3,003 rows for a terminal with
-- eight years of daily settlements), growing every day. This partial index holds the terminal's COMPLETED settlements
-- in "completedAt" order: the statement (status written as a literal, so even a generic plan proves the predicate)
-- reads the newest one backwards and stops. settlement-plans.int-spec.ts holds every statement of a settlement to a
-- bounded read. Build time on a large table: this takes a write lock for the build; build it CONCURRENTLY by hand
-- first if the table is large (the statement below is then a no-op).
CREATE INDEX IF NOT EXISTS "Settlement_completed_by_terminal_idx" ON "Settlement"("terminalId", "completedAt")
  WHERE "status" = 'COMPLETED';

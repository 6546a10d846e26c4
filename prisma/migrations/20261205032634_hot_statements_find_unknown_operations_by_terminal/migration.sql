-- Issue 19: the hot path asks "does this terminal have an UNKNOWN operation?" on every payment (the gateway's
-- gate, the executor's claim, its refusal while recovering). UNKNOWN operations are rare, so this partial index
-- holds only them and answers in O(UNKNOWN operations of the terminal), whatever the terminal's or the tenant's
-- history. Without it, a plan prepared while the tenant had few operations (the hot statements are prepared
-- once per connection and keep their generic plan) read every operation of the tenant for it.
CREATE INDEX "TerminalOperation_unknown_by_terminal_idx" ON "TerminalOperation"("terminalId", "createdAt") WHERE "state" = 'UNKNOWN';

-- The idempotency lookup of every create (`"tenantId" = $1 AND "idempotencyKey" = $2`). While the table has no
-- statistics yet (a new installation, before autovacuum's first ANALYZE), every index of the table costs the
-- same to the planner, and a tie goes to the most recently created index: the generic plan then read the
-- tenant's operations through ("tenantId", "state", "createdAt", "id") and filtered on the key. Rebuilt last,
-- the key's own index wins that tie (test/e2e/hot-plans.e2e-spec.ts holds every hot statement to this).
-- Same name, same columns: what Prisma and the P2002 mapping see is unchanged. Takes a write lock on the table
-- for the build; on a large table build a second index CONCURRENTLY first and swap the names instead.
DROP INDEX "TerminalOperation_tenantId_idempotencyKey_key";
CREATE UNIQUE INDEX "TerminalOperation_tenantId_idempotencyKey_key" ON "TerminalOperation"("tenantId", "idempotencyKey");

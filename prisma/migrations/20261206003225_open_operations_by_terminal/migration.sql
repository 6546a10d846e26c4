-- Issue 19, "flat as tables grow": "does this terminal have an operation in flight?" (a settlement waits for it)
-- read the terminal's whole history. Under row-level security a condition on "state" is never an index condition
-- and its statistics are not shown to the planner (enum equality is not LEAKPROOF: the planner takes 1/ndistinct),
-- so neither a partial index of the states in flight nor one per state was chosen. "completedAt" IS NULL is a
-- NullTest, estimated from statistics under RLS too, and the operation owner (libs/operations transition.ts) keeps it
-- NULL exactly while an operation is not final. The readers still check "state": the index only finds the rows.
UPDATE "TerminalOperation" SET "completedAt" = "updatedAt"
  WHERE "completedAt" IS NULL AND "state" IN ('APPROVED', 'DECLINED', 'CANCELED', 'FAILED');
UPDATE "TerminalOperation" SET "completedAt" = NULL
  WHERE "completedAt" IS NOT NULL AND "state" NOT IN ('APPROVED', 'DECLINED', 'CANCELED', 'FAILED');
CREATE INDEX IF NOT EXISTS "TerminalOperation_open_by_terminal_idx" ON "TerminalOperation"("terminalId", "createdAt")
  WHERE "completedAt" IS NULL;

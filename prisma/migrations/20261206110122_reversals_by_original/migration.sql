-- A reversal (refund, void, capture, …) is created only while its original has enough left: the gateway reads the
-- original's live reversals under the original's row lock. This index finds them without reading the terminal's
-- history (a uuid equality is LEAKPROOF, so it stays an index condition under row-level security). Partial: most
-- operations reverse nothing.
CREATE INDEX IF NOT EXISTS "TerminalOperation_reversals_by_original_idx" ON "TerminalOperation"("originalOperationId")
  WHERE "originalOperationId" IS NOT NULL;

-- Issue 19: no statement reads "TerminalOperation_unknown_by_terminal_idx" any more. The gate "does this terminal
-- have an UNKNOWN operation?" (unknownOperationOf) reaches its rows through the open operations
-- ("TerminalOperation_open_by_terminal_idx", a NullTest on "completedAt"), because once the table was ANALYZEd with
-- a history its form on "state" was planned as a sequential scan; no other statement asks for UNKNOWN operations by
-- terminal. test/e2e/hot-plans.e2e-spec.ts holds the hot statements' plans without it.
DROP INDEX IF EXISTS "TerminalOperation_unknown_by_terminal_idx";

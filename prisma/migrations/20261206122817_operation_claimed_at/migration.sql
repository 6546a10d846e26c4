-- When an operation's executor claimed it (PENDING → SENT, written by the claim's compare-and-set in libs/operations
-- transition.ts). Claims of one terminal are serialised (its claim lock), so this orders what the terminal ran: a
-- settlement counts the operations claimed before its close-day was (a payment created just before the close-day but
-- run after it belongs to the next batch). Rows claimed before this column existed keep NULL and are ordered by
-- "createdAt", as before.
ALTER TABLE "TerminalOperation" ADD COLUMN "sentAt" TIMESTAMPTZ(3);

-- No operation left behind (issue 15): the background scans cover every non-final state.
-- CREATE OR REPLACE keeps the signatures, owners and grants of the functions they replace.

-- Operations unchanged past the horizon in a state an executor should have moved on from:
--   PENDING      never claimed by an executor (the gateway died, the bus message was lost): nothing was
--                sent, since the executor writes PENDING → SENT before the driver gets the command;
--                the recovery sweep fails it as "never sent";
--   SENT / IN_PROGRESS  the executor is gone: the sweep moves it to UNKNOWN and recovers it.
CREATE OR REPLACE FUNCTION payorch_stuck_operations(p_older_than interval, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT o."id", o."tenantId" FROM "TerminalOperation" o
        WHERE o."state" IN ('PENDING', 'SENT', 'IN_PROGRESS') AND o."updatedAt" < now() - p_older_than
        ORDER BY o."updatedAt" LIMIT p_limit $$;

-- Every operation that is not final yet (PENDING, SENT, IN_PROGRESS, UNKNOWN) and unchanged past the horizon.
CREATE OR REPLACE FUNCTION payorch_unresolved_operations(p_older_than interval, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT o."id", o."tenantId" FROM "TerminalOperation" o
        WHERE o."state" IN ('PENDING', 'SENT', 'IN_PROGRESS', 'UNKNOWN') AND o."updatedAt" < now() - p_older_than
        ORDER BY o."updatedAt" LIMIT p_limit $$;

-- Wallet payments whose outcome is open: PENDING (Assist never called: resolves to REJECTED), PROCESSING,
-- REQUIRES_ACTION (a 3-D Secure / CVC step the payer abandoned) and UNKNOWN.
CREATE OR REPLACE FUNCTION payorch_unresolved_wallet_payments(p_older_than interval, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT w."id", w."tenantId" FROM "WalletPayment" w
        WHERE w."state" IN ('PENDING', 'PROCESSING', 'REQUIRES_ACTION', 'UNKNOWN') AND w."updatedAt" < now() - p_older_than
        ORDER BY w."updatedAt" LIMIT p_limit $$;

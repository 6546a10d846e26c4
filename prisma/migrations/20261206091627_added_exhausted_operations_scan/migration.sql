-- UNKNOWN operations whose recovery budget is spent ("recoveryAttempts" >= p_max_attempts, the worker's
-- RECOVERY_MAX_ATTEMPTS) and that were never flagged for a person: no `recovery_exhausted` step, the one
-- flagForHuman (libs/operations supervision.ts) writes with its `operation.unknown` needsHuman event. The recover job
-- flags an operation when it finds the budget spent, but the connector's recovery on reconnect (recoverTerminal) spends
-- the same budget and never flags, and payorch_recoverable_operations stops returning an operation once it is spent:
-- the recovery sweep flags these (apps/settlement-worker/src/recovery/recovery.service.ts). The test is the step, not
-- "stateReason": a later attempt of the connector rewrites the reason of an operation flagged already, which must not
-- be flagged twice.
--
-- Index-bound: its owner is not under row-level security here, so "state" = 'UNKNOWN' is an index condition on
-- ("state", "updatedAt") (in that order, for the LIMIT), and an operation's steps are read through
-- ("tenantId", "operationId", "seq"). Ids and tenant ids only; every write then happens inside withTenant.
CREATE FUNCTION payorch_exhausted_operations(p_max_attempts int, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT o."id", o."tenantId" FROM "TerminalOperation" o
        WHERE o."state" = 'UNKNOWN' AND o."recoveryAttempts" >= p_max_attempts
          AND NOT EXISTS (SELECT 1 FROM "OperationEvent" e
                           WHERE e."tenantId" = o."tenantId" AND e."operationId" = o."id" AND e."kind" = 'recovery_exhausted')
        ORDER BY o."updatedAt" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_exhausted_operations(int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_exhausted_operations(int, int) TO payorch_app;

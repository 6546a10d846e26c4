-- Issue 15: an operation whose gateway died between insert and dispatch (or whose connector died while it was
-- queued) is failed as never sent within RECOVERY_PENDING_AFTER_MS (30 s), not after the 10-minute horizon of
-- SENT / IN_PROGRESS. A connector keeps the PENDING rows of the operations waiting in its terminal queues fresh
-- (holdPending), so only orphans age past the short horizon.
CREATE FUNCTION payorch_stuck_operations(p_older_than interval, p_pending_older_than interval, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "state" "OperationState")
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT o."id", o."tenantId", o."state" FROM "TerminalOperation" o
        WHERE (o."state" = 'PENDING' AND o."updatedAt" < now() - p_pending_older_than)
           OR (o."state" IN ('SENT', 'IN_PROGRESS') AND o."updatedAt" < now() - p_older_than)
        ORDER BY o."updatedAt" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_stuck_operations(interval, interval, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_stuck_operations(interval, interval, int) TO payorch_app;

-- The two-argument form is replaced by the one above.
DROP FUNCTION payorch_stuck_operations(interval, int);

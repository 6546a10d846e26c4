-- The recovery sweep's scan of UNKNOWN operations took the 200 with the oldest "updatedAt", and the worker then skipped
-- those whose backoff had not elapsed. An operation whose terminal cannot be reached (offline, disabled, agent revoked)
-- is asked without writing anything, so its "updatedAt" never moves: once 200 such operations existed across all
-- tenants, every sweep returned only them (and operations in a long backoff took places too), and no other operation
-- was ever recovered by the sweep, nor flagged for a person. Now the backoff is part of the scan (due: "updatedAt" +
-- least(max, base × 2^attempts), the worker's retryDelayMs), and the scan walks the due operations by id from a cursor
-- the worker keeps (p_after; it starts again from the lowest id once a page comes back short): every due operation is
-- asked within ceil(due / p_limit) sweeps, whatever the others do.
DROP FUNCTION IF EXISTS payorch_recoverable_operations(interval, int, int);
CREATE FUNCTION payorch_recoverable_operations(p_base interval, p_max interval, p_max_attempts int, p_after uuid, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT o."id", o."tenantId" FROM "TerminalOperation" o
        WHERE o."state" = 'UNKNOWN' AND o."recoveryAttempts" < p_max_attempts AND o."id" > p_after
          AND o."updatedAt" + least(p_max, p_base * power(2, least(greatest(o."recoveryAttempts", 0), 40))::float8) <= now()
        ORDER BY o."id" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_recoverable_operations(interval, interval, int, uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_recoverable_operations(interval, interval, int, uuid, int) TO payorch_app;

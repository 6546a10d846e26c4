-- The settlement sweep (apps/settlement-worker settlement-sweep.service.ts): a Settlement stays PENDING or RUNNING
-- forever once its `settlement.run` job is gone (Redis flushed or restarted empty, a job failed by a non-database
-- error or stalled twice), since jobs are only added when a schedule fires or the gateway creates a manual row.
-- The sweep lists the unfinished settlements unchanged past a horizon across tenants, a page at a time, and makes
-- sure each has its job. Like the other cross-tenant scans it returns ids only (plus the page cursor); the rows are
-- read under their tenant's scope (RLS).
--
-- Flat as the table grows: the partial index holds only the unfinished settlements (a settlement leaves it when it
-- becomes COMPLETED or FAILED), ordered as the pages are read; the status list is written in the statement, so even
-- a generic plan proves the index predicate (settlement-sweep.int-spec.ts reads a bounded number of rows among
-- 20,000 finished ones). Build time on a large table: this takes a write lock for the build; build it CONCURRENTLY
-- by hand first if the table is large (the statement below is then a no-op).
CREATE INDEX IF NOT EXISTS "Settlement_unfinished_by_updated_at_idx" ON "Settlement"("updatedAt", "id")
  WHERE "status" IN ('PENDING', 'RUNNING');

-- Unfinished settlements unchanged for longer than p_older_than, oldest first, after the cursor
-- (p_after_updated_at, p_after_id) of the previous page ('-infinity' and the nil uuid for the first one).
CREATE FUNCTION payorch_unfinished_settlements(p_older_than interval, p_after_updated_at timestamptz, p_after_id uuid, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "updatedAt" timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT s."id", s."tenantId", s."updatedAt" FROM "Settlement" s
        WHERE s."status" IN ('PENDING', 'RUNNING') AND s."updatedAt" < now() - p_older_than
          AND (s."updatedAt", s."id") > (p_after_updated_at, p_after_id)
        ORDER BY s."updatedAt", s."id" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_unfinished_settlements(interval, timestamptz, uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_unfinished_settlements(interval, timestamptz, uuid, int) TO payorch_app;

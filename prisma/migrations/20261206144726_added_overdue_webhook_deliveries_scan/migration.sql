-- The lost-delivery sweep (apps/settlement-worker webhook-delivery.service.ts `requeueOverdue`): a WebhookDelivery stays
-- PENDING or RETRYING for good once its `webhook.deliver` job is gone (Redis flushed or failed over, a job stalled past
-- its limit, a database error that is no outage on its one attempt), since only the fan-out (and a redelivery) adds
-- that job and the delivery log's redeliver answers 409 for a delivery still pending. The sweep lists the deliveries
-- whose due time (nextAttemptAt, or createdAt when there is none) is past by more than a grace, across tenants, a page
-- at a time, and makes sure each has its job. Like the other cross-tenant scans it returns ids only (plus the page
-- cursor); the job reads the row under its tenant's scope (RLS).
--
-- Flat as the table grows: the partial index holds only the unfinished deliveries (a delivery leaves it once it is
-- DELIVERED or FAILED), ordered by due time as the pages are read; the status list and the due expression are written
-- in the statement as in the index, so even a generic plan proves the predicate and scans the expression
-- (lost-deliveries.int-spec.ts reads a bounded number of rows among 20,000 finished ones). Build time on a large
-- table: this takes a write lock for the build; build it CONCURRENTLY by hand first if the table is large (the
-- statement below is then a no-op).
CREATE INDEX IF NOT EXISTS "WebhookDelivery_unfinished_by_due_idx" ON "WebhookDelivery"((COALESCE("nextAttemptAt", "createdAt")), "id")
  WHERE "status" IN ('PENDING', 'RETRYING');

-- Unfinished deliveries due more than p_older_than ago, longest overdue first, after the cursor (p_after_due, p_after_id)
-- of the previous page ('-infinity' and the nil uuid for the first one).
CREATE FUNCTION payorch_overdue_webhook_deliveries(p_older_than interval, p_after_due timestamptz, p_after_id uuid, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "dueAt" timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT d."id", d."tenantId", COALESCE(d."nextAttemptAt", d."createdAt") FROM "WebhookDelivery" d
        WHERE d."status" IN ('PENDING', 'RETRYING') AND COALESCE(d."nextAttemptAt", d."createdAt") < now() - p_older_than
          AND (COALESCE(d."nextAttemptAt", d."createdAt"), d."id") > (p_after_due, p_after_id)
        ORDER BY COALESCE(d."nextAttemptAt", d."createdAt"), d."id" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_overdue_webhook_deliveries(interval, timestamptz, uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_overdue_webhook_deliveries(interval, timestamptz, uuid, int) TO payorch_app;

-- A tenant's event reads (the live stream's catch-up: its latest seq, and its events after a seq, all or of some types;
-- apps/api-gateway events.service.ts) filter on "tenantId" and order by "seq". Two indexes can serve that order: the
-- tenant's own ("tenantId", "seq") and the global unique index on "seq" alone, which the cross-tenant readers use (the
-- sequencer's high mark, the webhook sweep). The planner costs the global one as if the tenant's rows were spread
-- evenly over the sequence: for a tenant holding a tenth of all events, it expects to meet one of its rows within ten
-- entries and prefers it. But a tenant's rows sit wherever it was busy: one whose last events are older than other
-- tenants' newer ones had its latest seq found by reading backwards through every newer event of every other tenant
-- (bench/scale, 1.1 M events: 140 ms for the 100k-event tenant against 2 ms for the 10k and 1M ones; the goal was
-- read at 1M vs 10k only, so it was missed), and its page after a seq could run forward the same way.
--
-- The global uniqueness moves to an index on the expression ("seq" + 0), which no per-tenant statement can use (they
-- order by the column), so they always read the tenant's own index; the two cross-tenant functions order and take the
-- maximum by that expression, as before by the column. Same values, same uniqueness.
--
-- Build time on a large table: this takes a write lock for the build; build it CONCURRENTLY by hand first if the table
-- is large (the statement below is then a no-op).
--
-- Compatible with the previous release (docs/runbooks/database.md, "Rolling deploys"): it calls the same two functions
-- with the same signatures and results, and its per-tenant statements are the ones this fixes; no statement of it names
-- the dropped index.
CREATE UNIQUE INDEX IF NOT EXISTS "DomainEvent_global_seq_key" ON "DomainEvent" (("seq" + 0));
DROP INDEX IF EXISTS "DomainEvent_seq_key";

CREATE OR REPLACE FUNCTION payorch_sequence_events(p_limit int)
  RETURNS TABLE ("assigned" int, "high" bigint)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public
  AS $$
DECLARE
  n int;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'payorch_sequence_events must run in a READ COMMITTED transaction';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('payorch_sequence_events'));
  UPDATE "DomainEvent" d SET "seq" = s."seq"
    FROM (SELECT p."id", nextval('payorch_domain_event_seq') AS "seq"
            FROM (SELECT e."id" FROM "DomainEvent" e WHERE e."seq" IS NULL
                   ORDER BY e."createdAt", e."id" LIMIT p_limit FOR UPDATE) p) s
   WHERE d."id" = s."id";
  GET DIAGNOSTICS n = ROW_COUNT;
  -- The global high mark, read on DomainEvent_global_seq_key.
  RETURN QUERY SELECT n, COALESCE((SELECT max(e."seq" + 0) FROM "DomainEvent" e), 0::bigint);
END
$$;

CREATE OR REPLACE FUNCTION payorch_events_pending_fanout(p_after_seq bigint, p_since timestamptz, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "seq" bigint)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT e."id", e."tenantId", e."seq" FROM "DomainEvent" e
        WHERE e."seq" + 0 > p_after_seq AND (p_since IS NULL OR e."createdAt" > p_since)
          AND EXISTS (
            SELECT 1 FROM "WebhookEndpoint" w
             WHERE w."tenantId" = e."tenantId" AND w."enabled" AND w."createdAt" <= e."createdAt"
               AND (e."type" = ANY (w."eventTypes") OR '*' = ANY (w."eventTypes"))
               AND NOT EXISTS (SELECT 1 FROM "WebhookDelivery" d WHERE d."endpointId" = w."id" AND d."eventId" = e."id"))
        ORDER BY e."seq" + 0 LIMIT p_limit $$;

-- AlterTable
ALTER TABLE "DomainEvent" ADD COLUMN     "seq" BIGINT;

-- CreateIndex
CREATE UNIQUE INDEX "DomainEvent_seq_key" ON "DomainEvent"("seq");

-- CreateIndex
CREATE UNIQUE INDEX "DomainEvent_tenantId_seq_key" ON "DomainEvent"("tenantId", "seq");

-- ---------------------------------------------------------------------------
-- Commit order for DomainEvent (live stream catch-up, webhook sweep).
-- "createdAt" is the producer transaction's start time, and a plain sequence default would be its
-- insert time: neither follows commit order, so a reader that resumes "after event X" in either order
-- skips an event whose transaction committed after X was read but started before it. "seq" is
-- assigned only after commit, by payorch_sequence_events, one caller at a time (advisory lock); each
-- call's numbers are higher than every earlier call's and become visible together at its commit, so
-- once a reader has seen seq N it never later finds an event below N. Readers only look at rows
-- with a seq.
-- ---------------------------------------------------------------------------
CREATE SEQUENCE payorch_domain_event_seq AS bigint;

-- Existing rows are all committed: number them in their old (createdAt, id) order.
UPDATE "DomainEvent" e SET "seq" = o.n
  FROM (SELECT "id", row_number() OVER (ORDER BY "createdAt", "id") AS n FROM "DomainEvent") o
 WHERE e."id" = o."id";
SELECT setval('payorch_domain_event_seq', COALESCE((SELECT max("seq") FROM "DomainEvent"), 0) + 1, false);

-- The sequencer's work list: committed rows still without a seq (normally a handful).
CREATE INDEX "DomainEvent_unsequenced_idx" ON "DomainEvent"("createdAt", "id") WHERE "seq" IS NULL;

-- The application may insert events but never choose their seq.
REVOKE INSERT ON "DomainEvent" FROM payorch_app;
GRANT INSERT ("createdAt", "data", "id", "subjectId", "subjectType", "tenantId", "type") ON "DomainEvent" TO payorch_app;

-- Numbers up to p_limit committed events that have no seq yet, in (createdAt, id) order, and returns
-- how many it numbered plus the highest seq there is: once this call has committed, every event with
-- a seq up to "high" is visible to every new snapshot. Called after each commit that wrote events
-- (Database.withTenant) and by the webhook sweep. Must run in READ COMMITTED, in its own transaction:
-- the UPDATE needs a snapshot taken after the lock, which holds until the numbers are visible.
CREATE FUNCTION payorch_sequence_events(p_limit int)
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
  RETURN QUERY SELECT n, COALESCE((SELECT max(e."seq") FROM "DomainEvent" e), 0::bigint);
END
$$;
REVOKE ALL ON FUNCTION payorch_sequence_events(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_sequence_events(int) TO payorch_app;

-- The webhook sweep scans by seq instead of a createdAt watermark (which missed events of transactions
-- that committed more than the overlap after they started): sequenced events after p_after_seq (and
-- newer than p_since, for the first sweep's look-back; NULL = no bound) for which some enabled endpoint
-- of the tenant, created no later than the event and subscribed to its type (or '*'), has no
-- WebhookDelivery row yet.
DROP FUNCTION payorch_events_pending_fanout(timestamptz, int);
CREATE FUNCTION payorch_events_pending_fanout(p_after_seq bigint, p_since timestamptz, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "seq" bigint)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT e."id", e."tenantId", e."seq" FROM "DomainEvent" e
        WHERE e."seq" > p_after_seq AND (p_since IS NULL OR e."createdAt" > p_since)
          AND EXISTS (
            SELECT 1 FROM "WebhookEndpoint" w
             WHERE w."tenantId" = e."tenantId" AND w."enabled" AND w."createdAt" <= e."createdAt"
               AND (e."type" = ANY (w."eventTypes") OR '*' = ANY (w."eventTypes"))
               AND NOT EXISTS (SELECT 1 FROM "WebhookDelivery" d WHERE d."endpointId" = w."id" AND d."eventId" = e."id"))
        ORDER BY e."seq" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_events_pending_fanout(bigint, timestamptz, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_events_pending_fanout(bigint, timestamptz, int) TO payorch_app;

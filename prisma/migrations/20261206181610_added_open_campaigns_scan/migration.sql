-- The campaign sweep (apps/settlement-worker campaign-sweep.ts): a campaign is driven by BullMQ jobs only (its
-- `campaign.run`, the running wave's `campaign.wave` and one `campaign.step` per target of that wave), and Redis may
-- lose them all (a flush, a failover without persistence). Then a target left RUNNING holds a concurrency slot for
-- good, its wave never ends and its campaign never advances; nothing else would ever add those jobs again. The sweep
-- lists the open (RUNNING or PAUSED) campaigns across tenants, a page at a time, and makes sure each has the jobs its
-- rows say it should have. Like the other cross-tenant scans it returns ids only (plus the page cursor); the waves and
-- targets are read under the campaign's tenant scope (RLS).
--
-- Flat as the table grows: the partial index holds only the open campaigns (at most CAMPAIGNS_MAX_PER_TENANT per
-- tenant; a campaign leaves it once COMPLETED or CANCELED); the state list is written in the statement as in the
-- index, so even a generic plan proves the predicate.
CREATE INDEX IF NOT EXISTS "Campaign_open_by_id_idx" ON "Campaign"("id") WHERE "state" IN ('RUNNING', 'PAUSED');

-- Open campaigns after the cursor p_after_id (the nil uuid for the first page), in id order.
CREATE FUNCTION payorch_open_campaigns(p_after_id uuid, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT c."id", c."tenantId" FROM "Campaign" c
        WHERE c."state" IN ('RUNNING', 'PAUSED') AND c."id" > p_after_id
        ORDER BY c."id" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_open_campaigns(uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_open_campaigns(uuid, int) TO payorch_app;

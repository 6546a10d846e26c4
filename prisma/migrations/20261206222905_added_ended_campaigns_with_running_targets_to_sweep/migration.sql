-- The campaign sweep (apps/settlement-worker campaign-sweep.ts) listed the open (RUNNING, PAUSED) campaigns only. A
-- campaign canceled (or completed) while a target of it is RUNNING relies on that target's step job to end it once its
-- operation is final; when that job failed for good (stalled twice) or was lost (a flush, a failover), nothing ended
-- the target: it stayed RUNNING and held a concurrency slot of its tenant and store for good, and the campaign's failed
-- jobs stayed in Redis with it. The sweep now also lists the campaigns that still have a RUNNING target, whatever
-- their state, and looks for (retries, adds again) those targets' steps. Ids only, as before; the rows are read under
-- the campaign's tenant scope (RLS).
--
-- Flat as the tables grow: the open campaigns come from their partial index (Campaign_open_by_id_idx), the others from
-- a partial index of the RUNNING targets, which holds only the targets on their terminals now (a tenant's are at most
-- the largest maxConcurrentPerTenant of its campaigns; a target leaves it once its step ends it). The state lists are
-- written in the statements as in the indexes, so even a generic plan proves the predicates.
CREATE INDEX IF NOT EXISTS "CampaignTarget_running_by_campaign_idx" ON "CampaignTarget"("campaignId", "id") WHERE "state" = 'RUNNING';

-- Replaced by payorch_swept_campaigns (the sweep is its only caller).
DROP FUNCTION IF EXISTS payorch_open_campaigns(uuid, int);

-- The campaigns the sweep looks at after the cursor p_after_id (the nil uuid for the first page), in id order: the open
-- ones, and the others that still have a RUNNING target.
CREATE FUNCTION payorch_swept_campaigns(p_after_id uuid, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT c."id", c."tenantId" FROM "Campaign" c
        WHERE c."id" IN (
          (SELECT o."id" FROM "Campaign" o
            WHERE o."state" IN ('RUNNING', 'PAUSED') AND o."id" > p_after_id ORDER BY o."id" LIMIT p_limit)
          UNION
          (SELECT DISTINCT t."campaignId" FROM "CampaignTarget" t
            WHERE t."state" = 'RUNNING' AND t."campaignId" > p_after_id ORDER BY t."campaignId" LIMIT p_limit))
        ORDER BY c."id" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_swept_campaigns(uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_swept_campaigns(uuid, int) TO payorch_app;

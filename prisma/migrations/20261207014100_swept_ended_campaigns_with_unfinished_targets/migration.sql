-- The campaign sweep (apps/settlement-worker campaign-sweep.ts) listed, besides the open campaigns, only the ended
-- (COMPLETED, CANCELED) ones with a RUNNING target. An ended campaign whose target is PENDING or RETRYING (completed
-- around it before a wave stopped passing around open targets) was never listed: nothing ended that target, and the
-- sweep, which removes an ended campaign's jobs from Redis once no target of it is unfinished, kept its failed jobs for
-- good. payorch_swept_campaigns now lists the ended campaigns with any unfinished (PENDING, RETRYING, RUNNING) target,
-- whatever its state: the sweep retries or adds again each such target's step, and the step ends it (a RUNNING one with
-- its operation; a PENDING or RETRYING one SKIPPED, never sent). Ids only, as before; the rows are read under the
-- campaign's tenant scope (RLS).
--
-- Flat as the tables grow: a partial index of the unfinished targets (those of the open campaigns, and the few an ended
-- campaign keeps until its steps end them; a target leaves it once it ends), read here as a loose index scan: the
-- recursive term jumps from one campaign id to the next (one index probe per campaign listed, at most p_limit), never
-- through a campaign's targets. The sweep's pages of a campaign's unfinished targets read it too (an open campaign's
-- by its wave, an ended one's all), never its ended targets. It replaces the partial index of RUNNING targets; the
-- previous release's statements (t."state" = 'RUNNING' per campaign) keep CampaignTarget_campaignId_waveIndex_state_idx.
-- The state lists are written in the statements as in the index, so even a generic plan proves the predicate. Build time
-- on a large table: this takes a write lock for the build; build it CONCURRENTLY by hand first if the table is large
-- (the statement below is then a no-op).
--
-- Compatible with the previous release (docs/runbooks/database.md, "Rolling deploys"): same function, arguments and
-- columns; its sweep, given an ended campaign with no RUNNING target, finds nothing of it to check.
CREATE INDEX IF NOT EXISTS "CampaignTarget_unfinished_by_campaign_idx" ON "CampaignTarget"("campaignId", "waveIndex", "id")
  WHERE "state" IN ('PENDING', 'RETRYING', 'RUNNING');
DROP INDEX IF EXISTS "CampaignTarget_running_by_campaign_idx";

-- The campaigns the sweep looks at after the cursor p_after_id (the nil uuid for the first page), in id order: the open
-- ones, and the others that still have an unfinished target.
CREATE OR REPLACE FUNCTION payorch_swept_campaigns(p_after_id uuid, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ WITH RECURSIVE unfinished ("campaignId") AS (
          (SELECT t."campaignId" FROM "CampaignTarget" t
            WHERE t."state" IN ('PENDING', 'RETRYING', 'RUNNING') AND t."campaignId" > p_after_id
            ORDER BY t."campaignId" LIMIT 1)
          UNION ALL
          SELECT (SELECT t."campaignId" FROM "CampaignTarget" t
                   WHERE t."state" IN ('PENDING', 'RETRYING', 'RUNNING') AND t."campaignId" > u."campaignId"
                   ORDER BY t."campaignId" LIMIT 1)
          FROM unfinished u WHERE u."campaignId" IS NOT NULL)
        SELECT c."id", c."tenantId" FROM "Campaign" c
        WHERE c."id" IN (
          (SELECT o."id" FROM "Campaign" o
            WHERE o."state" IN ('RUNNING', 'PAUSED') AND o."id" > p_after_id ORDER BY o."id" LIMIT p_limit)
          UNION
          (SELECT u."campaignId" FROM unfinished u WHERE u."campaignId" IS NOT NULL LIMIT p_limit))
        ORDER BY c."id" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_swept_campaigns(uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_swept_campaigns(uuid, int) TO payorch_app;

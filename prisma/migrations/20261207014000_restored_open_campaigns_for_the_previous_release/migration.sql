-- Rolling deploy: migration 20261206222905_added_ended_campaigns_with_running_targets_to_sweep dropped
-- payorch_open_campaigns(uuid, int), which the campaign sweep of the release before it calls (apps/settlement-worker
-- campaign-sweep.ts `openCampaigns`: SELECT "id", "tenantId" FROM payorch_open_campaigns($1::uuid, $2::int)). The
-- migration runs before the new workers start and the old ones keep running until they are replaced: every sweep of
-- an old worker failed meanwhile (function does not exist), and lost campaign jobs waited for a new worker.
-- Migrations stay compatible with the previous release's code (docs/runbooks/database.md, "Rolling deploys"), so the
-- function is back as that release created it (20261206181610_added_open_campaigns_scan): same name, arguments and
-- columns, the same rows (the open campaigns after the cursor, in id order, over the partial index
-- Campaign_open_by_id_idx, which was never dropped), the same grants.
--
-- DROP it (DROP FUNCTION IF EXISTS payorch_open_campaigns(uuid, int)) in a migration of a later release, once no
-- worker of a release before 20261206222905 runs anywhere: the release after the one that ships this migration at the
-- latest (its previous release calls payorch_swept_campaigns only). Nothing in this release calls it.
CREATE OR REPLACE FUNCTION payorch_open_campaigns(p_after_id uuid, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT c."id", c."tenantId" FROM "Campaign" c
        WHERE c."state" IN ('RUNNING', 'PAUSED') AND c."id" > p_after_id
        ORDER BY c."id" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_open_campaigns(uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_open_campaigns(uuid, int) TO payorch_app;

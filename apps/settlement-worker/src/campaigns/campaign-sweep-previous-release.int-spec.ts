import { skipOpenTargets, transitionCampaign, transitionTarget } from '@payorch/campaigns';
import { Prisma, type PrismaClient, type TransactionClient } from '@payorch/db';
import { testRedisPrefix } from '@payorch/testing';

import { CampaignHarness } from './testing/campaign-harness.testing';

const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const MAX_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
/** Small pages, so that the keyset walks below cross page boundaries (the releases' own page is 200). */
const CAMPAIGN_PAGE = 2;

/**
 * Rolling deploys (docs/runbooks/database.md): the migrations run before the new workers start, and the workers of
 * the previous release keep sweeping against the migrated schema until they are replaced. Migration
 * 20261206222905 dropped payorch_open_campaigns, which the sweep of the release before it called: every sweep of an
 * old worker failed until the worker was gone. These are the previous releases' sweep statements, copied as they ran
 * (`git log -p apps/settlement-worker/src/campaigns/campaign-sweep.ts`), run on the schema of this release as the
 * worker's role (payorch_app), with the rows each release expected.
 */
describe('the campaign sweep of the previous releases on the migrated schema (PostgreSQL)', () => {
  const h = new CampaignHarness({ prefix: testRedisPrefix('campaign-sweep-previous-release'), poolSize: 2 });
  let owner: PrismaClient;
  /** The campaigns of two tenants in every state, by what their rows hold. */
  const c: Record<'running' | 'paused' | 'otherTenantRunning' | 'canceledDone' | 'canceledRunning' | 'completedPending', { tenantId: string; id: string }> =
    {} as never;

  /** Creates a campaign of two terminals (one wave) and moves it on in the insert's transaction. */
  const campaign = async (tenantId: string, name: string, then: (tx: TransactionClient, campaignId: string, targetIds: string[]) => Promise<unknown>) => {
    const id = await h.createCampaign(tenantId, name, { perWave: 2 }, async (tx, campaignId) => {
      const targets = await tx.campaignTarget.findMany({ where: { campaignId }, orderBy: { id: 'asc' } });
      await then(
        tx,
        campaignId,
        targets.map((t) => t.id),
      );
      return campaignId;
    });
    return { tenantId, id };
  };
  const start = (tx: TransactionClient, targetId: string) => transitionTarget(tx, { targetId, from: ['PENDING'], to: 'RUNNING', countAttempt: true });
  const end = (tx: TransactionClient, campaignId: string, to: 'COMPLETED' | 'CANCELED') => transitionCampaign(tx, { campaignId, from: ['RUNNING'], to });

  beforeAll(async () => {
    ({ owner } = await h.start());
    const [a, b] = await Promise.all(['chain-a', 'chain-b'].map(async (name) => (await owner.tenant.create({ data: { name } })).id));
    c.running = await campaign(a!, 'running', (tx, _, [first]) => start(tx, first!));
    c.paused = await campaign(a!, 'paused', (tx, id) => transitionCampaign(tx, { campaignId: id, from: ['RUNNING'], to: 'PAUSED' }));
    c.otherTenantRunning = await campaign(b!, 'other-tenant-running', async () => undefined);
    c.canceledDone = await campaign(a!, 'canceled-done', async (tx, id) => {
      await end(tx, id, 'CANCELED');
      await skipOpenTargets(tx, id, 'campaign canceled');
    });
    c.canceledRunning = await campaign(b!, 'canceled-running', async (tx, id, [first]) => {
      await start(tx, first!);
      await end(tx, id, 'CANCELED');
      await skipOpenTargets(tx, id, 'campaign canceled');
    });
    // Completed around a PENDING target, as campaigns stored before a wave stopped passing around open targets.
    c.completedPending = await campaign(a!, 'completed-pending', (tx, id) => end(tx, id, 'COMPLETED'));
  }, 60_000);

  afterAll(() => h.stop());

  const byId = (...campaigns: Array<{ tenantId: string; id: string }>) => [...campaigns].sort((x, y) => (x.id < y.id ? -1 : 1));

  /** Every page of a release's campaign scan, walked as its sweep walks it (keyset on the last id). */
  async function walk(page: (after: string) => Promise<Array<{ id: string; tenantId: string }>>) {
    const rows: Array<{ id: string; tenantId: string }> = [];
    let after = NIL_UUID;
    for (;;) {
      const got = await page(after);
      rows.push(...got);
      const last = got.at(-1);
      if (got.length < CAMPAIGN_PAGE || last === undefined) return rows;
      after = last.id;
    }
  }

  it('answers the sweep of the releases before 20261206222905: payorch_open_campaigns lists the open campaigns across tenants, in id order', async () => {
    // CampaignSweep.openCampaigns before 5852b5f, as the worker's role.
    const rows = await walk(
      (after) => h.db.prisma.$queryRaw<Array<{ id: string; tenantId: string }>>`
        SELECT "id", "tenantId" FROM payorch_open_campaigns(${after}::uuid, ${CAMPAIGN_PAGE}::int)`,
    );
    // Open ones only (RUNNING, PAUSED), whatever their targets; the ended ones are not that release's to look at.
    expect(rows).toEqual(byId(c.running, c.paused, c.otherTenantRunning));
  });

  it('answers the sweep of release 5852b5f: payorch_swept_campaigns lists the campaigns it looks at, and its step checks find the RUNNING targets', async () => {
    // CampaignSweep.sweptCampaigns of 5852b5f, as the worker's role.
    const rows = await walk(
      (after) => h.db.prisma.$queryRaw<Array<{ id: string; tenantId: string }>>`
        SELECT "id", "tenantId" FROM payorch_swept_campaigns(${after}::uuid, ${CAMPAIGN_PAGE}::int)`,
    );
    // The open ones and the ended ones with an unfinished target: what that release expected (open, or ended with a
    // RUNNING target) and the ones this release looks at too (ended with a PENDING target).
    expect(rows).toEqual(byId(c.running, c.paused, c.otherTenantRunning, c.canceledRunning, c.completedPending));

    // Its budgeted step checks of an ended campaign (CampaignSweep.unfinishedTargets of 5852b5f, StepScope `running`),
    // under the campaign's tenant: the RUNNING target; none for the campaign listed for its PENDING target only.
    const which = Prisma.sql`t."state" = 'RUNNING'`;
    const steps = (campaign: { tenantId: string; id: string }) =>
      h.db.querySql<{ id: string; state: string; operationId: string | null; waveIndex: number }>(
        campaign.tenantId,
        Prisma.sql`
          SELECT t."id", t."state", t."operationId", t."waveIndex" FROM "CampaignTarget" t
          WHERE t."campaignId" = ${campaign.id}::uuid AND ${which} AND t."id" > ${NIL_UUID}::uuid AND t."id" <= ${MAX_UUID}::uuid
          ORDER BY t."id" LIMIT ${1_000}`,
      );
    expect(await steps(c.canceledRunning)).toEqual([expect.objectContaining({ state: 'RUNNING', waveIndex: 0 })]);
    expect(await steps(c.completedPending)).toEqual([]);
  });
});

import type { Queue } from 'bullmq';

import { MAX_ATTEMPTS_BEFORE_DEADLINE } from '@payorch/campaigns';
import type { GatewayConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { TenantContext } from '@payorch/domain';

import { CampaignsService } from './campaigns.service';
import { createCampaignSchema } from './dto/campaign.dto';

const DAY_MS = 86_400_000;

/**
 * A campaign's deadline bounds the attempts of an offline terminal (issue 20 review): with a deadline `maxAttempts`
 * does not apply, and any deadline (year 9999) with a retry every second was accepted — an operation row every ~2 s
 * per offline terminal until then. Checked before anything is stored (the database here only says it was reached).
 */
describe(CampaignsService.name, () => {
  const ctx: TenantContext = { tenantId: '11111111-1111-4111-8111-111111111111', actor: { type: 'api_key', id: null }, requestId: 'r' };
  const reached = new Error('reached the database');
  const db = { withTenant: jest.fn(() => Promise.reject(reached)) };
  const sut = new CampaignsService({ CAMPAIGNS_MAX_PER_TENANT: 50 } as GatewayConfig, db as unknown as Database, { on: () => undefined } as unknown as Queue);
  const create = (policy: Record<string, unknown>) =>
    sut.create(ctx, createCampaignSchema.parse({ name: 'keys', operation: { type: 'load_keys' }, selector: {}, policy }), 'key');
  const inDays = (days: number) => new Date(Date.now() + days * DAY_MS).toISOString();

  beforeEach(() => db.withTenant.mockClear());

  it.each([
    ['a year-9999 deadline, even with the longest retry delay', { deadline: '9999-12-31T23:59:59Z', retryDelaySeconds: 86_400 }],
    ['a week of retries every second', { deadline: inDays(7), retryDelaySeconds: 1 }],
    ['a day of retries every minute (the default delay)', { deadline: inDays(1) }],
  ])('refuses %s: 400 on policy.deadline, naming the latest deadline and the shortest delay that fit', async (_, policy) => {
    const refused = await create(policy).catch((error: unknown) => error);
    expect(refused).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { issues: [{ field: 'policy.deadline', message: expect.stringMatching(/^allows \d+ attempts of an offline terminal/) }] },
    });
    expect((refused as Error).message).toMatch(
      new RegExp(`at most ${MAX_ATTEMPTS_BEFORE_DEADLINE} may fit: set it before .+ or retryDelaySeconds to at least \\d+$`),
    );
    expect(db.withTenant).not.toHaveBeenCalled();
  });

  it('names a delay and a deadline that do fit', async () => {
    const deadline = inDays(7);
    const refused = (await create({ deadline, retryDelaySeconds: 60 }).catch((error: unknown) => error)) as Error;
    const [, latest, delay] = /set it before (\S+) or retryDelaySeconds to at least (\d+)$/.exec(refused.message)!;
    await expect(create({ deadline, retryDelaySeconds: Number(delay) })).rejects.toBe(reached);
    await expect(create({ deadline: new Date(Date.parse(latest!) - 60_000).toISOString(), retryDelaySeconds: 60 })).rejects.toBe(reached);
  });

  it('accepts the docs’ rollout: a week of retries every 15 minutes (672 attempts), and any deadline within the bound', async () => {
    await expect(create({ deadline: inDays(7), retryDelaySeconds: 900 })).rejects.toBe(reached);
    await expect(create({ deadline: inDays(365), retryDelaySeconds: 86_400 })).rejects.toBe(reached);
    await expect(create({ retryDelaySeconds: 1 })).rejects.toBe(reached);
    expect(db.withTenant).toHaveBeenCalledTimes(3);
  });
});

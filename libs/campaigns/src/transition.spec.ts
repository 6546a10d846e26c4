import type { TransactionClient } from '@payorch/db';

import { CampaignTransitionError, insertCampaign, skipOpenTargets, transitionCampaign, transitionTarget, transitionWave } from './transition';

/** A transaction that fails the test if anything reaches the database: illegal writes are refused before. */
const untouchable = new Proxy({} as TransactionClient, {
  get: (_target, key) => {
    throw new Error(`the database was touched (${String(key)})`);
  },
});

describe('campaign owner (transition.ts)', () => {
  it.each([
    ['campaign COMPLETED → RUNNING', () => transitionCampaign(untouchable, { campaignId: 'c', from: ['COMPLETED'], to: 'RUNNING' })],
    ['campaign CANCELED → PAUSED', () => transitionCampaign(untouchable, { campaignId: 'c', from: ['CANCELED'], to: 'PAUSED' })],
    ['wave PASSED → HALTED', () => transitionWave(untouchable, { waveId: 'w', from: ['PASSED'], to: 'HALTED' })],
    ['target SUCCEEDED → RUNNING', () => transitionTarget(untouchable, { targetId: 't', from: ['SUCCEEDED'], to: 'RUNNING' })],
    ['target PENDING → SUCCEEDED (never ran)', () => transitionTarget(untouchable, { targetId: 't', from: ['PENDING'], to: 'SUCCEEDED' })],
  ])('refuses %s before touching the database', async (_what, write) => {
    await expect(write()).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    await expect(write()).rejects.toBeInstanceOf(CampaignTransitionError);
  });

  it('refuses a write without source states', async () => {
    await expect(transitionTarget(untouchable, { targetId: 't', from: [], to: 'FAILED' })).rejects.toMatchObject({ code: 'INVALID_WRITE' });
  });

  it('creates targets only pending (in a wave) or skipped (in none)', async () => {
    const base = {
      tenantId: 't',
      name: 'n',
      idempotencyKey: 'k',
      operationType: 'LOAD_KEYS' as const,
      params: {},
      selector: {},
      policy: {},
      deadline: null,
      waves: [],
    };
    await expect(
      insertCampaign(untouchable, { ...base, targets: [{ terminalId: 'a', storeId: 's', waveIndex: 0, state: 'RUNNING' as 'PENDING' }] }),
    ).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    await expect(
      insertCampaign(untouchable, { ...base, targets: [{ terminalId: 'a', storeId: 's', waveIndex: null, state: 'PENDING' }] }),
    ).rejects.toMatchObject({
      code: 'INVALID_WRITE',
    });
  });

  it('skips open targets with one statement, through the table', async () => {
    const calls: unknown[][] = [];
    const tx = { $executeRaw: (...args: unknown[]) => (calls.push(args), Promise.resolve(3)) } as unknown as TransactionClient;
    await expect(skipOpenTargets(tx, 'c', 'campaign canceled')).resolves.toBe(3);
    expect((calls[0]![0] as string[]).join('?')).toContain(`UPDATE "CampaignTarget" SET "state" = 'SKIPPED'`);
  });
});

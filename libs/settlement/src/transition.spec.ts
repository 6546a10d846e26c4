import type { TransactionClient } from '@payorch/db';
import type { SettlementStatus } from '@payorch/prisma';

import { canTransitionSettlement, insertSettlement, SETTLEMENT_EVENT, SETTLEMENT_TRANSITIONS, transitionSettlement } from './transition';

const STATES = Object.keys(SETTLEMENT_TRANSITIONS) as SettlementStatus[];

function recordingTx() {
  const statements: number[] = [];
  const tx = { $queryRaw: async () => (statements.push(1), []) } as unknown as TransactionClient;
  return { tx, statements };
}

describe('SETTLEMENT_TRANSITIONS', () => {
  it('runs PENDING → RUNNING (→ RUNNING per attempt) → COMPLETED | FAILED, and nothing leaves a final state', () => {
    expect(canTransitionSettlement('PENDING', 'RUNNING')).toBe(true);
    expect(canTransitionSettlement('RUNNING', 'RUNNING')).toBe(true);
    expect(canTransitionSettlement('RUNNING', 'COMPLETED')).toBe(true);
    expect(canTransitionSettlement('PENDING', 'COMPLETED')).toBe(false);
    expect(SETTLEMENT_TRANSITIONS.COMPLETED).toEqual({});
    expect(SETTLEMENT_TRANSITIONS.FAILED).toEqual({});
    expect(SETTLEMENT_EVENT).toEqual({ COMPLETED: 'settlement.completed', FAILED: 'settlement.failed' });
  });
});

describe(transitionSettlement.name, () => {
  it.each(STATES.flatMap((from) => STATES.filter((to) => !canTransitionSettlement(from, to)).map((to) => ({ from, to }))))(
    'refuses $from → $to before touching the database',
    async ({ from, to }) => {
      const { tx, statements } = recordingTx();
      await expect(transitionSettlement(tx, { settlementId: 'x', from: [from], to, eventData: {} })).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
      expect(statements).toEqual([]);
    },
  );

  it('needs the data of the event a final state publishes, and writes with one statement', async () => {
    const { tx, statements } = recordingTx();
    await expect(transitionSettlement(tx, { settlementId: 'x', from: ['RUNNING'], to: 'FAILED' })).rejects.toMatchObject({ code: 'INVALID_WRITE' });
    await expect(
      transitionSettlement(tx, { settlementId: 'x', from: ['RUNNING'], to: 'COMPLETED', set: { status: 'FAILED' } as never, eventData: {} }),
    ).rejects.toMatchObject({
      code: 'INVALID_WRITE',
    });
    expect(statements).toEqual([]);
    expect(await transitionSettlement(tx, { settlementId: 'x', from: ['RUNNING'], to: 'FAILED', eventData: { code: 'X' } })).toBeNull();
    expect(statements).toHaveLength(1);
  });

  it('creates settlements only PENDING (manual) or RUNNING (scheduled)', async () => {
    const { tx, statements } = recordingTx();
    const input = { tenantId: 't', terminalId: 'x', storeId: 's', businessDate: new Date('2026-03-01T00:00:00Z'), runKey: 'k', trigger: 'manual' };
    await expect(insertSettlement(tx, { ...input, status: 'COMPLETED' })).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    expect(statements).toEqual([]);
    expect(await insertSettlement(tx, { ...input, status: 'PENDING' })).toBeNull();
    expect(statements).toHaveLength(1);
  });
});

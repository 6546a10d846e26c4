import { ORDER_STATES, ORDER_STATUS_BY_STATE } from '@payorch/assist-tokenpay';
import type { TransactionClient } from '@payorch/db';
import type { WalletPaymentState } from '@payorch/prisma';

import { FINAL_STATES, stateOfOrderStatus, UNRESOLVED_STATES } from './outcome';
import { canTransitionWalletPayment, STATE_OF_ORDER_STATE, transitionWalletPayment, WALLET_TRANSITIONS } from './transition';

const STATES = Object.keys(WALLET_TRANSITIONS) as WalletPaymentState[];

function recordingTx() {
  const statements: number[] = [];
  const tx = { $queryRaw: async () => (statements.push(1), []) } as unknown as TransactionClient;
  return { tx, statements };
}

describe('WALLET_TRANSITIONS', () => {
  it.each(ORDER_STATES)('maps Assist orderstate %s the way the outcome mapping does', (orderState) => {
    expect(STATE_OF_ORDER_STATE[orderState]).toBe(stateOfOrderStatus(ORDER_STATUS_BY_STATE[orderState]));
  });

  it('names Delayed, PartialDelayed, Canceled and PartialCanceled, and the after-payment operations that reach them', () => {
    expect(STATE_OF_ORDER_STATE).toMatchObject({ Delayed: 'AUTHORIZED', PartialDelayed: 'APPROVED', Canceled: 'CANCELED', PartialCanceled: 'APPROVED' });
    expect(canTransitionWalletPayment('AUTHORIZED', 'APPROVED')).toBe(true); // charge.cfm
    expect(canTransitionWalletPayment('AUTHORIZED', 'CANCELED')).toBe(true); // wscancel.cfm before the charge
    expect(canTransitionWalletPayment('APPROVED', 'CANCELED')).toBe(true); // full cancel
    expect(canTransitionWalletPayment('APPROVED', 'APPROVED')).toBe(true); // PartialCanceled
  });

  it('lets every unresolved payment reach every state an Assist order state maps to, or stay while it cannot tell', () => {
    for (const from of UNRESOLVED_STATES) {
      expect(canTransitionWalletPayment(from, from)).toBe(true);
      for (const to of new Set(Object.values(STATE_OF_ORDER_STATE).filter((s) => s !== 'PROCESSING')))
        expect([from, to, canTransitionWalletPayment(from, to)]).toEqual([from, to, true]);
      expect(canTransitionWalletPayment(from, 'REJECTED')).toBe(true); // ORDER_NOT_FOUND
    }
  });

  it('lets the gateway store any tokenpay outcome after PROCESSING', () => {
    for (const outcome of ['rejected', 'unknown', 'requires_action'] as const) {
      const state = outcome === 'rejected' ? 'REJECTED' : outcome === 'unknown' ? 'UNKNOWN' : 'REQUIRES_ACTION';
      expect(canTransitionWalletPayment('PROCESSING', state)).toBe(true);
    }
  });

  it('ends at DECLINED, CANCELED and REJECTED, and never goes back to PENDING', () => {
    for (const final of ['DECLINED', 'CANCELED', 'REJECTED'] as const) expect(WALLET_TRANSITIONS[final]).toEqual({});
    for (const from of STATES) if (from !== 'PENDING') expect(canTransitionWalletPayment(from, 'PENDING')).toBe(false);
    for (const final of FINAL_STATES) expect(canTransitionWalletPayment(final, 'UNKNOWN')).toBe(false);
  });
});

describe(transitionWalletPayment.name, () => {
  it.each(STATES.flatMap((from) => STATES.filter((to) => !canTransitionWalletPayment(from, to)).map((to) => ({ from, to }))))(
    'refuses $from → $to before touching the database',
    async ({ from, to }) => {
      const { tx, statements } = recordingTx();
      await expect(transitionWalletPayment(tx, { paymentId: 'x', from: [from], change: { state: to, error: null, completedAt: null } })).rejects.toMatchObject({
        code: 'ILLEGAL_TRANSITION',
      });
      expect(statements).toEqual([]);
    },
  );

  it('keeps the state only where the table allows it, with one statement', async () => {
    const { tx, statements } = recordingTx();
    expect(await transitionWalletPayment(tx, { paymentId: 'x', from: ['UNKNOWN'], change: null, countResolutionAttempt: true })).toBeNull();
    expect(statements).toHaveLength(1);
    await expect(transitionWalletPayment(tx, { paymentId: 'x', from: ['DECLINED'], change: null })).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    expect(statements).toHaveLength(1);
  });
});

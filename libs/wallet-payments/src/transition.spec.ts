import { ORDER_STATES, ORDER_STATUS_BY_STATE } from '@payorch/assist-tokenpay';
import type { TransactionClient } from '@payorch/db';
import type { WalletPaymentState } from '@payorch/prisma';

import { Prisma } from '@payorch/db';

import { amountsOfOrder, changeOfHumanVerdict, FINAL_STATES, paidState, stateOfOrderStatus, UNRESOLVED_STATES } from './outcome';
import {
  addOperation,
  afterOperation,
  canTransitionWalletPayment,
  resolveWalletOperationByHand,
  resolveWalletPaymentByHand,
  settleWalletOperation,
  STATE_OF_ORDER_STATE,
  transitionWalletPayment,
  WALLET_HUMAN_RESOLUTIONS,
  WALLET_OPERATION_HUMAN_RESOLUTIONS,
  WALLET_OPERATION_TRANSITIONS,
  WALLET_TRANSITIONS,
} from './transition';

const STATES = Object.keys(WALLET_TRANSITIONS) as WalletPaymentState[];

function recordingTx() {
  const statements: number[] = [];
  const sql: Prisma.Sql[] = [];
  const tx = {
    $queryRaw: async (strings: TemplateStringsArray, ...values: unknown[]) => (
      statements.push(1),
      sql.push(Prisma.sql(strings, ...(values as Prisma.Sql[]))),
      []
    ),
  } as unknown as TransactionClient;
  return { tx, statements, sql };
}

describe('WALLET_TRANSITIONS', () => {
  it.each(ORDER_STATES)('maps Assist orderstate %s the way the outcome mapping does', (orderState) => {
    expect(STATE_OF_ORDER_STATE[orderState]).toBe(stateOfOrderStatus(ORDER_STATUS_BY_STATE[orderState]));
  });

  it('names Delayed, PartialDelayed, Canceled and PartialCanceled, and the after-payment operations that reach them', () => {
    expect(STATE_OF_ORDER_STATE).toMatchObject({
      Delayed: 'AUTHORIZED',
      PartialDelayed: 'PARTIALLY_CAPTURED',
      Canceled: 'CANCELED',
      PartialCanceled: 'PARTIALLY_REFUNDED',
    });
    expect(canTransitionWalletPayment('AUTHORIZED', 'APPROVED')).toBe(true); // charge.cfm, all of it
    expect(canTransitionWalletPayment('AUTHORIZED', 'PARTIALLY_CAPTURED')).toBe(true); // charge.cfm, part of it
    expect(canTransitionWalletPayment('PARTIALLY_CAPTURED', 'APPROVED')).toBe(true); // the rest captured or released
    expect(canTransitionWalletPayment('AUTHORIZED', 'CANCELED')).toBe(true); // wscancel.cfm before the charge
    expect(canTransitionWalletPayment('APPROVED', 'PARTIALLY_REFUNDED')).toBe(true); // PartialCanceled
    expect(canTransitionWalletPayment('PARTIALLY_REFUNDED', 'PARTIALLY_REFUNDED')).toBe(true); // another partial refund
    expect(canTransitionWalletPayment('PARTIALLY_REFUNDED', 'REFUNDED')).toBe(true); // Canceled
    expect(canTransitionWalletPayment('APPROVED', 'CANCELED')).toBe(false); // a refund is REFUNDED, a release CANCELED
    expect(canTransitionWalletPayment('REFUNDED', 'PARTIALLY_REFUNDED')).toBe(false);
  });

  it('lets every payment that was sent reach every state an Assist order state maps to, or stay while it cannot tell', () => {
    for (const from of UNRESOLVED_STATES) {
      expect(canTransitionWalletPayment(from, from)).toBe(true);
      expect(canTransitionWalletPayment(from, 'REJECTED')).toBe(true); // ORDER_NOT_FOUND, ORDER_NUMBER_TAKEN
      if (from === 'PENDING') continue;
      for (const to of new Set(Object.values(STATE_OF_ORDER_STATE).filter((s) => s !== 'PROCESSING')))
        expect([from, to, canTransitionWalletPayment(from, to)]).toEqual([from, to, true]);
      expect(canTransitionWalletPayment(from, 'UNKNOWN')).toBe(true); // ORDER_NOT_PROVEN: left to a human
    }
  });

  it('never gives a payment that was never sent (PENDING) an order state: no order at Assist can be its outcome', () => {
    expect(Object.keys(WALLET_TRANSITIONS.PENDING).sort()).toEqual(['PENDING', 'PROCESSING', 'REJECTED']);
  });

  it('lets the gateway store any tokenpay outcome after PROCESSING', () => {
    for (const outcome of ['rejected', 'unknown', 'requires_action'] as const) {
      const state = outcome === 'rejected' ? 'REJECTED' : outcome === 'unknown' ? 'UNKNOWN' : 'REQUIRES_ACTION';
      expect(canTransitionWalletPayment('PROCESSING', state)).toBe(true);
    }
  });

  it('ends at DECLINED, CANCELED, REFUNDED and REJECTED, and never goes back to PENDING', () => {
    for (const final of ['DECLINED', 'CANCELED', 'REFUNDED', 'REJECTED'] as const) expect(WALLET_TRANSITIONS[final]).toEqual({});
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

describe('after-payment operations', () => {
  const authorized = { authorized: 10000n, captured: 0n, released: 0n, refunded: 0n };

  it.each([
    ['CAPTURE', authorized, 10000n, 'APPROVED', 'wallet_payment.captured'],
    ['CAPTURE', authorized, 4000n, 'PARTIALLY_CAPTURED', 'wallet_payment.partially_captured'],
    ['CAPTURE', { ...authorized, captured: 4000n }, 6000n, 'APPROVED', 'wallet_payment.captured'],
    ['CANCEL_AUTHORIZATION', authorized, 10000n, 'CANCELED', 'wallet_payment.canceled'],
    ['CANCEL_AUTHORIZATION', authorized, 1000n, 'AUTHORIZED', 'wallet_payment.partially_canceled'],
    ['CANCEL_AUTHORIZATION', { ...authorized, captured: 4000n }, 6000n, 'APPROVED', 'wallet_payment.partially_canceled'],
    ['CANCEL_AUTHORIZATION', { ...authorized, captured: 4000n }, 1000n, 'PARTIALLY_CAPTURED', 'wallet_payment.partially_canceled'],
    ['REFUND', { ...authorized, captured: 10000n }, 3000n, 'PARTIALLY_REFUNDED', 'wallet_payment.partially_refunded'],
    ['REFUND', { ...authorized, captured: 10000n, refunded: 3000n }, 7000n, 'REFUNDED', 'wallet_payment.refunded'],
    ['REFUND', { ...authorized, captured: 4000n, released: 6000n }, 4000n, 'REFUNDED', 'wallet_payment.refunded'],
  ] as const)('%s from %o of %s → %s (%s)', (kind, before, amount, state, eventType) => {
    const after = addOperation(before, kind, amount);
    expect(afterOperation(kind, after)).toEqual({ state, eventType });
  });

  it('every payment move an operation makes is in WALLET_TRANSITIONS', () => {
    const starts = [
      ['AUTHORIZED', authorized],
      ['PARTIALLY_CAPTURED', { ...authorized, captured: 4000n }],
      ['APPROVED', { ...authorized, captured: 10000n }],
      ['PARTIALLY_REFUNDED', { ...authorized, captured: 10000n, refunded: 1000n }],
    ] as const;
    for (const [from, amounts] of starts) {
      const kinds = from === 'AUTHORIZED' || from === 'PARTIALLY_CAPTURED' ? (['CAPTURE', 'CANCEL_AUTHORIZATION'] as const) : (['REFUND'] as const);
      for (const kind of kinds) {
        const open = kind === 'REFUND' ? amounts.captured - amounts.refunded : amounts.authorized - amounts.captured - amounts.released;
        for (const amount of [1n, open]) {
          const { state } = afterOperation(kind, addOperation(amounts, kind, amount));
          expect([from, kind, amount, state, canTransitionWalletPayment(from, state)]).toEqual([from, kind, amount, state, true]);
        }
      }
    }
  });

  it('settles an operation at most once: PENDING/UNKNOWN → SUCCEEDED/FAILED, never back, refused before the database', async () => {
    expect(Object.keys(WALLET_OPERATION_TRANSITIONS.SUCCEEDED)).toEqual([]);
    expect(Object.keys(WALLET_OPERATION_TRANSITIONS.FAILED)).toEqual([]);
    expect(WALLET_OPERATION_TRANSITIONS.PENDING.PENDING).toBeUndefined(); // never "sent again"
    const { tx, statements } = recordingTx();
    await expect(settleWalletOperation(tx, { operationId: 'x', from: ['SUCCEEDED'], to: 'FAILED' })).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    await expect(settleWalletOperation(tx, { operationId: 'x', from: ['PENDING'], to: 'PENDING' })).rejects.toMatchObject({ code: 'ILLEGAL_TRANSITION' });
    expect(statements).toEqual([]);
    // A compare-and-set that finds the operation already settled writes nothing more.
    expect(await settleWalletOperation(tx, { operationId: 'x', from: ['UNKNOWN'], to: 'SUCCEEDED' })).toBeNull();
    expect(statements).toHaveLength(1);
  });
});

describe("a person's verdict (POST …/resolve)", () => {
  const oneStage = { id: 'p', orderNumber: 'order-1', amount: 10_000n, currency: 'RUB', twoStage: false, assistOrder: null };
  const twoStage = { ...oneStage, twoStage: true };
  const by = { note: 'back office: Approved', actor: { type: 'api_key', id: 'key-1' } };

  it('resolves only UNKNOWN, only along WALLET_TRANSITIONS, and only to final states the job never leaves', () => {
    expect(Object.keys(WALLET_HUMAN_RESOLUTIONS).sort()).toEqual(['APPROVED', 'AUTHORIZED', 'DECLINED', 'REJECTED']);
    for (const to of Object.keys(WALLET_HUMAN_RESOLUTIONS) as WalletPaymentState[]) {
      expect([to, canTransitionWalletPayment('UNKNOWN', to), FINAL_STATES.has(to)]).toEqual([to, true, true]);
      // The resolution job only writes from the unresolved states: a verdict is never overwritten by it.
      for (const back of UNRESOLVED_STATES) expect([to, back, canTransitionWalletPayment(to, back)]).toEqual([to, back, false]);
    }
    expect(Object.keys(WALLET_OPERATION_HUMAN_RESOLUTIONS).sort()).toEqual(['FAILED', 'SUCCEEDED']);
    for (const to of ['SUCCEEDED', 'FAILED'] as const) {
      expect(WALLET_OPERATION_TRANSITIONS.UNKNOWN[to]).toBeDefined();
      expect(WALLET_OPERATION_TRANSITIONS[to]).toEqual({});
    }
  });

  it('a paid verdict sets the money a paid order of that payment sets: one-stage APPROVED, two-stage AUTHORIZED', () => {
    expect(paidState(false)).toBe('APPROVED');
    expect(paidState(true)).toBe('AUTHORIZED');
    const order = (state: 'Approved' | 'Delayed') =>
      ({ orderNumber: 'order-1', billNumber: '5899110200000001', state, amount: '100.00', currency: 'RUB', orderDate: '', operations: [] }) as never;
    const approved = changeOfHumanVerdict(oneStage, { state: 'APPROVED', note: 'n' });
    expect(approved).toMatchObject({ state: 'APPROVED', error: null, continueUrl: null, completedAt: expect.any(Date) });
    expect(approved.amounts).toEqual({ authorized: 10_000n, captured: 10_000n, released: 0n, refunded: 0n });
    expect(approved.amounts).toEqual(amountsOfOrder(order('Approved'), oneStage));
    const authorized = changeOfHumanVerdict(twoStage, { state: 'AUTHORIZED', note: 'n' });
    expect(authorized.amounts).toEqual({ authorized: 10_000n, captured: 0n, released: 0n, refunded: 0n });
    expect(authorized.amounts).toEqual(amountsOfOrder(order('Delayed'), twoStage));
    // Nothing charged: no money, and the note as the reason.
    for (const state of ['DECLINED', 'REJECTED'] as const) {
      const change = changeOfHumanVerdict(oneStage, { state, note: 'no such order' });
      expect(change.amounts).toBeUndefined();
      expect(change.error).toMatchObject({ source: 'payorch', code: 'RESOLVED_MANUALLY', message: 'resolved by hand: no such order' });
    }
  });

  it("makes a billnumber the person read the payment's order (a manual summary), unless the stored one already is it", () => {
    const change = changeOfHumanVerdict(twoStage, { state: 'AUTHORIZED', note: 'n', billNumber: '5899110200000042' });
    expect(change.assistOrder).toEqual({
      orderNumber: 'order-1',
      billNumber: '5899110200000042',
      orderState: 'Delayed',
      amount: '100.00',
      currency: 'RUB',
      orderDate: '',
      testMode: null,
      source: 'manual',
      duplicate: false,
      operations: [],
    });
    const stored = { ...twoStage, assistOrder: { billNumber: '5899110200000042', source: 'tokenpay', duplicate: false, orderState: 'In Process' } };
    expect(changeOfHumanVerdict(stored, { state: 'AUTHORIZED', note: 'n', billNumber: '5899110200000042' }).assistOrder).toBeUndefined();
    expect(changeOfHumanVerdict(oneStage, { state: 'APPROVED', note: 'n' }).assistOrder).toBeUndefined();
  });

  it('is one compare-and-set from UNKNOWN, and refuses a verdict that does not fit before the database', async () => {
    const { tx, statements, sql } = recordingTx();
    expect(await resolveWalletPaymentByHand(tx, { payment: oneStage, state: 'APPROVED', ...by })).toBeNull();
    expect(statements).toHaveLength(1);
    expect(sql[0]!.values).toContainEqual(['UNKNOWN']);
    expect(sql[0]!.values).toContain('APPROVED');

    for (const [payment, state, code] of [
      [twoStage, 'APPROVED', 'INVALID_WRITE'],
      [oneStage, 'AUTHORIZED', 'INVALID_WRITE'],
      [oneStage, 'CANCELED', 'ILLEGAL_TRANSITION'],
      [oneStage, 'PROCESSING', 'ILLEGAL_TRANSITION'],
    ] as const) {
      await expect(resolveWalletPaymentByHand(tx, { payment, state: state as 'APPROVED', ...by })).rejects.toMatchObject({ code });
    }
    expect(statements).toHaveLength(1);
  });

  /** The `resolution` the one statement writes (its jsonb parameter), parsed. */
  const resolutionsIn = (sql: Prisma.Sql) => ({
    sets: sql.sql.includes('"resolution" ='),
    values: sql.values.filter((v): v is string => typeof v === 'string' && v.includes('"by":"human"')).map((v) => JSON.parse(v) as unknown),
  });

  it('stores who decided on the row in the same compare-and-set: resolution {by human, actor, masked note, billNumber, at}', async () => {
    const now = new Date('2026-12-06T09:00:00.123Z');
    const { tx, statements, sql } = recordingTx();
    const verdict = { note: 'back office: Approved, card 4111 1111 1111 1111', billNumber: '5899110200000001', actor: { type: 'admin', id: 'ops@console' } };
    expect(await resolveWalletPaymentByHand(tx, { payment: oneStage, state: 'APPROVED', ...verdict, now })).toBeNull();
    expect(statements).toHaveLength(1);
    const resolution = {
      by: 'human',
      actor: { type: 'admin', id: 'ops@console' },
      note: 'back office: Approved, card 411111******1111',
      billNumber: '5899110200000001',
      at: '2026-12-06T09:00:00.123Z',
    };
    expect(resolutionsIn(sql[0]!)).toEqual({ sets: true, values: [resolution] });
    expect(sql[0]!.values).toContain(now); // completedAt: the same instant as `at`
    expect(sql[0]!.values.join(' ')).not.toContain('4111 1111 1111 1111');

    // Declined without a billnumber: null, and the note (masked) as the error too.
    await resolveWalletPaymentByHand(tx, { payment: oneStage, state: 'DECLINED', note: 'declined, 5555555555554444', actor: by.actor, now });
    expect(resolutionsIn(sql[1]!).values).toEqual([{ ...resolution, actor: by.actor, note: 'declined, 555555******4444', billNumber: null }]);
    expect(sql[1]!.values.join(' ')).not.toContain('5555555555554444');

    // An operation's verdict, on the operation's row (and its completedAt the same instant).
    await resolveWalletOperationByHand(tx, { operationId: 'op', state: 'SUCCEEDED', ...verdict, billNumber: '5899110200000001.2', now });
    expect(statements).toHaveLength(3);
    expect(resolutionsIn(sql[2]!)).toEqual({ sets: true, values: [{ ...resolution, billNumber: '5899110200000001.2' }] });
    expect(sql[2]!.values).toContain(now);
  });

  it('the job and the gateway write no resolution: only a verdict does', async () => {
    const { tx, sql } = recordingTx();
    await transitionWalletPayment(tx, { paymentId: 'x', from: ['UNKNOWN'], change: { state: 'APPROVED', error: null, completedAt: new Date() } });
    await settleWalletOperation(tx, { operationId: 'x', from: ['UNKNOWN'], to: 'SUCCEEDED' });
    for (const statement of sql) expect(resolutionsIn(statement)).toEqual({ sets: false, values: [] });
  });

  it('settles an UNKNOWN operation with one compare-and-set from UNKNOWN, the note as the error of a failed one', async () => {
    const { tx, statements, sql } = recordingTx();
    expect(await resolveWalletOperationByHand(tx, { operationId: 'op', state: 'FAILED', ...by })).toBeNull();
    expect(statements).toHaveLength(1);
    expect(sql[0]!.values).toContainEqual(['UNKNOWN']);
    expect(sql[0]!.values).toContain(
      JSON.stringify({
        source: 'payorch',
        code: 'RESOLVED_MANUALLY',
        message: 'resolved by hand: back office: Approved',
        firstCode: null,
        secondCode: null,
        field: null,
      }),
    );
    await expect(resolveWalletOperationByHand(tx, { operationId: 'op', state: 'UNKNOWN' as 'FAILED', ...by })).rejects.toMatchObject({
      code: 'ILLEGAL_TRANSITION',
    });
    expect(statements).toHaveLength(1);
  });
});

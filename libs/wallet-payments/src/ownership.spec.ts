import { type AssistOrder, AssistServerError, type DuplicateOutcome, type OrderOutcome } from '@payorch/assist-tokenpay';

import { changeOfFoundOrder, changeOfRefusal, judgeOrder, type PaymentFacts } from './ownership';

const CREATED = new Date('2026-12-06T10:00:00.000Z');
/** `DD.MM.YYYY HH:mm:ss` GMT, `offsetMs` from the payment's creation. */
const gmt = (offsetMs: number) => {
  const d = new Date(CREATED.getTime() + offsetMs);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}.${p(d.getUTCMonth() + 1)}.${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
};

const order = (overrides: Partial<AssistOrder> = {}): AssistOrder => ({
  orderNumber: 'shop-1',
  billNumber: '5899110200000001',
  testMode: false,
  comment: '',
  amount: '70.00',
  currency: 'RUB',
  state: 'Approved',
  orderDate: gmt(1_000),
  customer: { firstname: '', lastname: '', middlename: '', email: '' },
  operations: [],
  ...overrides,
});

const payment = (overrides: Partial<PaymentFacts> = {}): PaymentFacts => ({
  id: '00000000-0000-4000-8000-000000000002',
  orderNumber: 'shop-1',
  state: 'UNKNOWN',
  amount: 7_000n,
  currency: 'RUB',
  twoStage: false,
  createdAt: CREATED,
  assistOrder: null,
  refusedAsDuplicate: false,
  ...overrides,
});

const found = (o: AssistOrder): OrderOutcome => ({ status: 'approved', orderNumber: o.orderNumber, order: o, testMode: false, source: 'orderstate' });
const refusal = (o: AssistOrder): DuplicateOutcome => ({
  status: 'duplicate',
  orderNumber: o.orderNumber,
  error: new AssistServerError(11, 201, 'DUPLICATE_OBJECT', undefined, 'Duplicate object [11/201]'),
  existing: found(o),
});

describe('judgeOrder: an order found under the payment number is its outcome only when provably its own', () => {
  it('adopts an order created after the payment with its number, amount and currency that no other payment holds (a lost answer)', () => {
    expect(judgeOrder(order(), payment(), null)).toMatchObject({ ours: true });
  });

  it('adopts, by billnumber, the order Assist named to the payment own request, and nothing else', () => {
    const named = payment({ state: 'REQUIRES_ACTION', assistOrder: { billNumber: '5899110200000001', duplicate: false } });
    expect(judgeOrder(order({ orderDate: gmt(-3_600_000) }), named, null)).toMatchObject({ ours: true });
    expect(judgeOrder(order({ billNumber: '5899110200000009' }), named, null)).toMatchObject({ ours: false, proof: 'foreign' });
  });

  it.each([
    ['another payment holds it', order(), payment(), '00000000-0000-4000-8000-000000000001'],
    ['it is for another amount', order({ amount: '70.01' }), payment(), null],
    ['it is in another currency', order({ currency: 'USD' }), payment(), null],
    ['Assist created it before the payment existed (beyond the clock skew)', order({ orderDate: gmt(-6 * 60_000) }), payment(), null],
    ['the payment was never sent (PENDING)', order(), payment({ state: 'PENDING' }), null],
  ])('proves an order foreign when %s', (_why, o, p, claimedBy) => {
    expect(judgeOrder(o, p, claimedBy)).toMatchObject({ ours: false, proof: 'foreign' });
  });

  it('never proves an order the payment own when Assist refused the payment request as a duplicate (it created no order)', () => {
    expect(judgeOrder(order(), payment({ refusedAsDuplicate: true }), null)).toMatchObject({ ours: false, proof: 'unproven' });
    // Payments stored before: an order adopted from a duplicate answer proves nothing either.
    const adopted = payment({ state: 'PROCESSING', assistOrder: { billNumber: '5899110200000001', duplicate: true } });
    expect(judgeOrder(order(), adopted, null)).toMatchObject({ ours: false, proof: 'unproven' });
    expect(judgeOrder(order({ orderDate: 'soon' }), payment(), null)).toMatchObject({ ours: false, proof: 'unproven' });
  });
});

describe('the change for an order that is not provably the payment own: never its state', () => {
  it('a duplicate refusal whose order another payment holds is REJECTED ORDER_NUMBER_TAKEN: nothing was charged for it', () => {
    const { change } = changeOfRefusal(refusal(order()), payment({ state: 'PROCESSING' }), '00000000-0000-4000-8000-000000000001');
    expect(change).toMatchObject({
      state: 'REJECTED',
      refusedAsDuplicate: true,
      error: { source: 'payorch', code: 'ORDER_NUMBER_TAKEN', firstCode: 11, secondCode: 201 },
    });
    expect(change.amounts).toBeUndefined();
    expect(change.assistOrder).toBeUndefined();
  });

  it('a duplicate refusal whose order could be a replay of the payment request is UNKNOWN ORDER_NOT_PROVEN, for a human', () => {
    const { change } = changeOfRefusal(refusal(order()), payment({ state: 'PROCESSING' }), null);
    expect(change).toMatchObject({ state: 'UNKNOWN', refusedAsDuplicate: true, completedAt: null, error: { code: 'ORDER_NOT_PROVEN' } });
    expect(change.amounts).toBeUndefined();
  });

  it('a sent payment that finds another payment order is UNKNOWN (it may have been charged), a PENDING one REJECTED', () => {
    const claimed = '00000000-0000-4000-8000-000000000001';
    expect(changeOfFoundOrder(found(order()), payment(), claimed).change).toMatchObject({ state: 'UNKNOWN', error: { code: 'ORDER_NOT_PROVEN' } });
    expect(changeOfFoundOrder(found(order()), payment({ state: 'PENDING' }), null).change).toMatchObject({
      state: 'REJECTED',
      error: { code: 'ORDER_NUMBER_TAKEN', firstCode: null },
    });
    expect(changeOfFoundOrder(found(order()), payment(), null).change).toMatchObject({
      state: 'APPROVED',
      amounts: { authorized: 7_000n, captured: 7_000n },
      assistOrder: { billNumber: '5899110200000001', duplicate: false },
    });
  });
});

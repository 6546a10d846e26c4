import { type AssistOrder, AssistServerError, type DuplicateOutcome, type OrderOutcome } from '@payorch/assist-tokenpay';

import { changeOfFoundOrder, changeOfRefusal, judgeOrder, NO_CLAIMS, type OrderClaims, type PaymentFacts } from './ownership';

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

/** Another payment of the tenant holds the order (its billnumber). */
const held: OrderClaims = { payment: '00000000-0000-4000-8000-000000000001', otherTenant: false };

describe('judgeOrder: an order found under the payment number is its outcome only when provably its own', () => {
  it('adopts an order created after the payment with its number, amount and currency that no other payment holds (a lost answer)', () => {
    expect(judgeOrder(order(), payment(), NO_CLAIMS)).toMatchObject({ ours: true });
  });

  it('adopts, by billnumber, the order Assist named to the payment own request, and nothing else', () => {
    const named = payment({ state: 'REQUIRES_ACTION', assistOrder: { billNumber: '5899110200000001', duplicate: false } });
    expect(judgeOrder(order({ orderDate: gmt(-3_600_000) }), named, NO_CLAIMS)).toMatchObject({ ours: true });
    expect(judgeOrder(order({ billNumber: '5899110200000009' }), named, NO_CLAIMS)).toMatchObject({ ours: false, proof: 'foreign' });
  });

  it.each([
    ['another payment holds it', order(), payment(), held],
    ['it is for another amount', order({ amount: '70.01' }), payment(), NO_CLAIMS],
    ['it is in another currency', order({ currency: 'USD' }), payment(), NO_CLAIMS],
    ['Assist created it before the payment existed (beyond the clock skew)', order({ orderDate: gmt(-6 * 60_000) }), payment(), NO_CLAIMS],
    ['the payment was never sent (PENDING)', order(), payment({ state: 'PENDING' }), NO_CLAIMS],
  ])('proves an order foreign when %s', (_why, o, p, claims) => {
    expect(judgeOrder(o, p, claims)).toMatchObject({ ours: false, proof: 'foreign' });
  });

  it('never proves an order the payment own when a payment of another tenant at the same Assist account has its number', () => {
    // Both answers lost: the order may be either payment's, so neither takes it (a person decides).
    const shared: OrderClaims = { payment: null, otherTenant: true };
    expect(judgeOrder(order(), payment(), shared)).toMatchObject({ ours: false, proof: 'unproven', reason: expect.stringMatching(/another tenant/) });
    expect(changeOfFoundOrder(found(order()), payment(), shared).change).toMatchObject({ state: 'UNKNOWN', error: { code: 'ORDER_NOT_PROVEN' } });
    // What stays decided: the billnumber Assist named to the payment's own request, and a proof it is another's.
    const named = payment({ state: 'REQUIRES_ACTION', assistOrder: { billNumber: '5899110200000001', duplicate: false } });
    expect(judgeOrder(order(), named, shared)).toMatchObject({ ours: true });
    expect(judgeOrder(order({ amount: '70.01' }), payment(), shared)).toMatchObject({ ours: false, proof: 'foreign' });
  });

  it('never proves an order the payment own when Assist refused the payment request as a duplicate (it created no order)', () => {
    expect(judgeOrder(order(), payment({ refusedAsDuplicate: true }), NO_CLAIMS)).toMatchObject({ ours: false, proof: 'unproven' });
    // Payments stored before: an order adopted from a duplicate answer proves nothing either.
    const adopted = payment({ state: 'PROCESSING', assistOrder: { billNumber: '5899110200000001', duplicate: true } });
    expect(judgeOrder(order(), adopted, NO_CLAIMS)).toMatchObject({ ours: false, proof: 'unproven' });
    expect(judgeOrder(order({ orderDate: 'soon' }), payment(), NO_CLAIMS)).toMatchObject({ ours: false, proof: 'unproven' });
  });
});

describe('the change for an order that is not provably the payment own: never its state', () => {
  it('a duplicate refusal whose order another payment holds is REJECTED ORDER_NUMBER_TAKEN: nothing was charged for it', () => {
    const { change } = changeOfRefusal(refusal(order()), payment({ state: 'PROCESSING' }), held);
    expect(change).toMatchObject({
      state: 'REJECTED',
      refusedAsDuplicate: true,
      error: { source: 'payorch', code: 'ORDER_NUMBER_TAKEN', firstCode: 11, secondCode: 201 },
    });
    expect(change.amounts).toBeUndefined();
    expect(change.assistOrder).toBeUndefined();
  });

  it('a duplicate refusal whose order could be a replay of the payment request is UNKNOWN ORDER_NOT_PROVEN, for a human', () => {
    const { change } = changeOfRefusal(refusal(order()), payment({ state: 'PROCESSING' }), NO_CLAIMS);
    expect(change).toMatchObject({ state: 'UNKNOWN', refusedAsDuplicate: true, completedAt: null, error: { code: 'ORDER_NOT_PROVEN' } });
    expect(change.amounts).toBeUndefined();
  });

  it('a sent payment that finds another payment order is UNKNOWN (it may have been charged), a PENDING one REJECTED', () => {
    expect(changeOfFoundOrder(found(order()), payment(), held).change).toMatchObject({ state: 'UNKNOWN', error: { code: 'ORDER_NOT_PROVEN' } });
    expect(changeOfFoundOrder(found(order()), payment({ state: 'PENDING' }), NO_CLAIMS).change).toMatchObject({
      state: 'REJECTED',
      error: { code: 'ORDER_NUMBER_TAKEN', firstCode: null },
    });
    expect(changeOfFoundOrder(found(order()), payment(), NO_CLAIMS).change).toMatchObject({
      state: 'APPROVED',
      amounts: { authorized: 7_000n, captured: 7_000n },
      assistOrder: { billNumber: '5899110200000001', duplicate: false },
    });
  });
});

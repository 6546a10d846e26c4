import type { AssistOrder } from '@payorch/assist-tokenpay';

import { type ClaimingOperation, operationClaims } from './operation-claims';
import { settlementOfOperation } from './outcome';

describe(operationClaims.name, () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 11, 6, 12, minute));
  const op = (fields: Partial<ClaimingOperation> & Pick<ClaimingOperation, 'id'>): ClaimingOperation => ({
    kind: 'CAPTURE',
    amount: 3_000n,
    state: 'SUCCEEDED',
    assistBillNumber: null,
    sentAt: at(0),
    createdAt: at(0),
    completedAt: at(10),
    ...fields,
  });

  it("names the other operations' billnumbers and the payment's own, and counts the settled ones without a billnumber of the same Assist type and amount", () => {
    const open = op({ id: 'open', state: 'UNKNOWN', sentAt: at(20), completedAt: null });
    const operations = [
      op({ id: 'named', assistBillNumber: 'B.2' }),
      op({ id: 'by-hand' }),
      op({ id: 'failed-by-hand', state: 'FAILED', sentAt: at(12), completedAt: at(15) }),
      op({ id: 'other-amount', amount: 3_001n }),
      op({ id: 'other-type', kind: 'REFUND' }),
      open,
    ];
    expect(operationClaims(operations, open, 'B')).toEqual({
      knownBillNumbers: ['B.2', 'B.1'],
      unnamedClaims: [
        { result: 'succeeded', sentAt: at(0), settledAt: at(10) },
        { result: 'failed', sentAt: at(12), settledAt: at(15) },
      ],
    });
  });

  it('a release and a refund are both PaymentCancel: each claims against the other', () => {
    const refund = op({ id: 'refund', kind: 'REFUND', state: 'UNKNOWN', completedAt: null });
    const release = op({ id: 'release', kind: 'CANCEL_AUTHORIZATION', sentAt: null, createdAt: at(3) });
    expect(operationClaims([release, refund], refund, 'B').unnamedClaims).toEqual([{ result: 'succeeded', sentAt: at(3), settledAt: at(10) }]);
  });
});

describe(`${settlementOfOperation.name} (not_proven)`, () => {
  it('leaves the operation UNKNOWN with OPERATION_NOT_PROVEN, naming the records in doubt', () => {
    const order = { orderNumber: 'o-1', billNumber: 'B', operations: [] } as unknown as AssistOrder;
    expect(settlementOfOperation({ status: 'not_proven', orderNumber: 'o-1', order, billNumbers: ['B.2', 'B.3'] })).toEqual({
      to: 'UNKNOWN',
      error: expect.objectContaining({ source: 'payorch', code: 'OPERATION_NOT_PROVEN', message: expect.stringContaining('B.2, B.3') }),
    });
  });
});

import { FIRST_CODES } from '@payorch/assist-tokenpay';

import { WALLET_ERROR_CODES } from './error-codes';
import { operationNotFoundError, orderNotFoundError } from './outcome';

describe('WALLET_ERROR_CODES', () => {
  it("lists payorch's conclusions and every first code of Assist's table, each once, sorted", () => {
    expect(WALLET_ERROR_CODES).toEqual(
      expect.arrayContaining(['ORDER_NOT_FOUND', 'ORDER_NOT_PROVEN', 'OPERATION_NOT_FOUND', 'OPERATION_NOT_PROVEN', 'RESOLVED_MANUALLY']),
    );
    expect(WALLET_ERROR_CODES).toEqual(expect.arrayContaining([...Object.values(FIRST_CODES).map((c) => c.name), 'UNRECOGNIZED']));
    expect(new Set(WALLET_ERROR_CODES).size).toBe(WALLET_ERROR_CODES.length);
    expect([...WALLET_ERROR_CODES].sort()).toEqual(WALLET_ERROR_CODES);
  });
});

/**
 * Found in the sixteenth session: the message was "Assist lists no such operation on the order: the request never reached
 * it, no money moved" — which operation, after how long, and nothing of what to do.
 */
describe(operationNotFoundError.name, () => {
  it('names the operation, the record looked for and the wait, says no money moved, and says a new request may be sent', () => {
    expect(operationNotFoundError({ kind: 'REFUND', amount: 3_050n, currency: 'RUB' }, 600_000)).toEqual({
      source: 'payorch',
      code: 'OPERATION_NOT_FOUND',
      message:
        "Assist has no record of this refund: the order lists no PaymentCancel of 30.50 RUB besides those of the payment's other operations, " +
        '10 min after it was sent. The request never reached Assist and no money moved; if the refund is still wanted, send it again with a new Idempotency-Key',
      firstCode: null,
      secondCode: null,
      field: null,
    });
    expect(operationNotFoundError({ kind: 'CANCEL_AUTHORIZATION', amount: 100n, currency: 'RUB' }, 90_000).message).toMatch(
      /^Assist has no record of this release of the authorisation: the order lists no PaymentCancel of 1\.00 RUB .*, 90 s after it was sent\./,
    );
    expect(operationNotFoundError({ kind: 'CAPTURE', amount: 1n, currency: 'RUB' }, 600_000).message).toMatch(/no Charge of 0\.01 RUB/);
  });
});

/** Found in the sixteenth session: the stored message said what happened but not what to do, nor after how long. */
describe(orderNotFoundError.name, () => {
  it('says after how long Assist showed no order, that nothing was charged, and to pay under a new order number', () => {
    expect(orderNotFoundError(600_000)).toEqual({
      source: 'payorch',
      code: 'ORDER_NOT_FOUND',
      message:
        'Assist has no order with this number 10 min after the payment was made: the payment request never reached Assist and nothing was ' +
        'charged. If the customer still wants to pay, make a new payment under a new order number',
      firstCode: 10,
      secondCode: null,
      field: null,
    });
  });
});

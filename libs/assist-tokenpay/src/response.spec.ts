import { AssistIntegrityError, AssistProtocolError } from './errors';
import { parseOrderStateResponse, parseTokenPayResponse } from './response';
import { MERCHANT, SALT, operationObject, orderObject } from './testing/fixtures';

const ctx = { merchantId: MERCHANT.merchantId, salt: SALT };
const parse = (body: unknown) => parseTokenPayResponse(JSON.stringify(body), ctx);

describe(parseTokenPayResponse.name, () => {
  it('reads the spec example order with typed enums', () => {
    const answer = parse({ order: orderObject({ orderstate: 'Approved' }), packetdate: '26.01.2015 18:16:19' });
    expect(answer.kind).toBe('order');
    if (answer.kind !== 'order') return;
    expect(answer.packetDate).toBe('26.01.2015 18:16:19');
    expect(answer.order).toMatchObject({
      orderNumber: 'ORD-0001',
      billNumber: '5899110210668265',
      state: 'Approved',
      amount: '101.00',
      currency: 'RUB',
      testMode: false,
    });
    expect(answer.order.operations[0]).toMatchObject({
      type: 'Approve',
      state: 'Success',
      meanTypeId: 61,
      meanType: 'SamsungPay',
      responseCode: 'AS000',
      approvalCode: '123456',
    });
  });

  it('surfaces testmode=1', () => {
    const answer = parse({ order: orderObject({ testmode: '1' }) });
    expect(answer.kind === 'order' && answer.order.testMode).toBe(true);
  });

  it.each(['In Process', 'Delayed', 'Approved', 'PartialApproved', 'PartialDelayed', 'Canceled', 'PartialCanceled', 'Declined', 'Timeout'])(
    'accepts orderstate %s',
    (orderstate) => {
      const answer = parse({ order: orderObject({ orderstate }) });
      expect(answer.kind === 'order' && answer.order.state).toBe(orderstate);
    },
  );

  it.each([
    ['100', 'New', 'Approve', 'New'],
    ['200', 'In Process', 'Charge', 'In Process'],
    ['300', 'TimeOut', 'PaymentCancel', 'TimeOut'],
    ['999', 'Weird', undefined, undefined],
  ])('maps operationtype %s / operationstate %s', (operationtype, operationstate, type, state) => {
    const answer = parse({ order: orderObject({ operations: [operationObject({ operationtype, operationstate })] }) });
    if (answer.kind !== 'order') throw new Error('expected an order');
    expect(answer.order.operations[0]).toMatchObject({ type, state, rawType: operationtype, rawState: operationstate });
  });

  it('masks a full PAN that would appear in meannumber', () => {
    const answer = parse({ order: orderObject({ operations: [operationObject({ meannumber: '4111111111111111' })] }) });
    expect(answer.kind === 'order' && answer.order.operations[0]?.meanNumber).toBe('411111******1111');
  });

  it('reads field names case-insensitively', () => {
    const order = Object.fromEntries(Object.entries(orderObject()).map(([k, v]) => [k.toUpperCase(), v]));
    expect(parse({ ORDER: order }).kind).toBe('order');
  });

  it('reads 3/115 with continueurl as a continue answer (non-tokenized Google Pay)', () => {
    const answer = parse({
      order: orderObject({
        orderstate: 'In Process',
        operations: [operationObject({ operationstate: 'New', responsecode: 'AS300', meannumber: '411111****1111' })],
      }),
      packetdate: '26.01.2015 18:16:19',
      firstcode: '3',
      secondcode: '115',
      continueurl: 'https://assist.example/pay/pay.cfm?CFSID=abc',
    });
    expect(answer).toMatchObject({ kind: 'continue', continueUrl: 'https://assist.example/pay/pay.cfm?CFSID=abc' });
  });

  it.each([
    [{ firstcode: '11', secondcode: '201' }, 'DUPLICATE_OBJECT', 'Duplicate object (Object: order) [11/201]', undefined],
    [{ firstcode: 3, secondcode: 108 }, 'MISSING_PARAMETER', 'A required parameter is missing (Parameter AMOUNT) [3/108]', 'OrderAmount'],
    [{ firstcode: '7', secondcode: '141' }, 'AUTHENTICATION_FAILED', 'Authentication error (Parameters LOGIN and/or PASSWORD) [7/141]', 'Login'],
    [{ firstcode: '21', secondcode: '0' }, 'OPERATION_DECLINED', 'Operation declined [21/0]', undefined],
    [{ firstcode: '3', secondcode: '115' }, 'MISSING_PARAMETER', 'A required parameter is missing (Parameter CSC2) [3/115]', undefined],
    [{ firstcode: '13', secondcode: '999' }, 'UNRECOGNIZED', 'Unrecognized error [13/999]', undefined],
  ])('maps error codes %j', (body, code, message, field) => {
    const answer = parse(body);
    if (answer.kind !== 'error') throw new Error('expected an error');
    expect([answer.error.code, answer.error.message, answer.error.field]).toEqual([code, message, field]);
  });

  it.each([
    ['a wrong checkvalue', { order: orderObject({ checkvalue: '00000000000000000000000000000000' }) }, 'CHECKVALUE_MISMATCH'],
    ['a checkvalue made with another salt', { order: orderObject({}, MERCHANT.merchantId, 'other-salt') }, 'CHECKVALUE_MISMATCH'],
    ['a checkvalue of another merchant', { order: orderObject({}, '111111') }, 'CHECKVALUE_MISMATCH'],
    ['no checkvalue', { order: { ...orderObject(), checkvalue: '' } }, 'CHECKVALUE_MISSING'],
  ])('rejects %s with AssistIntegrityError', (_case, body, code) => {
    expect(() => parse(body)).toThrow(AssistIntegrityError);
    expect(() => parse(body)).toThrow(expect.objectContaining({ code }));
  });

  it('rejects an order whose state was changed after signing (checkvalue covers orderstate)', () => {
    const order = { ...orderObject({ orderstate: 'Declined' }), orderstate: 'Approved' };
    expect(() => parse({ order })).toThrow(expect.objectContaining({ code: 'CHECKVALUE_MISMATCH' }));
  });

  it.each([
    ['not JSON', '<html>error</html>', 'MALFORMED_RESPONSE'],
    ['a JSON array', '[]', 'MALFORMED_RESPONSE'],
    ['no order and no code', '{"packetdate":"x"}', 'MALFORMED_RESPONSE'],
    ['order without ordernumber', JSON.stringify({ order: { ...orderObject(), ordernumber: '' } }), 'MALFORMED_RESPONSE'],
    ['non-numeric codes', '{"firstcode":"x","secondcode":"1"}', 'MALFORMED_RESPONSE'],
    ['operations not an array', JSON.stringify({ order: { ...orderObject(), operations: {} } }), 'MALFORMED_RESPONSE'],
    ['testmode neither 0 nor 1', JSON.stringify({ order: orderObject({ testmode: 'yes' }) }), 'UNRECOGNIZED_VALUE'],
    ['orderstate outside the table', JSON.stringify({ order: orderObject({ orderstate: 'Paid' }) }), 'UNRECOGNIZED_VALUE'],
  ])('rejects %s with AssistProtocolError', (_case, body, code) => {
    expect(() => parseTokenPayResponse(body, ctx)).toThrow(AssistProtocolError);
    expect(() => parseTokenPayResponse(body, ctx)).toThrow(expect.objectContaining({ code }));
  });
});

describe(parseOrderStateResponse.name, () => {
  it('reads the orderstate root (assist-notes.md) without operations or testmode', () => {
    const { operations: _ops, testmode: _tm, ...order } = orderObject({ orderstate: 'Delayed' });
    const answer = parseOrderStateResponse(JSON.stringify({ orderstate: { ...order, packetdate: '01.07.2019 15:31:16' } }), ctx);
    if (answer.kind !== 'order') throw new Error('expected an order');
    expect(answer.order).toMatchObject({ state: 'Delayed', testMode: undefined, operations: [] });
    expect(answer.packetDate).toBe('01.07.2019 15:31:16');
  });

  it('tells an answer without an operations field (nothing listed) from one listing none (operationsListed)', () => {
    const { operations: _ops, ...bare } = orderObject({ orderstate: 'Delayed' });
    const unlisted = parseOrderStateResponse(JSON.stringify({ orderstate: bare }), ctx);
    const none = parseOrderStateResponse(JSON.stringify({ orderstate: orderObject({ orderstate: 'Delayed', operations: [] }) }), ctx);
    const listed = parseOrderStateResponse(JSON.stringify({ orderstate: orderObject({ orderstate: 'Delayed' }) }), ctx);
    expect(unlisted).toMatchObject({ kind: 'order', order: { operations: [], operationsListed: false } });
    expect(none).toMatchObject({ kind: 'order', order: { operations: [], operationsListed: true } });
    expect(listed).toMatchObject({ kind: 'order', order: { operations: [{ type: 'Approve' }], operationsListed: true } });
  });

  it('maps 10/201 to an OBJECT_NOT_FOUND error', () => {
    const answer = parseOrderStateResponse('{"firstcode":"10","secondcode":"201"}', ctx);
    expect(answer.kind === 'error' && answer.error.code).toBe('OBJECT_NOT_FOUND');
  });

  it('rejects a bad checkvalue', () => {
    const body = JSON.stringify({ orderstate: orderObject({ checkvalue: 'D80E01190F204527CA15F453E05418BC' }) });
    expect(() => parseOrderStateResponse(body, ctx)).toThrow(AssistIntegrityError);
  });
});

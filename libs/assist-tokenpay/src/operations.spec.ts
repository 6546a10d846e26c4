import { generateKeyPairSync, sign } from 'node:crypto';

import { SANDBOX_MERCHANT, TEST_MERCHANT_PRIVATE_KEY_PEM, startAssistSandbox, type AssistSandbox } from '@payorch/testing/assist-sandbox';

import { toOrderAmount } from './amount';
import { AssistTokenPayClient, type AssistClientOptions } from './client';
import { AssistValidationError } from './errors';
import { CANCEL_PATH, CHARGE_PATH, CLOCK_SKEW_MS, findOperation, matchOperation, operationResultOf, parseOperationDate, type UnnamedClaim } from './operations';
import { parseOrderStateResponse } from './response';
import { createRsaMd5Signer, createRsaMd5Verifier } from './signature';
import { MERCHANT, SALT, orderObject, operationObject, validRequest } from './testing/fixtures';

let sandbox: AssistSandbox;
let seq = 0;
const signer = createRsaMd5Signer(TEST_MERCHANT_PRIVATE_KEY_PEM);

function clientFor(overrides: Partial<AssistClientOptions> = {}) {
  return new AssistTokenPayClient({
    ...SANDBOX_MERCHANT,
    baseUrl: sandbox.url,
    signer,
    timeoutMs: 1_000,
    orderStateTimeoutMs: 1_000,
    retryDelayMs: 0,
    ...overrides,
  });
}

/** A two-stage (or one-stage) order of 100.00 RUB at the sandbox; returns what a capture / cancel needs. */
async function order(delay: 0 | 1 = 1) {
  const orderNumber = `OP-${Date.now()}-${++seq}`;
  const paid = await clientFor().pay(validRequest({ orderNumber, orderAmount: '100.00', delay }));
  if (paid.status !== (delay ? 'authorized' : 'approved')) throw new Error(`not paid: ${paid.status}`);
  const billNumber = 'order' in paid ? paid.order.billNumber : '';
  return (amount: string, extra: Record<string, unknown> = {}) => ({
    billNumber,
    orderNumber,
    orderAmount: '100.00',
    amount,
    currency: 'RUB',
    sentAt: new Date(),
    knownBillNumbers: [`${billNumber}.1`],
    ...extra,
  });
}

beforeEach(async () => {
  sandbox = await startAssistSandbox();
});
afterEach(async () => {
  await sandbox.close();
});

describe(`${AssistTokenPayClient.name}: charge and cancel against the sandbox`, () => {
  it('captures part of a two-stage payment, then the rest, each matched to its own Charge operation', async () => {
    const req = await order();
    const first = await clientFor().charge(req('40.00'));
    expect(first).toMatchObject({
      status: 'succeeded',
      source: 'charge',
      order: { state: 'PartialDelayed' },
      operation: { type: 'Charge', amount: '40.00', state: 'Success' },
    });
    const billOfFirst = first.status === 'succeeded' ? first.operation.billNumber : '';
    const rest = await clientFor().charge(req('60.00', { knownBillNumbers: [`${req('0').billNumber}.1`, billOfFirst] }));
    expect(rest).toMatchObject({ status: 'succeeded', order: { state: 'Approved' }, operation: { type: 'Charge', amount: '60.00' } });
    expect(sandbox.stats.chargeRequests).toBe(2);
  });

  it('sends the service fields (Billnumber, Amount in major units, Currency, Format=5) to charge.cfm / wscancel.cfm', async () => {
    const seen: Array<{ url: string; body: string }> = [];
    const req = await order();
    const fetchSpy: AssistClientOptions['fetch'] = (url, init) => {
      seen.push({ url, body: String(init.body) });
      return fetch(url, init);
    };
    await clientFor({ fetch: fetchSpy }).charge(req(toOrderAmount(2550, 'RUB')));
    await clientFor({ fetch: fetchSpy }).cancel(req(toOrderAmount(1000, 'RUB')));
    expect(seen.map((s) => new URL(s.url).pathname)).toEqual([CHARGE_PATH, CANCEL_PATH]);
    expect(Object.fromEntries(new URLSearchParams(seen[0]!.body))).toEqual({
      Merchant_ID: SANDBOX_MERCHANT.merchantId,
      Login: SANDBOX_MERCHANT.login,
      Password: SANDBOX_MERCHANT.password,
      Billnumber: req('0').billNumber,
      Amount: '25.50',
      Currency: 'RUB',
      Format: '5',
    });
  });

  it('releases an authorisation and refunds a paid order, partly and fully (PaymentCancel)', async () => {
    const held = await order(1);
    expect(await clientFor().cancel(held('100.00'))).toMatchObject({ status: 'succeeded', order: { state: 'Canceled' }, operation: { type: 'PaymentCancel' } });
    const paid = await order(0);
    expect(await clientFor().cancel(paid('30.00'))).toMatchObject({ status: 'succeeded', order: { state: 'PartialCanceled' } });
  });

  it('reports a definitive refusal as rejected with its codes (capture of a one-stage order, over-capture)', async () => {
    const paid = await order(0);
    expect(await clientFor().charge(paid('10.00'))).toMatchObject({ status: 'rejected', error: { firstCode: 15, secondCode: 307 } });
    const held = await order(1);
    expect(await clientFor().charge(held('100.01'))).toMatchObject({ status: 'rejected', error: { firstCode: 5, secondCode: 108, field: 'OrderAmount' } });
  });

  it.each([
    ['lost-answer', 'NETWORK'],
    ['hang', 'TIMEOUT'],
    ['http500', 'HTTP_STATUS'],
    ['bad-checkvalue', 'CHECKVALUE_MISMATCH'],
  ] as const)('%s → unknown (%s), sent once, and resolveOperation finds the one operation', async (mode, code) => {
    const req = await order();
    sandbox.setMode(mode, { endpoint: 'charge', times: 1 });
    const outcome = await clientFor().charge(req('25.00'));
    expect(outcome).toMatchObject({ status: 'unknown', error: { code } });
    expect(sandbox.stats.chargeRequests).toBe(1);
    const resolved = await clientFor().resolveOperation('charge', req('25.00'));
    if (mode === 'http500') {
      // The 500 came before anything was carried out: orderstate lists no Charge.
      expect(resolved).toMatchObject({ status: 'not_found', order: { state: 'Delayed' } });
    } else {
      expect(resolved).toMatchObject({ status: 'succeeded', source: 'orderstate', operation: { type: 'Charge', amount: '25.00' } });
    }
    expect(sandbox.stats.chargeRequests).toBe(1);
  });

  it('never trusts an orderstate answer with a bad checkvalue while resolving', async () => {
    const req = await order();
    await clientFor().charge(req('25.00'));
    sandbox.setMode('bad-checkvalue', { endpoint: 'orderstate', times: 1 });
    const failures: string[] = [];
    const resolved = await clientFor({ onIntegrityFailure: (e, c) => failures.push(`${c.endpoint}:${e.code}`) }).resolveOperation('charge', req('25.00'));
    expect(resolved).toMatchObject({ status: 'unknown', error: { code: 'CHECKVALUE_MISMATCH' } });
    expect(failures).toEqual(['/orderstate/orderstate.cfm:CHECKVALUE_MISMATCH']);
  });

  it('never settles an operation from another order that orderstate shows under the same number (not the order Assist named)', async () => {
    const req = await order();
    await clientFor().charge(req('25.00'));
    const failures: string[] = [];
    const client = clientFor({ onIntegrityFailure: (e, c) => failures.push(`${c.endpoint}:${e.code}`) });
    // The payment's order is another billnumber (e.g. an order made under the same number elsewhere): its Charge is not ours.
    const resolved = await client.resolveOperation('charge', req('25.00', { billNumber: '5899110299999999' }));
    expect(resolved).toMatchObject({ status: 'unknown', error: { code: 'ORDER_MISMATCH' } });
    expect(failures).toEqual(['/orderstate/orderstate.cfm:ORDER_MISMATCH']);
    // Named by one of its operations' billnumbers, the order is the same.
    expect(await client.resolveOperation('charge', req('25.00', { billNumber: `${req('1').billNumber}.1` }))).toMatchObject({ status: 'succeeded' });
  });

  it.each([
    ['charge', 1],
    ['cancel', 0],
  ] as const)('resolveOperation(%s) never concludes not_found from an orderstate answer without an operation list: unknown', async (kind, delay) => {
    // Nothing was sent: a full list shows it missing; an answer without one shows nothing. Before, it read as an
    // empty list: not_found, and past the grace period "never reached Assist" — had it reached Assist, sent twice.
    const req = await order(delay);
    sandbox.setMode('no-operations', { endpoint: 'orderstate', times: 1 });
    expect(await clientFor().resolveOperation(kind, req('25.00'))).toMatchObject({
      status: 'unknown',
      error: { code: 'MALFORMED_RESPONSE', message: expect.stringContaining('lists no operations') },
    });
    expect(await clientFor().resolveOperation(kind, req('25.00'))).toMatchObject({ status: 'not_found', order: { billNumber: req('0').billNumber } });
  });

  it.each(['', '03.12.2026', '2026-12-03T12:00:05Z'])(
    'resolveOperation never concludes not_found while a record of its type and amount has operationdate %j: unknown',
    async (operationdate) => {
      // The capture did reach Assist (.2), but its date cannot be read: before, it was dropped from matching and the
      // capture "not found".
      const req = await order();
      expect(await clientFor().charge(req('25.00'))).toMatchObject({ status: 'succeeded' });
      Object.assign(sandbox.orders.get(req('0').orderNumber)!.operations[1]!, { operationdate });
      const billNumber = `${req('0').billNumber}.2`;
      expect(await clientFor().resolveOperation('charge', req('25.00'))).toMatchObject({
        status: 'unknown',
        error: { code: 'UNRECOGNIZED_VALUE', message: expect.stringContaining(billNumber) },
      });
      // Held by a known billnumber (another operation's), its date does not matter.
      expect(await clientFor().resolveOperation('charge', req('25.00', { knownBillNumbers: [`${req('0').billNumber}.1`, billNumber] }))).toMatchObject({
        status: 'not_found',
      });
      // Another amount's record does not stand in the way either.
      expect(await clientFor().resolveOperation('charge', req('30.00'))).toMatchObject({ status: 'not_found' });
    },
  );

  it('resolveOperation: only 10/201 (no such order) is not_found; 10 with another object (10/200 merchant, 10/216) is unknown', async () => {
    const req = await order();
    // The sandbox answers an unknown Merchant_ID with 10/200: the settings changed, the order says nothing.
    expect(await clientFor({ merchantId: '679472' }).resolveOperation('charge', req('25.00'))).toMatchObject({
      status: 'unknown',
      error: { code: 'OBJECT_NOT_FOUND', firstCode: 10, secondCode: 200 },
    });
    const answering = (body: string) =>
      new AssistTokenPayClient({ ...SANDBOX_MERCHANT, baseUrl: 'https://assist.example', retryDelayMs: 0, fetch: async () => new Response(body) });
    expect(await answering('{"firstcode":"10","secondcode":"216"}').resolveOperation('charge', req('25.00'))).toMatchObject({
      status: 'unknown',
      error: { firstCode: 10, secondCode: 216 },
    });
    expect(await answering('{"firstcode":"10","secondcode":"201"}').resolveOperation('charge', req('25.00'))).toEqual({
      status: 'not_found',
      orderNumber: req('0').orderNumber,
      order: undefined,
    });
    expect(await clientFor().resolveOperation('charge', req('25.00', { orderNumber: 'OP-NEVER-MADE' }))).toMatchObject({
      status: 'not_found',
      order: undefined,
    });
  });

  it("a charge answer without an operation list is unknown, sent once, and resolved from orderstate (the gateway's path)", async () => {
    const req = await order();
    sandbox.setMode('no-operations', { endpoint: 'charge', times: 1 });
    expect(await clientFor().charge(req('25.00'))).toMatchObject({ status: 'unknown', error: { code: 'MALFORMED_RESPONSE' } });
    expect(sandbox.stats.chargeRequests).toBe(1);
    expect(await clientFor().resolveOperation('charge', req('25.00'))).toMatchObject({ status: 'succeeded', operation: { amount: '25.00' } });
  });

  it('refuses a malformed request before sending (amount, billnumber)', async () => {
    const req = await order();
    await expect(clientFor().charge(req('12.3.4'))).rejects.toBeInstanceOf(AssistValidationError);
    await expect(clientFor().cancel(req('1.00', { billNumber: '' }))).rejects.toBeInstanceOf(AssistValidationError);
    expect(sandbox.stats.chargeRequests + sandbox.stats.cancelRequests).toBe(0);
  });
});

describe(matchOperation.name, () => {
  const base = Date.UTC(2026, 11, 3, 12, 0, 0);
  const at = (offsetSeconds: number) => {
    const d = new Date(base + offsetSeconds * 1000);
    const p = (n: number) => String(n).padStart(2, '0');
    return `${p(d.getUTCDate())}.${p(d.getUTCMonth() + 1)}.${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
  };
  const orderWith = (ops: Array<Record<string, string>>) =>
    parseOrderStateResponse(JSON.stringify({ orderstate: orderObject({ orderamount: '100.00', operations: ops.map((o) => operationObject(o)) }) }), {
      merchantId: MERCHANT.merchantId,
      salt: SALT,
    });
  const ops: Array<Record<string, string>> = [
    { billnumber: 'B.1', operationtype: '100', amount: '100.00', operationdate: at(-3600) },
    { billnumber: 'B.2', operationtype: '300', amount: '10.00', operationdate: at(-1800) },
    { billnumber: 'B.3', operationtype: '200', amount: '10.00', operationdate: at(5) },
    { billnumber: 'B.4', operationtype: '300', amount: '10.00', operationdate: at(10), operationstate: 'Failure', responsecode: 'AS100' },
    { billnumber: 'B.5', operationtype: '300', amount: '10.00', operationdate: at(20) },
  ];

  it('picks the operation of the right type, amount and time among several on the order, skipping known ones', () => {
    const answer = orderWith(ops);
    if (answer.kind !== 'order') throw new Error('no order');
    const c = { amount: '10', currency: 'RUB', notBefore: new Date(base) };
    expect(matchOperation(answer.order, { ...c, type: 'Charge' })?.billNumber).toBe('B.3');
    // B.2 is older than the request (beyond the clock skew): another, earlier cancel.
    expect(matchOperation(answer.order, { ...c, type: 'PaymentCancel' })?.billNumber).toBe('B.4');
    expect(matchOperation(answer.order, { ...c, type: 'PaymentCancel', knownBillNumbers: ['B.4'] })?.billNumber).toBe('B.5');
    expect(matchOperation(answer.order, { ...c, type: 'PaymentCancel', amount: '10.01' })).toBeUndefined();
    expect(matchOperation(answer.order, { ...c, type: 'Charge', currency: 'USD' })).toBeUndefined();
    expect(operationResultOf(answer.order.operations[3]!)).toBe('failed');
    expect(operationResultOf(answer.order.operations[4]!)).toBe('succeeded');
  });

  it('with the billnumber Assist named for our operation, matches exactly that one, known or not, of any date', () => {
    const answer = orderWith(ops);
    if (answer.kind !== 'order') throw new Error('no order');
    const c = { amount: '10', currency: 'RUB', notBefore: new Date(base), type: 'PaymentCancel' as const };
    expect(matchOperation(answer.order, { ...c, operationBillNumber: 'B.5', knownBillNumbers: ['B.5'] })?.billNumber).toBe('B.5');
    // Older than the request would allow, but Assist named it: ours.
    expect(matchOperation(answer.order, { ...c, operationBillNumber: 'B.2' })?.billNumber).toBe('B.2');
    // Never another operation of the same type and amount in its place.
    expect(matchOperation(answer.order, { ...c, operationBillNumber: 'B.9' })).toBeUndefined();
    expect(matchOperation(answer.order, { ...c, operationBillNumber: 'B.3' })).toBeUndefined();
  });

  describe('answers that cannot show ours missing: never "none"', () => {
    const c = { type: 'Charge' as const, amount: '10', currency: 'RUB', notBefore: new Date(base) };
    const ctx = { merchantId: MERCHANT.merchantId, salt: SALT };

    it('an answer without an operations field is ambiguous (unlisted), named or not; one listing none is none', () => {
      const { operations: _ops, ...bare } = orderObject({ orderamount: '100.00' });
      const unlisted = parseOrderStateResponse(JSON.stringify({ orderstate: bare }), ctx);
      if (unlisted.kind !== 'order') throw new Error('no order');
      expect(findOperation(unlisted.order, c)).toEqual({ kind: 'ambiguous', billNumbers: [], cause: 'unlisted' });
      expect(findOperation(unlisted.order, { ...c, operationBillNumber: 'B.3' })).toEqual({ kind: 'ambiguous', billNumbers: [], cause: 'unlisted' });
      expect(findOperation(unlisted.order, { ...c, answersOurRequest: true })).toMatchObject({ kind: 'ambiguous', cause: 'unlisted' });
      const none = orderWith([]);
      if (none.kind !== 'order') throw new Error('no order');
      expect(findOperation(none.order, c)).toEqual({ kind: 'none' });
    });

    it.each(['', '  ', '03.12.2026', '2026-12-03 12:00:05', '03.12.2026 12:00'])(
      'a record of our type and amount with operationdate %j is ambiguous (undated), whatever else is listed',
      (operationdate) => {
        const find = (records: Array<Record<string, string>>, extra: Partial<Parameters<typeof findOperation>[1]> = {}) => {
          const answer = orderWith([ops[0]!, ...records]);
          if (answer.kind !== 'order') throw new Error('no order');
          return findOperation(answer.order, { ...c, ...extra });
        };
        const undated = { billnumber: 'B.3', operationtype: '200', amount: '10.00', operationdate };
        // Alone: before, dropped, and ours "none".
        expect(find([undated])).toEqual({ kind: 'ambiguous', billNumbers: ['B.3'], cause: 'undated' });
        // Beside a dated one: either may be ours (B.3 may be earlier); before, B.4 was taken.
        expect(find([undated, { billnumber: 'B.4', operationtype: '200', amount: '10.00', operationdate: at(30) }])).toEqual({
          kind: 'ambiguous',
          billNumbers: ['B.3'],
          cause: 'undated',
        });
        // In the answer to our own request, too.
        expect(find([undated], { answersOurRequest: true })).toMatchObject({ kind: 'ambiguous', cause: 'undated' });
        // Held by a known billnumber, or of another type or amount: not a record that could be ours.
        expect(find([undated], { knownBillNumbers: ['B.3'] })).toEqual({ kind: 'none' });
        expect(
          find([
            { ...undated, amount: '20.00' },
            { ...undated, billnumber: 'B.4', operationtype: '300' },
          ]),
        ).toEqual({ kind: 'none' });
        // Named by Assist: matched by its billnumber, its date does not matter.
        expect(find([undated], { operationBillNumber: 'B.3' })).toMatchObject({ kind: 'matched', operation: { billNumber: 'B.3' } });
        const answer = orderWith([ops[0]!, undated]);
        if (answer.kind !== 'order') throw new Error('no order');
        expect(matchOperation(answer.order, c)).toBeUndefined();
      },
    );
  });

  describe('with unnamed claims (our operations settled without a billnumber)', () => {
    const charge = (billnumber: string, offsetSeconds: number, extra: Record<string, string> = {}) => ({
      billnumber,
      operationtype: '200',
      amount: '30.00',
      operationdate: at(offsetSeconds),
      ...extra,
    });
    const failure = { operationstate: 'Failure', responsecode: 'AS100' };
    const approve = { billnumber: 'B.1', operationtype: '100', amount: '100.00', operationdate: at(-3600) };
    const find = (
      records: Array<Record<string, string>>,
      notBeforeSeconds: number,
      unnamedClaims: UnnamedClaim[],
      knownBillNumbers: string[] = [],
      answersOurRequest = false,
    ) => {
      const answer = orderWith([approve, ...records]);
      if (answer.kind !== 'order') throw new Error('no order');
      const found = findOperation(answer.order, {
        type: 'Charge',
        amount: '30.00',
        currency: 'RUB',
        notBefore: new Date(base + notBeforeSeconds * 1000),
        knownBillNumbers,
        unnamedClaims,
        answersOurRequest,
      });
      return found.kind === 'matched' ? found.operation.billNumber : found.kind === 'ambiguous' ? `ambiguous:${found.billNumbers.join(',')}` : 'none';
    };
    /** A verdict on an operation sent `sent` seconds from base, given `settled` seconds from base. */
    const claim = (result: UnnamedClaim['result'], sent: number, settled: number): UnnamedClaim => ({
      result,
      sentAt: new Date(base + sent * 1000),
      settledAt: new Date(base + settled * 1000),
    });

    it("never takes the record a `succeeded` verdict stands for: with as many records as verdicts, they are all the verdicts'", () => {
      // The verdict's Charge (B.2) and nothing else: ours never reached Assist. Before this rule, B.2 was taken for ours.
      expect(find([charge('B.2', 0)], 60, [])).toBe('B.2');
      expect(find([charge('B.2', 0)], 60, [claim('succeeded', 0, 30)])).toBe('none');
      // Ours did reach Assist (B.3) after the verdict's window closed: it is ours.
      expect(find([charge('B.2', 0), charge('B.3', 60 + CLOCK_SKEW_MS / 1000)], 60 + CLOCK_SKEW_MS / 1000, [claim('succeeded', 0, 30)])).toBe('B.3');
      // Two verdicts, two records in their windows: both taken.
      expect(find([charge('B.2', 0), charge('B.3', 100)], 150, [claim('succeeded', 0, 30), claim('succeeded', 90, 120)])).toBe('none');
      // A record a billnumber claims is not one a verdict without one can stand for.
      expect(find([charge('B.2', 0), charge('B.3', 40)], 35, [claim('succeeded', 30, 50)], ['B.2'])).toBe('none');
    });

    it('decides when a candidate is certainly free and all candidates read alike, else leaves it to a person (ambiguous)', () => {
      // Two records in the verdict's window, both ours to take: one is free, either is the same money. The one taken
      // leaves the verdict a record of its own.
      expect(find([charge('B.2', 0), charge('B.3', 40)], 35, [claim('succeeded', 0, 60)])).toBe('B.2');
      // The verdict's window holds an older record (B.2) ours cannot be, and B.3, which either can be: cannot tell.
      expect(find([charge('B.2', -1200), charge('B.3', 40)], 35, [claim('succeeded', -1200, 60)])).toBe('ambiguous:B.3');
      // A Success verdict stands for the only Success (B.3): the Failure is ours.
      expect(find([charge('B.2', 0, failure), charge('B.3', 40)], 35, [claim('succeeded', 0, 60)])).toBe('B.2');
      // Two Successes the verdict may stand for and a Failure: ours is the Failure or a Success — the money differs.
      expect(find([charge('B.2', 0), charge('B.3', 40), charge('B.4', 45, failure)], 35, [claim('succeeded', 0, 60)])).toBe('ambiguous:B.2,B.3,B.4');
      // The verdict's record is not in its window (a clock, or a wrong verdict): any candidate could be it.
      expect(find([charge('B.2', 40)], 35, [claim('succeeded', -1200, -900)])).toBe('ambiguous:B.2');
      expect(find([], 35, [claim('succeeded', -1200, -900)])).toBe('none');
      // Records outside every window are free as before.
      expect(find([charge('B.2', -1200), charge('B.3', 1200)], 1100, [claim('succeeded', -1200, -1100)])).toBe('B.3');
    });

    it("in Assist's answer to our own request, ours is on the order: a record in the verdict's window is taken if it leaves the verdict one", () => {
      // The verdict's Charge 20 minutes before ours, ours right after the verdict: from orderstate B.3 could be the
      // verdict's (then ours never arrived); in the answer to our charge it is ours.
      const records = [charge('B.2', -1200), charge('B.3', 40)];
      expect(find(records, 35, [claim('succeeded', -1200, 30)])).toBe('ambiguous:B.3');
      expect(find(records, 35, [claim('succeeded', -1200, 30)], [], true)).toBe('B.3');
      // The answer lists nothing besides the verdict's record: a verdict is wrong, a person looks.
      expect(find([charge('B.2', 0)], 35, [claim('succeeded', 0, 30)], [], true)).toBe('ambiguous:B.2');
      // Candidates that read differently stay undecided, answer or not.
      expect(find([charge('B.2', -1200), charge('B.3', 40), charge('B.4', 41, failure)], 35, [claim('succeeded', -1200, 30)], [], true)).toBe(
        'ambiguous:B.3,B.4',
      );
    });

    it('leaves out a Failure a `failed` verdict may stand for: ours is read from its own record, or from none', () => {
      expect(find([charge('B.2', 0, failure)], 30, [])).toBe('B.2');
      expect(find([charge('B.2', 0, failure)], 30, [claim('failed', 0, 20)])).toBe('none');
      expect(find([charge('B.2', 0, failure), charge('B.3', 40)], 30, [claim('failed', 0, 20)])).toBe('B.3');
      // A Success is never a failed verdict's.
      expect(find([charge('B.2', 0)], 30, [claim('failed', 0, 20)])).toBe('B.2');
    });

    it('matchOperation (no claims) answers as before', () => {
      const answer = orderWith([approve, charge('B.2', 0)]);
      if (answer.kind !== 'order') throw new Error('no order');
      expect(matchOperation(answer.order, { type: 'Charge', amount: '30', currency: 'RUB', notBefore: new Date(base) })?.billNumber).toBe('B.2');
    });
  });

  it('reads operationdate as GMT and refuses anything else', () => {
    expect(parseOperationDate('03.12.2026 12:00:05')?.toISOString()).toBe('2026-12-03T12:00:05.000Z');
    expect(parseOperationDate('2026-12-03 12:00')).toBeUndefined();
  });

  it('refuses a date with impossible fields rather than rolling it over to another moment', () => {
    // Date.UTC would read 31.02 as 3 March and 24:00:00 as midnight of the next day (taken so until 2026-12-07).
    for (const text of [
      '31.02.2026 10:00:00',
      '29.02.2025 10:00:00',
      '03.12.2026 24:00:00',
      '03.12.2026 12:60:00',
      '03.13.2026 12:00:00',
      '00.12.2026 12:00:00',
    ]) {
      expect(parseOperationDate(text)).toBeUndefined();
    }
    expect(parseOperationDate('29.02.2028 23:59:59')?.toISOString()).toBe('2028-02-29T23:59:59.000Z');
  });
});

describe('answer signature (response table: X signed by Assist)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const verifier = createRsaMd5Verifier(publicKey);
  const x = MERCHANT.merchantId + 'ORD-0001' + '101.00' + 'RUB' + 'Approved';
  const ctx = { merchantId: MERCHANT.merchantId, salt: SALT, verifySignature: verifier };
  const body = (signature?: string) => JSON.stringify({ orderstate: { ...orderObject(), ...(signature === undefined ? {} : { signature }) } });

  it('trusts an order whose signature verifies', () => {
    const good = sign('md5', Buffer.from(x, 'utf8'), privateKey).toString('base64');
    expect(parseOrderStateResponse(body(good), ctx).kind).toBe('order');
  });

  it('refuses a missing or wrong signature even when the checkvalue is right', () => {
    expect(() => parseOrderStateResponse(body(), ctx)).toThrow(expect.objectContaining({ code: 'SIGNATURE_MISSING' }));
    const other = sign('md5', Buffer.from(x + 'X', 'utf8'), privateKey).toString('base64');
    expect(() => parseOrderStateResponse(body(other), ctx)).toThrow(expect.objectContaining({ code: 'SIGNATURE_MISMATCH' }));
    // Without a verifier configured the signature is not required (MD5 signature type: empty).
    expect(parseOrderStateResponse(body(), { merchantId: MERCHANT.merchantId, salt: SALT }).kind).toBe('order');
  });
});

import { createHash, createPrivateKey, sign } from 'node:crypto';
import { SANDBOX_MERCHANT, startAssistSandbox, type AssistSandbox } from './server';
import { TEST_MERCHANT_PRIVATE_KEY_PEM } from './test-merchant-key';

// Requests here are built by hand (not with the client library) so the sandbox is tested on its own.
const KEY = createPrivateKey(TEST_MERCHANT_PRIVATE_KEY_PEM);
const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');
let sandbox: AssistSandbox;
let seq = 0;

function form(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = {
    Merchant_ID: SANDBOX_MERCHANT.merchantId,
    Login: SANDBOX_MERCHANT.login,
    Password: SANDBOX_MERCHANT.password,
    OrderNumber: `S-${++seq}`,
    OrderAmount: '12.00',
    OrderCurrency: 'RUB',
    TokenType: '1',
    PaymentToken: '{"version":"EC_v1","data":"x","signature":"y","header":{}}',
    Lastname: 'Petrov',
    Firstname: 'Petr',
    Email: 'p@example.com',
    Format: '5',
    ...overrides,
  };
  const fields = Object.fromEntries(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
  if (!('Signature' in overrides)) {
    const text = [fields['Merchant_ID'], fields['OrderNumber'], fields['OrderAmount'], fields['OrderCurrency'] ?? ''].join(';');
    fields['Signature'] = sign('md5', Buffer.from(text, 'utf8'), KEY).toString('base64');
  }
  return fields;
}

async function post(path: string, fields: Record<string, string>) {
  const res = await fetch(sandbox.url + path, { method: 'POST', body: new URLSearchParams(fields) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}
const tokenpay = (fields: Record<string, string>) => post('/pay/tokenpay.cfm', fields);
const orderstate = (orderNumber: string, overrides: Record<string, string> = {}) =>
  post('/orderstate/orderstate.cfm', {
    Merchant_ID: SANDBOX_MERCHANT.merchantId,
    Login: SANDBOX_MERCHANT.login,
    Password: SANDBOX_MERCHANT.password,
    OrderNumber: orderNumber,
    Format: '5',
    ...overrides,
  });

beforeEach(async () => {
  sandbox = await startAssistSandbox({ now: () => new Date(Date.UTC(2015, 0, 26, 17, 25, 39)) });
});
afterEach(async () => {
  await sandbox.close();
});

describe('assist sandbox /pay/tokenpay.cfm', () => {
  it('approves with the spec JSON shape and a checkvalue computed by the formula', async () => {
    const fields = form({ OrderNumber: 'X-1', OrderAmount: '12' });
    const { status, body } = await tokenpay(fields);
    expect(status).toBe(200);
    const x = `${SANDBOX_MERCHANT.merchantId}X-112.00RUBApproved`;
    expect(body['packetdate']).toBe('26.01.2015 17:25:39');
    expect(body['order']).toMatchObject({
      ordernumber: 'X-1',
      orderamount: '12.00',
      ordercurrency: 'RUB',
      orderstate: 'Approved',
      testmode: '0',
      orderdate: '26.01.2015 17:25:39',
      checkvalue: md5((md5(SANDBOX_MERCHANT.salt) + md5(x)).toUpperCase()).toUpperCase(),
    });
    expect(body['order'].operations[0]).toMatchObject({
      operationtype: '100',
      operationstate: 'Success',
      responsecode: 'AS000',
      meantype_id: '60',
      meantypename: 'ApplePay',
    });
    expect(sandbox.orders.get('X-1')).toMatchObject({ state: 'Approved', charges: 1 });
  });

  it('accepts field names in any case', async () => {
    const lower = Object.fromEntries(Object.entries(form()).map(([k, v]) => [k.toLowerCase(), v]));
    expect((await tokenpay(lower)).body['order'].orderstate).toBe('Approved');
  });

  // [rule, overrides, firstcode, secondcode]
  it.each([
    ['Merchant_ID missing', { Merchant_ID: undefined }, 3, 100],
    ['Merchant_ID not a number', { Merchant_ID: 'abc' }, 4, 100],
    ['Login missing', { Login: undefined }, 3, 101],
    ['Login too short', { Login: 'short' }, 4, 101],
    ['Password missing', { Password: undefined }, 3, 102],
    ['Password with _', { Password: 'sandbox_Pass1' }, 4, 102],
    ['OrderNumber missing', { OrderNumber: undefined }, 3, 107],
    ['OrderNumber > 128', { OrderNumber: 'n'.repeat(129) }, 4, 107],
    ['OrderAmount missing', { OrderAmount: undefined }, 3, 108],
    ['OrderAmount format', { OrderAmount: '1.2.3' }, 4, 108],
    ['OrderAmount > 15 digits', { OrderAmount: '1234567890123456' }, 4, 108],
    ['OrderAmount zero', { OrderAmount: '0.00' }, 5, 108],
    ['OrderCurrency format', { OrderCurrency: 'rub' }, 4, 105],
    ['OrderComment > 256', { OrderComment: 'c'.repeat(257) }, 4, 110],
    ['Delay value', { Delay: '2' }, 5, 109],
    ['Language value', { Language: 'DE' }, 5, 127],
    ['ClientIP format', { ClientIP: '1.2.3' }, 4, 116],
    ['TokenType value', { TokenType: '4' }, 5, 111],
    ['PaymentToken missing', { PaymentToken: undefined }, 3, 218],
    ['PaymentToken not JSON', { PaymentToken: 'eyJ2ZXJzaW9uIjoiRUNfdjEifQ==' }, 4, 218],
    ['Lastname missing', { Lastname: undefined }, 3, 117],
    ['Firstname > 70', { Firstname: 'f'.repeat(71) }, 4, 118],
    ['Middlename > 70', { Middlename: 'm'.repeat(71) }, 4, 119],
    ['Email missing', { Email: undefined }, 3, 120],
    ['Address > 256', { Address: 'a'.repeat(257) }, 4, 121],
    ['MobilePhone > 20', { MobilePhone: '1'.repeat(21) }, 4, 122],
    ['City > 70', { City: 'c'.repeat(71) }, 4, 123],
    ['State > 3', { State: 'ABCD' }, 4, 124],
    ['Zip > 25', { Zip: '1'.repeat(26) }, 4, 125],
    ['Country > 3', { Country: 'ABCD' }, 4, 128],
    ['isConvert value', { isConvert: '3' }, 5, 105],
    ['Format not JSON', { Format: '4' }, 5, 103],
    ['RecurringIndicator value', { RecurringIndicator: '2' }, 5, 320],
    ['Recurring fields missing', { RecurringIndicator: '1', RecurringMinAmount: '1.00' }, 3, 320],
    [
      'RecurringMaxDate format',
      { RecurringIndicator: '1', RecurringMinAmount: '1', RecurringMaxAmount: '9', RecurringPeriod: '30', RecurringMaxDate: '2030-01-01' },
      4,
      320,
    ],
    ['ChequeItems not JSON', { ChequeItems: '{' }, 4, 179],
    ['ChequeItems position lacks price', { ChequeItems: '[{"name":"a","quantity":1,"amount":"12.00"}]' }, 3, 179],
    ['Tax value', { Tax: 'vat99' }, 5, 179],
    ['FPMode value', { FPMode: '8' }, 5, 179],
    ['TaxationSystem value', { TaxationSystem: '6' }, 5, 179],
    ['GenerateReceipt value', { GenerateReceipt: '2' }, 5, 179],
    ['ReceiptLine > 128', { ReceiptLine: 'r'.repeat(129) }, 4, 179],
    ['unknown merchant', { Merchant_ID: '1' }, 10, 200],
    ['wrong password', { Password: 'wrongPass1' }, 7, 141],
    ['missing signature', { Signature: undefined }, 9, 5],
    ['bad signature', { Signature: Buffer.alloc(128, 1).toString('base64') }, 9, 5],
  ] as const)('%s → %s/%s', async (_rule, overrides, firstcode, secondcode) => {
    const { body } = await tokenpay(form(overrides));
    expect(body).toEqual({ firstcode: String(firstcode), secondcode: String(secondcode) });
    expect(sandbox.stats.charges).toBe(0);
  });

  it('refuses a duplicate OrderNumber with 11/201 and does not charge twice', async () => {
    const fields = form();
    await tokenpay(fields);
    expect((await tokenpay(fields)).body).toEqual({ firstcode: '11', secondcode: '201' });
    expect(sandbox.stats.charges).toBe(1);
  });

  it.each([
    ['12.00', '0', 'Approved', 1],
    ['12.00', '1', 'Delayed', 1],
    ['12.01', '0', 'Declined', 0],
    ['12.02', '0', 'In Process', 0],
  ] as const)('amount %s, Delay %s → %s', async (amount, delay, state, charges) => {
    const { body } = await tokenpay(form({ OrderAmount: amount, Delay: delay }));
    expect(body['order'].orderstate).toBe(state);
    expect(sandbox.stats.charges).toBe(charges);
  });

  it('.03 Google Pay answers 3/115 with continueurl; the continue page completes the order', async () => {
    const fields = form({ OrderAmount: '12.03', TokenType: '2', PaymentToken: '{"protocolVersion":"ECv2","signature":"s","signedMessage":"m"}' });
    const { body } = await tokenpay(fields);
    expect(body).toMatchObject({ firstcode: '3', secondcode: '115', order: { orderstate: 'In Process' } });
    const declinePage = await fetch(`${body['continueurl']}&outcome=decline`);
    expect(declinePage.status).toBe(200);
    expect((await orderstate(fields['OrderNumber'] ?? '')).body['orderstate'].orderstate).toBe('Declined');
    expect((await fetch(body['continueurl'])).status).toBe(404);
  });

  it('.04 → 17/211 without an order; .05 → 2/1 after charging', async () => {
    expect((await tokenpay(form({ OrderAmount: '12.04' }))).body).toEqual({ firstcode: '17', secondcode: '211' });
    expect(sandbox.orders.size).toBe(0);
    expect((await tokenpay(form({ OrderAmount: '12.05' }))).body).toEqual({ firstcode: '2', secondcode: '1' });
    expect(sandbox.stats.charges).toBe(1);
  });

  it('test mode answers testmode=1', async () => {
    await sandbox.close();
    sandbox = await startAssistSandbox({ testMode: true });
    expect((await tokenpay(form())).body['order'].testmode).toBe('1');
  });

  it('signature "off" accepts unsigned requests; "optional" still checks a sent one', async () => {
    await sandbox.close();
    sandbox = await startAssistSandbox({ signature: 'optional' });
    expect((await tokenpay(form({ Signature: undefined }))).body['order'].orderstate).toBe('Approved');
    expect((await tokenpay(form({ Signature: 'AAAA' }))).body).toEqual({ firstcode: '9', secondcode: '5' });
  });
});

describe('assist sandbox /orderstate/orderstate.cfm', () => {
  it('answers the orderstate root with a valid checkvalue; .02 settles on read', async () => {
    const fields = form({ OrderAmount: '7,02' });
    await tokenpay(fields);
    const { body } = await orderstate(fields['OrderNumber'] ?? '');
    const x = `${SANDBOX_MERCHANT.merchantId}${fields['OrderNumber']}7.02RUBApproved`;
    expect(body['orderstate']).toMatchObject({
      orderstate: 'Approved',
      orderamount: '7.02',
      checkvalue: md5((md5(SANDBOX_MERCHANT.salt) + md5(x)).toUpperCase()).toUpperCase(),
    });
    expect(sandbox.stats.charges).toBe(1);
  });

  it.each([
    ['unknown order', 'NOPE', {}, 10, 201],
    ['missing OrderNumber', '', {}, 3, 107],
    ['wrong login', 'NOPE', { Login: 'other_login' }, 7, 141],
  ] as const)('%s → %s/%s', async (_case, orderNumber, overrides, firstcode, secondcode) => {
    expect((await orderstate(orderNumber, overrides)).body).toEqual({ firstcode: String(firstcode), secondcode: String(secondcode) });
  });
});

describe('assist sandbox fault modes and HTTP', () => {
  it('http500 for the next request only, without processing it', async () => {
    sandbox.setMode('http500', { times: 1 });
    const first = await fetch(`${sandbox.url}/pay/tokenpay.cfm`, { method: 'POST', body: new URLSearchParams(form()) });
    expect(first.status).toBe(500);
    expect(sandbox.orders.size).toBe(0);
    expect((await tokenpay(form())).status).toBe(200);
  });

  it('hang processes the payment and never answers', async () => {
    sandbox.setMode('hang', { times: 1 });
    const fields = form();
    const request = fetch(`${sandbox.url}/pay/tokenpay.cfm`, { method: 'POST', body: new URLSearchParams(fields), signal: AbortSignal.timeout(200) });
    await expect(request).rejects.toThrow();
    expect(sandbox.orders.get(fields['OrderNumber'] ?? '')?.charges).toBe(1);
  });

  it('bad-checkvalue alters the checkvalue only', async () => {
    sandbox.setMode('bad-checkvalue', { times: 1 });
    const fields = form({ OrderNumber: 'BAD-1' });
    const { body } = await tokenpay(fields);
    const good = (await orderstate('BAD-1')).body['orderstate'].checkvalue;
    expect(body['order'].checkvalue).not.toBe(good);
    expect(body['order'].checkvalue).toHaveLength(32);
  });

  it('no-operations answers the order without its operations field, checkvalue unchanged', async () => {
    await tokenpay(form({ OrderNumber: 'NOOPS-1' }));
    const listed = (await orderstate('NOOPS-1')).body['orderstate'];
    sandbox.setMode('no-operations', { endpoint: 'orderstate', times: 1 });
    const bare = (await orderstate('NOOPS-1')).body['orderstate'];
    expect(listed.operations).toHaveLength(1);
    expect(bare).not.toHaveProperty('operations');
    expect(bare).toMatchObject({ ordernumber: 'NOOPS-1', orderstate: 'Approved', checkvalue: listed.checkvalue });
    expect((await orderstate('NOOPS-1')).body['orderstate'].operations).toHaveLength(1);
  });

  it.each([
    ['GET', '/pay/tokenpay.cfm', 405],
    ['POST', '/unknown.cfm', 404],
  ])('%s %s → %s', async (method, path, status) => {
    expect((await fetch(sandbox.url + path, { method })).status).toBe(status);
  });

  it('refuses bodies over 256 KiB with 413', async () => {
    const res = await fetch(`${sandbox.url}/pay/tokenpay.cfm`, { method: 'POST', body: 'a='.padEnd(300_000, 'x') });
    expect(res.status).toBe(413);
  });
});

describe('assist sandbox /charge/charge.cfm and /cancel/wscancel.cfm', () => {
  const service = (path: '/charge/charge.cfm' | '/cancel/wscancel.cfm', billnumber: string, amount?: string, overrides: Record<string, string> = {}) =>
    post(path, {
      Merchant_ID: SANDBOX_MERCHANT.merchantId,
      Login: SANDBOX_MERCHANT.login,
      Password: SANDBOX_MERCHANT.password,
      Billnumber: billnumber,
      ...(amount === undefined ? {} : { Amount: amount }),
      Currency: 'RUB',
      Format: '5',
      ...overrides,
    });
  const checkvalue = (o: Record<string, string>) =>
    md5(
      (
        md5(SANDBOX_MERCHANT.salt) + md5(`${SANDBOX_MERCHANT.merchantId}${o['ordernumber']}${o['orderamount']}${o['ordercurrency']}${o['orderstate']}`)
      ).toUpperCase(),
    ).toUpperCase();

  async function authorized(delay = '1') {
    const { body } = await tokenpay(form({ OrderNumber: `C-${++seq}`, OrderAmount: '100.00', Delay: delay }));
    return body['order'] as Record<string, string>;
  }

  it('confirms part of a Delayed order (PartialDelayed), then the rest (Approved), each a Charge (200) with a verified answer', async () => {
    const order = await authorized();
    const part = await service('/charge/charge.cfm', order['billnumber']!, '40.00');
    expect(part.body['order']).toMatchObject({ orderstate: 'PartialDelayed', checkvalue: checkvalue({ ...part.body['order'] }) });
    expect(part.body['order'].operations.map((op: Record<string, string>) => [op['operationtype'], op['amount'], op['operationstate']])).toEqual([
      ['100', '100.00', 'Success'],
      ['200', '40.00', 'Success'],
    ]);
    expect((await service('/charge/charge.cfm', order['billnumber']!, '60.01')).body).toEqual({ firstcode: '5', secondcode: '108' });
    expect((await service('/charge/charge.cfm', order['billnumber']!, '60.00')).body['order'].orderstate).toBe('Approved');
    expect((await service('/charge/charge.cfm', order['billnumber']!, '1.00')).body).toEqual({ firstcode: '15', secondcode: '307' });
  });

  it('cancels: releases the authorised remainder first, then refunds, Canceled when nothing is left', async () => {
    const order = await authorized();
    await service('/charge/charge.cfm', order['billnumber']!, '30.00');
    expect((await service('/cancel/wscancel.cfm', order['billnumber']!)).body['order'].orderstate).toBe('Approved'); // 70.00 released
    expect((await service('/cancel/wscancel.cfm', order['billnumber']!, '10.00')).body['order'].orderstate).toBe('PartialCanceled');
    expect((await service('/cancel/wscancel.cfm', order['billnumber']!, '20.00')).body['order'].orderstate).toBe('Canceled');
    expect((await service('/cancel/wscancel.cfm', order['billnumber']!, '1.00')).body).toEqual({ firstcode: '15', secondcode: '308' });
    // orderstate lists every operation of the order.
    const state = await orderstate(order['ordernumber']!);
    expect(state.body['orderstate'].operations.map((op: Record<string, string>) => `${op['operationtype']}:${op['amount']}`)).toEqual([
      '100:100.00',
      '200:30.00',
      '300:70.00',
      '300:10.00',
      '300:20.00',
    ]);
    expect(sandbox.stats).toMatchObject({ chargeRequests: 1, cancelRequests: 4 });
  });

  it('refuses unknown billnumbers, bad credentials and missing fields with the spec codes', async () => {
    expect((await service('/charge/charge.cfm', '123')).body).toEqual({ firstcode: '10', secondcode: '201' });
    expect((await service('/charge/charge.cfm', '')).body).toEqual({ firstcode: '3', secondcode: '143' });
    const order = await authorized();
    expect((await service('/charge/charge.cfm', order['billnumber']!, '1.00', { Password: 'wrongPass1' })).body).toEqual({ firstcode: '7', secondcode: '141' });
    expect((await service('/charge/charge.cfm', order['billnumber']!, '1.00', { Currency: 'USD' })).body).toEqual({ firstcode: '5', secondcode: '105' });
  });

  it('lost-answer carries the request out and drops the connection; the journal shows it once', async () => {
    const order = await authorized();
    sandbox.setMode('lost-answer', { endpoint: 'charge', times: 1 });
    await expect(service('/charge/charge.cfm', order['billnumber']!, '25.00')).rejects.toThrow();
    expect(sandbox.orders.get(order['ordernumber']!)?.operations.map((op) => op.operationtype)).toEqual(['100', '200']);
    // Back to normal after `times`.
    expect((await service('/charge/charge.cfm', order['billnumber']!, '25.00')).body['order'].orderstate).toBe('PartialDelayed');
  });

  it.each(['http500', 'hang', 'slow', 'bad-checkvalue'] as const)('applies %s to the cancel service like to the payment', async (mode) => {
    const order = await authorized('0');
    sandbox.setMode(mode, { endpoint: 'cancel', times: 1, delayMs: 20 });
    const call = fetch(`${sandbox.url}/cancel/wscancel.cfm`, {
      method: 'POST',
      body: new URLSearchParams({
        Merchant_ID: SANDBOX_MERCHANT.merchantId,
        Login: SANDBOX_MERCHANT.login,
        Password: SANDBOX_MERCHANT.password,
        Billnumber: order['billnumber']!,
        Amount: '5.00',
        Format: '5',
      }),
      signal: AbortSignal.timeout(500),
    });
    if (mode === 'hang') {
      await expect(call).rejects.toThrow();
    } else {
      const res = await call;
      if (mode === 'http500') expect(res.status).toBe(500);
      else {
        const body = (await res.json()) as Record<string, any>;
        const valid = body['order'].checkvalue === checkvalue(body['order']);
        expect(valid).toBe(mode === 'slow');
      }
    }
  });
});

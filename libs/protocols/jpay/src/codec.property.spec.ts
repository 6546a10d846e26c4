/** Property (1) of STYLE C8 for every packet kind: decode(parse(write(encode(m)))) deep-equals m. */
import { fc, test } from '@fast-check/jest';

import { decodeCommand, encodeCommand } from './codec-commands';
import { decodeMessage, decodeReply, encodeMessage, encodeReply } from './codec-messages';
import { decodeResponse, encodeResponse } from './codec-responses';
import type { CountSum, JpayCommand, MessageReply, Receipt, TerminalMessage, TransactionRequest, XReport } from './messages';
import { parseXml, writeXml, el } from './xml';

const chars = fc.constantFrom(...'abcXYZ019 АБВжё<>&"\'-_./'.split(''));
const text = fc
  .string({ unit: chars, minLength: 1, maxLength: 20 })
  .map((s) => s.trim())
  .filter((s) => s.length > 0);
const digits = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789'.split('')), minLength: n, maxLength: n });
const amount = fc.integer({ min: 0, max: 999_999_999_999 });
const password = digits(8);
const token = fc.string({
  unit: fc.constantFrom(...'0123456789ABCDEF'.split('')),
  minLength: 32,
  maxLength: 32,
});

const transaction: fc.Arbitrary<TransactionRequest> = fc.oneof(
  fc.record(
    {
      type: fc.constant('purchase' as const),
      amount,
      currency: fc.option(digits(3), { nil: undefined }),
      forceSbp: fc.option(fc.boolean(), { nil: undefined }),
    },
    { requiredKeys: ['type', 'amount'] },
  ),
  fc.record(
    {
      type: fc.constant('refund' as const),
      amount,
      rrn: fc.option(digits(12), { nil: undefined }),
      forced: fc.option(fc.boolean(), { nil: undefined }),
      forceSbp: fc.option(fc.boolean(), { nil: undefined }),
    },
    { requiredKeys: ['type', 'amount'] },
  ),
  fc.record(
    {
      type: fc.constant('void' as const),
      number: fc.oneof(fc.constant('last'), digits(6)),
      amount: fc.option(amount, { nil: undefined }),
      forced: fc.option(fc.boolean(), { nil: undefined }),
    },
    { requiredKeys: ['type', 'number'] },
  ),
  fc.record({ type: fc.constant('purchase-with-cashback' as const), amount, amountOther: amount }),
  fc.record({
    type: fc.constant('purchase' as const),
    amount,
    manualEntry: fc.record(
      {
        pan: digits(16),
        expiry: digits(4),
        password,
        cardholder: fc.option(text, { nil: undefined }),
      },
      { requiredKeys: ['pan', 'expiry', 'password'] },
    ),
  }),
);

const command: fc.Arbitrary<JpayCommand> = fc.oneof(
  fc.record({ command: fc.constant('login' as const), password }),
  fc.record({
    command: fc.constantFrom('logout', 'updateconfiguration', 'loadworkkeys', 'loadmasterkeys', 'testconnection', 'getparameters', 'runreset' as const),
    token,
  }),
  fc.record({
    command: fc.constant('changepassword' as const),
    token,
    password,
    newPassword: password,
  }),
  transaction.map((t) => ({ command: 'transaction' as const, ...t })),
  fc.record({
    command: fc.constant('report' as const),
    password,
    reportType: fc.constantFrom('brief' as const, 'full' as const),
  }),
  fc.record(
    {
      command: fc.constant('settlement' as const),
      password,
      force: fc.option(fc.constant(true), { nil: undefined }),
    },
    { requiredKeys: ['command', 'password'] },
  ),
  fc.record({ command: fc.constant('clear' as const), password }),
  fc.constant({ command: 'resetpassword' as const }),
  fc.record({
    command: fc.constant('sethostkey' as const),
    token,
    name: fc.constantFrom('hkey1', 'k2'),
    material: fc.base64String({ minLength: 4, maxLength: 40 }),
  }),
);

const drop = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const receipt: fc.Arbitrary<Receipt> = fc
  .record(
    {
      header: fc.array(text, { maxLength: 3 }),
      footer: fc.array(text, { maxLength: 2 }),
      tid: digits(10),
      seq: digits(6),
      type: fc.constantFrom('purchase', 'refund', 'purchasereversal'),
      tstatus: fc.constantFrom('approved', 'declined'),
      amountAuthorized: amount,
      amountOther: amount,
      currency: digits(3),
      alabel: text,
      appname: text,
      pan: fc.constant('************1234'),
      rrn: digits(12),
      bankName: text,
      iface: fc.constant('sbp'),
      cft: fc.dictionary(fc.constantFrom('localQrcId', 'qrcId', 'pointId'), text),
      extras: fc.array(
        text.map((t) => el('x-user', t)),
        { maxLength: 2 },
      ),
    },
    { requiredKeys: ['header', 'footer', 'extras'] },
  )
  .map((r) => drop({ ...r, applicationName: r.alabel ?? r.appname }) as Receipt);

const countSum: fc.Arbitrary<CountSum> = fc.record({ count: fc.nat(99999), sum: amount }, { requiredKeys: [] });
const totals = fc.record({
  purchase: countSum,
  refund: countSum,
  purchaseWithCashback: countSum,
  purchaseReversal: countSum,
  refundReversal: countSum,
  totalSum: fc.integer({ min: -999_999_999_999, max: 999_999_999_999 }),
  totalCount: fc.nat(99999),
});
const xreport: fc.Arbitrary<XReport> = fc
  .record({
    header: fc.record(
      {
        mid: text,
        tid: digits(10),
        title: fc.array(text, { maxLength: 2 }),
        currency: digits(3),
        time: digits(12),
      },
      { requiredKeys: ['title'] },
    ),
    transactions: fc.array(
      fc.record(
        {
          status: fc.constantFrom('approved', 'declined'),
          type: fc.constantFrom('purchase', 'refund'),
          seq: digits(6),
          amount,
          amountOther: amount,
          time: digits(12),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    ),
    totals: fc.array(
      totals.chain((t) => fc.record({ rid: digits(10), name: text }).map((n) => ({ ...n, ...t }))),
      { maxLength: 2 },
    ),
    grandTotals: totals,
  })
  .map((r) => drop({ ...r, header: drop(r.header) }));

const errors = fc.array(text, { maxLength: 2 });
const status = fc.constantFrom('ok', 'failed', 'cancelled', 'notauthorized', 'connectionerror');

describe('codec round trips', () => {
  test.prop([command], { numRuns: 300 })('commands', (cmd) => {
    expect(decodeCommand(parseXml(writeXml(encodeCommand(cmd))))).toEqual(drop(cmd));
  });

  test.prop([status, errors, fc.option(receipt, { nil: undefined })], { numRuns: 150 })('transaction responses', (s, e, r) => {
    const response = drop({ command: 'transaction' as const, status: s, errors: e, receipt: r });
    expect(decodeResponse('transaction', parseXml(writeXml(encodeResponse(response))))).toEqual(response);
  });

  test.prop([xreport], { numRuns: 100 })('report responses with D/C signed totals', (x) => {
    const response = { command: 'report' as const, status: 'ok', errors: [], xreport: x };
    expect(decodeResponse('report', parseXml(writeXml(encodeResponse(response))))).toEqual(response);
  });

  test.prop([fc.integer({ min: -999_999_999_999, max: 999_999_999_999 }), fc.nat(999)], {
    numRuns: 100,
  })('settlement responses', (amt, tnum) => {
    const response = {
      command: 'settlement' as const,
      status: 'ok',
      errors: [],
      bankName: 'БАНК',
      sreport: { amount: amt, origAmount: amt, tnum, settlementResult: 'passed' },
    };
    expect(decodeResponse('settlement', parseXml(writeXml(encodeResponse(response))))).toEqual(response);
  });

  const message: fc.Arbitrary<TerminalMessage> = fc.oneof(
    fc.record(
      {
        type: fc.constant('keepalive' as const),
        root: fc.constantFrom('keepalive' as const, 'keep-alive' as const),
        resetConnected: fc.option(fc.boolean(), { nil: undefined }),
      },
      { requiredKeys: ['type', 'root'] },
    ),
    fc.record(
      {
        type: fc.constant('display' as const),
        code: fc.constantFrom('03', 'D1', 'D5'),
        msg: text,
        valueQualifier: fc.constantFrom('00', '10'),
        value: amount,
        currency: digits(3),
      },
      { requiredKeys: ['type', 'code'] },
    ),
    fc.record(
      {
        type: fc.constant('displayqrcode' as const),
        status: fc.constantFrom('show' as const, 'hide' as const),
        url: fc.webUrl(),
      },
      { requiredKeys: ['type', 'status'] },
    ),
    fc.record({
      type: fc.constant('dex' as const),
      kernelTags: fc.array(fc.record({ name: fc.constantFrom('5A', '9F06'), value: digits(8) }), {
        maxLength: 3,
      }),
    }),
    fc.record(
      {
        type: fc.constant('card' as const),
        code: fc.constantFrom('open' as const, 'read' as const, 'write' as const),
        blockId: fc.nat(63),
        status: fc.constantFrom('ok', 'failed'),
        payload: fc.base64String({ minLength: 4, maxLength: 24 }),
      },
      { requiredKeys: ['type', 'code'] },
    ),
  );
  test.prop([message], { numRuns: 200 })('messages', (m) => {
    expect(decodeMessage(parseXml(writeXml(encodeMessage(m))))).toEqual(drop(m));
  });

  const reply: fc.Arbitrary<MessageReply> = fc.oneof(
    fc.record({
      type: fc.constant('status' as const),
      root: fc.constantFrom('keepalive', 'keep-alive', 'display', 'mystery'),
      status: fc.constantFrom('ok', 'cancelled', 'notimplemented'),
    }),
    fc.record({
      type: fc.constant('dex' as const),
      status: fc.constant('ok'),
      terminalTags: fc.array(fc.record({ name: fc.constant('9F06'), value: digits(12) }), {
        maxLength: 2,
      }),
    }),
    fc.record(
      {
        type: fc.constant('smartcard' as const),
        command: fc.constantFrom('next' as const, 'end' as const, 'retry' as const),
        indicator: fc.option(fc.constantFrom('ok' as const, 'error' as const), { nil: undefined }),
      },
      { requiredKeys: ['type', 'command'] },
    ),
    fc.record({
      type: fc.constant('card' as const),
      code: fc.constant('read' as const),
      blockId: fc.nat(63),
    }),
    fc.record({
      type: fc.constant('card' as const),
      code: fc.constant('write' as const),
      blockId: fc.nat(63),
      payload: fc.base64String({ minLength: 4, maxLength: 24 }),
    }),
    fc.record(
      {
        type: fc.constant('card' as const),
        code: fc.constant('close' as const),
        receipt: fc.array(
          text.map((t) => el('amount', t)),
          { minLength: 1, maxLength: 2 },
        ),
      },
      { requiredKeys: ['type', 'code'] },
    ),
  );
  test.prop([reply], { numRuns: 200 })('message replies', (r) => {
    expect(decodeReply(parseXml(writeXml(encodeReply(r))))).toEqual(drop(r));
  });
});

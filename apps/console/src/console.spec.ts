import { describe, expect, it } from '@jest/globals';

import { can, roleOf, type WalletPayment } from './api';
import { normalizeErrorCode, parseRoute, settlementsView, WALLET_OPERATION_STATES, WALLET_STATES, walletHash, walletView } from './routes';
import { money, parseAmount } from './state';
import { actorLabel, confirmationText, OPERATION_VERDICTS, paymentVerdicts, verdictBody } from './wallet-resolution';

describe('parseAmount', () => {
  it.each([
    ['15', 1500],
    ['15.00', 1500],
    ['15,5', 1550],
    [' 0.01 ', 1],
    ['1234567.89', 123456789],
    ['0.29', 29], // 0.29 * 100 is 28.999999999999996 in floating point
    ['1.1', 110],
  ])('reads %j as %d minor units exactly', (text, minor) => {
    expect(parseAmount(text)).toBe(minor);
  });

  it.each(['', '0', '0.00', '-5', '1.234', '1e3', 'abc', '1.2.3', '12345678901'])('refuses %j', (text) => {
    expect(parseAmount(text)).toBeNull();
  });
});

describe('money', () => {
  it('formats minor units with the currency, without floating point', () => {
    expect(money(1500, 'RUB')).toBe('15.00 RUB');
    expect(money(123456789, 'RUB')).toBe('1,234,567.89 RUB');
    expect(money(-7)).toBe('-0.07');
    expect(money(null)).toBe('—');
  });
});

describe('can', () => {
  it('follows the roles of libs/domain/src/scopes.ts', () => {
    expect(can(['read'], 'operations:write')).toBe(false);
    expect(can(['operate'], 'operations:write')).toBe(true);
    expect(can(['operate'], 'settlements:write')).toBe(true);
    expect(can(['operate'], 'webhooks:write')).toBe(false);
    expect(can(['operate'], 'admin')).toBe(false);
    expect(can(['admin'], 'terminals:write')).toBe(true);
    expect(can(['operations:write'], 'operations:write')).toBe(true);
    expect(can(['operations:write'], 'wallet:write')).toBe(false);
    expect([roleOf(['read']), roleOf(['operate', 'read']), roleOf(['admin']), roleOf(['terminals:read'])]).toEqual(['read', 'operate', 'admin', 'read']);
  });
});

describe('parseRoute', () => {
  it('maps hashes to pages, ids and parameters', () => {
    expect(parseRoute('')).toMatchObject({ page: 'fleet' });
    expect(parseRoute('#/terminals/abc')).toMatchObject({ page: 'terminal', id: 'abc' });
    expect(parseRoute('#/settlements')).toMatchObject({ page: 'settlements' });
    expect(parseRoute('#/settlements/s1')).toMatchObject({ page: 'settlement', id: 's1' });
    expect(parseRoute('#/pay?terminal=t1').params.get('terminal')).toBe('t1');
    expect(parseRoute('#/plots')).toMatchObject({ page: 'plots' });
    expect(parseRoute('#/nowhere')).toMatchObject({ page: 'fleet' });
  });
});

describe('settlementsView', () => {
  it('keeps a store id, a month and a day that exist, and drops the rest (a hostile link cannot break the page)', () => {
    const store = '5d1e0c2a-1111-4222-8333-944455556666';
    expect(settlementsView(new URLSearchParams({ store: store.toUpperCase(), month: '2026-02', day: '2026-02-28' }))).toEqual({
      store,
      month: '2026-02',
      day: '2026-02-28',
    });
    expect(settlementsView(new URLSearchParams({ store: '"]x', month: 'x', day: '2026-02-30"]' }))).toEqual({ store: '', month: '', day: '' });
    expect(settlementsView(new URLSearchParams({ month: '2026-13', day: '2026-02-30' }))).toEqual({ store: '', month: '', day: '' });
    expect(settlementsView(new URLSearchParams({ day: '2024-02-29' })).day).toBe('2024-02-29');
  });
});

describe('walletView', () => {
  const id = '5d1e0c2a-1111-4222-8333-944455556666';

  it('reads the filters and the open payment from the URL, as the API takes them', () => {
    const view = walletView(parseRoute(`#/wallet?state=unknown&errorCode=order_not_proven&operationState=unknown&payment=${id.toUpperCase()}`).params);
    expect(view).toEqual({ state: 'unknown', errorCode: 'ORDER_NOT_PROVEN', operationState: 'unknown', payment: id });
    expect(walletView(new URLSearchParams(walletHash(view).split('?')[1]))).toEqual(view);
    expect(walletHash(view)).toBe(`#/wallet?state=unknown&errorCode=ORDER_NOT_PROVEN&operationState=unknown&payment=${id}`);
    expect(walletHash({ state: '', errorCode: '', operationState: '', payment: '' })).toBe('#/wallet');
  });

  it('drops what the API would refuse (a hand-typed link never makes a 400)', () => {
    const params = new URLSearchParams({ state: 'constructor', errorCode: 'not a code', operationState: 'approved', payment: '../x' });
    expect(walletView(params)).toEqual({ state: '', errorCode: '', operationState: '', payment: '' });
    expect(walletView(new URLSearchParams({ state: 'toString', operationState: '__proto__' }))).toMatchObject({ state: '', operationState: '' });
    expect([normalizeErrorCode(' checkvalue_mismatch '), normalizeErrorCode('9ABC'), normalizeErrorCode('A'.repeat(65))]).toEqual([
      'CHECKVALUE_MISMATCH',
      '',
      '',
    ]);
  });

  it("offers every state of the contract's enums", () => {
    expect(WALLET_STATES).toHaveLength(12);
    expect(WALLET_STATES).toContain('unknown');
    expect(WALLET_OPERATION_STATES).toEqual(['pending', 'succeeded', 'failed', 'unknown']);
  });
});

describe('wallet resolution', () => {
  const payment = {
    id: 'p1',
    orderNumber: 'ORD-7',
    amount: 10_005,
    currency: 'RUB',
    twoStage: false,
    operations: [{ id: 'o1', kind: 'cancel_authorization', amount: 6_000, currency: 'RUB', state: 'unknown' }],
  } as unknown as WalletPayment;

  it('offers only the paid verdict that fits the payment (the other is a 422)', () => {
    expect(paymentVerdicts(false).map((o) => o.value)).toEqual(['approved', 'declined', 'rejected']);
    expect(paymentVerdicts(true).map((o) => o.value)).toEqual(['authorized', 'declined', 'rejected']);
    expect(OPERATION_VERDICTS.map((o) => o.value)).toEqual(['succeeded', 'failed']);
  });

  it('builds the request body from the fields, or says what is missing', () => {
    const pay = { kind: 'payment' } as const;
    const op = { kind: 'operation', operationId: 'o1' } as const;
    expect(verdictBody(pay, { state: 'approved', note: '  back office: Approved ', billNumber: ' ' })).toEqual({
      state: 'approved',
      note: 'back office: Approved',
    });
    expect(verdictBody(pay, { state: 'approved', note: 'checked', billNumber: '5899110200000001' })).toEqual({
      state: 'approved',
      note: 'checked',
      billNumber: '5899110200000001',
    });
    expect(verdictBody(op, { state: 'succeeded', note: 'checked', billNumber: '5899110200000001.2' })).toMatchObject({ billNumber: '5899110200000001.2' });
    expect(verdictBody(pay, { state: 'approved', note: ' ok ', billNumber: '' })).toEqual({ problem: expect.stringContaining('at least 3') });
    expect(verdictBody(pay, { state: 'approved', note: 'checked', billNumber: '5899110200000001.2' })).toEqual({ problem: expect.stringContaining('digits') });
    expect(verdictBody(op, { state: 'failed', note: 'checked', billNumber: '5899110200000001' })).toEqual({ problem: expect.stringContaining('a dot') });
    expect(verdictBody(pay, { state: 'rejected', note: 'checked', billNumber: '5899110200000001' })).toEqual({ problem: expect.stringContaining('rejected') });
  });

  it('says what a verdict does before it is confirmed', () => {
    expect(confirmationText(payment, { kind: 'payment' }, { state: 'approved', note: 'checked' })).toBe(
      'Record order ORD-7 as approved: 100.05 RUB taken as paid (authorised and captured). Without a billnumber it cannot be captured, cancelled or refunded through payorch.',
    );
    expect(confirmationText(payment, { kind: 'payment' }, { state: 'authorized', note: 'checked', billNumber: '1' })).toBe(
      'Record order ORD-7 as authorized: 100.05 RUB held; capture or release it afterwards.',
    );
    expect(confirmationText(payment, { kind: 'payment' }, { state: 'rejected', note: 'checked' })).toContain('no money moved');
    expect(confirmationText(payment, { kind: 'operation', operationId: 'o1' }, { state: 'failed', note: 'checked' })).toBe(
      'Record the cancel authorization of 60.00 RUB on order ORD-7 as failed: no money moved, and a new capture / cancel can be sent.',
    );
  });

  it('names who decided as the audit log does', () => {
    const key = '5d1e0c2a-1111-4222-8333-944455556666';
    expect(actorLabel({ type: 'api_key', id: key })).toBe('API key 5d1e0c2a');
    expect(actorLabel({ type: 'api_key', id: key }, key)).toBe('API key 5d1e0c2a (this key)');
    expect(actorLabel({ type: 'admin', id: 'ops@host-1' })).toBe('operator ops@host-1');
    expect(actorLabel({ type: 'system', id: null })).toBe('system');
  });
});

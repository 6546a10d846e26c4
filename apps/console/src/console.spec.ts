import { describe, expect, it } from '@jest/globals';

import { can, roleOf } from './api';
import { parseRoute } from './routes';
import { money, parseAmount } from './state';

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

import { Writable } from 'node:stream';

import { createLogger, luhnValid, maskPan, scrubPans } from './index';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, destination };
}

describe('pan helpers', () => {
  it('validates Luhn', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('41x1')).toBe(false);
  });

  it('masks to first 6 / last 4', () => {
    expect(maskPan('4111111111111111')).toBe('411111******1111');
    expect(maskPan('5500 0000 0000 0004')).toBe('550000******0004');
    expect(maskPan('1234')).toBe('****');
  });

  it('scrubs Luhn-valid card numbers in free text but keeps other numbers', () => {
    expect(scrubPans('card 4111111111111111 declined, rrn 123456789012')).toBe('card 411111******1111 declined, rrn 123456789012');
    expect(scrubPans('spaced 4111 1111 1111 1111.')).toBe('spaced 411111******1111.');
    expect(scrubPans('order 1234567890123')).toBe('order 1234567890123');
  });
});

describe(createLogger.name, () => {
  it('redacts secrets at nested levels and scrubs PANs in messages', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ name: 'test', destination });
    logger.info(
      { req: { headers: { authorization: 'Bearer abc' } }, terminal: { password: 'p', id: 't1' }, pan: '4111111111111111' },
      'paid with 4111111111111111',
    );
    expect(lines).toHaveLength(1);
    const line = lines[0] as any;
    expect(line.req.headers.authorization).toBe('[REDACTED]');
    expect(line.terminal).toEqual({ password: '[REDACTED]', id: 't1' });
    expect(line.pan).toBe('[REDACTED]');
    expect(line.msg).toBe('paid with 411111******1111');
    expect(line.service).toBe('test');
    expect(JSON.stringify(line)).not.toContain('4111111111111111');
  });

  it('redacts credential headers however a client library spells them (pino paths are case-sensitive)', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ name: 'test', destination });
    const headers = {
      Authorization: 'Bearer secret-1',
      'Proxy-Authorization': 'Basic secret-2',
      'proxy-authorization': 'Basic secret-3',
      Cookie: 'session=secret-4',
      'Set-Cookie': ['session=secret-5'],
      'set-cookie': ['session=secret-6'],
      'X-Api-Key': 'secret-7',
      'x-api-key': 'secret-8',
      'X-Request-Id': 'req-1',
    };
    logger.info({ headers, req: { headers }, Authorization: 'Bearer secret-9' }, 'upgrade');
    const text = JSON.stringify(lines);
    expect(text).not.toMatch(/secret-\d/);
    expect((lines[0] as any).req.headers['X-Request-Id']).toBe('req-1');
  });
});

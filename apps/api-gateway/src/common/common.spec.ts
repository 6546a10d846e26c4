import type { IncomingMessage } from 'node:http';

import { BadRequestException, HttpException, NotFoundException } from '@nestjs/common';

import { ApiError, type ApiErrorCode } from '@payorch/domain';
import { CAPABILITIES, OPERATION_TYPES } from '@payorch/drivers';

import { sourceAddress, throttleSubject } from './auth-throttle';
import { ErrorFilter, statusOf } from './error.filter';
import { badString, inspectValue, MAX_JSON_DEPTH } from './input-hygiene';
import { decodeCursor, toPage } from './pagination';
import { rawErrorResponse } from './raw-error';
import { ZodPipe } from './zod';
import { AMOUNT_TYPES, createOperationSchema } from '../operations/dto/operation.dto';
import { createStoreSchema } from '../stores/dto/store.dto';

describe(statusOf.name, () => {
  it.each<[ApiErrorCode, number]>([
    ['VALIDATION_FAILED', 400],
    ['IDEMPOTENCY_KEY_REQUIRED', 400],
    ['UNAUTHENTICATED', 401],
    ['FORBIDDEN', 403],
    ['NOT_FOUND', 404],
    ['CONFLICT', 409],
    ['IDEMPOTENCY_KEY_REUSED', 409],
    ['TERMINAL_DISABLED', 409],
    ['AGENT_REVOKED', 409],
    ['UNPROCESSABLE', 422],
    ['RATE_LIMITED', 429],
    ['INTERNAL', 500],
    ['SERVICE_UNAVAILABLE', 503],
  ])('maps %s to %i', (code, status) => {
    expect(statusOf(code)).toBe(status);
  });
});

describe(ErrorFilter.name, () => {
  const answer = (exception: unknown) => {
    const logger = { warn: jest.fn(), error: jest.fn() };
    const res = { headersSent: false, headers: {} as Record<string, string>, status: 0, body: undefined as unknown };
    const response = {
      get headersSent() {
        return res.headersSent;
      },
      hasHeader: (name: string) => name in res.headers,
      setHeader: (name: string, value: string) => void (res.headers[name] = value),
      removeHeader: (name: string) => void delete res.headers[name],
      type: (type: string) => ((res.headers['Content-Type'] = type), response),
      status: (status: number) => ((res.status = status), response),
      json: (body: unknown) => void (res.body = body),
    };
    const req = { requestId: 'req-1', method: 'GET', path: '/v1/stores' };
    const host = { switchToHttp: () => ({ getRequest: () => req, getResponse: () => response }) };
    new ErrorFilter(logger as never).catch(exception, host as never);
    return { res, logger };
  };

  it('answers 503 + Retry-After for an unavailable database, logged as a warning with the request id', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' });
    const { res, logger } = answer(refused);
    expect(res.status).toBe(503);
    expect(res.headers['Retry-After']).toBe('5');
    expect(res.body).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: expect.any(String), details: { retryAfterSeconds: 5 }, requestId: 'req-1' } });
    expect(logger.warn).toHaveBeenCalledWith(expect.objectContaining({ requestId: 'req-1', cause: 'ECONNREFUSED' }), 'request refused: service unavailable');
    expect(logger.error).not.toHaveBeenCalled();
  });

  it('words what the HTTP stack refused in fixed texts, quoting nothing of the request (the parser quoted the body)', () => {
    const parse = Object.assign(new SyntaxError('Unexpected token \'z\', "{"token": zq7marker}" is not valid JSON'), {
      status: 400,
      type: 'entity.parse.failed',
    });
    const charset = Object.assign(new Error('unsupported charset "ZQ7MARKER"'), { status: 415, type: 'charset.unsupported' });
    const answers = [
      answer(new BadRequestException(parse.message, { cause: parse })),
      answer(new HttpException(charset.message, 415, { cause: charset })),
      answer(new NotFoundException('Cannot GET /zq7marker')),
    ].map(({ res }) => [res.status, res.body]);
    expect(answers).toEqual([
      [400, { error: { code: 'VALIDATION_FAILED', message: 'malformed request: the body is not valid JSON', details: null, requestId: 'req-1' } }],
      [415, { error: { code: 'VALIDATION_FAILED', message: 'JSON bodies must be UTF-8', details: null, requestId: 'req-1' } }],
      [404, { error: { code: 'NOT_FOUND', message: 'no route for GET at this path', details: null, requestId: 'req-1' } }],
    ]);
  });

  it('still answers 500, logged as an error, for anything else', () => {
    const { res, logger } = answer(new TypeError('bug'));
    expect(res.status).toBe(500);
    expect(res.headers['Retry-After']).toBeUndefined();
    expect(logger.error).toHaveBeenCalled();
  });
});

describe(ZodPipe.name, () => {
  const sut = new ZodPipe(createStoreSchema);

  it('returns the parsed value', () => {
    expect(sut.transform({ name: ' A ', timeZone: 'Europe/Moscow' }, { type: 'body' })).toEqual({ name: 'A', timeZone: 'Europe/Moscow' });
  });

  it('throws VALIDATION_FAILED naming each field', () => {
    try {
      sut.transform({ timeZone: 'Nowhere/City' }, { type: 'body' });
      throw new Error('expected a validation error');
    } catch (error) {
      expect(error).toBeInstanceOf(ApiError);
      const e = error as ApiError;
      expect(e.code).toBe('VALIDATION_FAILED');
      expect((e.details as { issues: { field: string }[] }).issues.map((i) => i.field).sort()).toEqual(['name', 'timeZone']);
    }
  });
});

describe('keyset pagination', () => {
  const rows = [3, 2, 1].map((n) => ({ id: `00000000-0000-4000-8000-00000000000${n}`, createdAt: new Date(Date.UTC(2026, 0, n)) }));

  it('returns a cursor only when there are more rows', () => {
    const page = toPage(rows, { limit: 2 }, (r) => r.id);
    expect(page.data).toEqual([rows[0]!.id, rows[1]!.id]);
    expect(decodeCursor(page.nextCursor!)).toEqual({ id: rows[1]!.id, createdAt: rows[1]!.createdAt });
    expect(toPage(rows.slice(0, 2), { limit: 2 }, (r) => r.id).nextCursor).toBeNull();
  });

  it('rejects a forged cursor with a field error', () => {
    expect(() => decodeCursor('bm90LWpzb24')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('rejects a cursor whose id is not a row id (it goes into SQL as a uuid)', () => {
    const forged = Buffer.from(JSON.stringify({ c: '2026-01-01T00:00:00.000Z', i: "x' OR 1=1" })).toString('base64url');
    expect(() => decodeCursor(forged)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});

describe(inspectValue.name, () => {
  it('accepts ordinary JSON, including well-formed astral characters', () => {
    expect(inspectValue({ name: 'Café ☕ 𝄞', list: [1, { a: null }], n: 5 })).toBeNull();
    expect(inspectValue(undefined)).toBeNull();
  });

  it('names the first string or key holding NUL or a lone surrogate', () => {
    expect(inspectValue({ ok: 'x', items: [{ description: 'a\u0000b' }] })).toEqual({
      field: 'items.0.description',
      message: 'must not contain NUL (\\u0000)',
    });
    expect(inspectValue({ 'k\u0000': 1 })).toEqual({ field: 'k\\u0000', message: 'key must not contain NUL (\\u0000)' });
    expect(inspectValue({ name: 'x\ud800' })?.field).toBe('name');
    expect(inspectValue({ name: '\udc00x' })?.message).toContain('surrogate');
    expect(inspectValue('\u0000')?.field).toBe('(body)');
  });

  it('refuses nesting past the limit without recursion, whatever the depth', () => {
    let deep: unknown = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(inspectValue({ a: deep })).toEqual({ field: `a${'.0'.repeat(MAX_JSON_DEPTH - 1)}`, message: `is nested deeper than ${MAX_JSON_DEPTH} levels` });
    let limit: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) limit = [limit];
    expect(inspectValue(limit)).toBeNull();
    expect(inspectValue([limit])).not.toBeNull();
  });

  it('badString accepts surrogate pairs and refuses halves', () => {
    expect(badString('\ud834\udd1e')).toBeNull();
    expect(badString('\ud834')).not.toBeNull();
  });
});

describe(sourceAddress.name, () => {
  const req = (remoteAddress: string, forwarded?: string) =>
    ({ headers: forwarded ? { 'x-forwarded-for': forwarded } : {}, socket: { remoteAddress } }) as unknown as IncomingMessage;

  it('uses the peer, folding IPv4-mapped IPv6, unless TRUST_PROXY', () => {
    expect(sourceAddress(req('::ffff:10.0.0.1', '203.0.113.7'), false)).toBe('10.0.0.1');
    expect(sourceAddress(req('::1'), true)).toBe('::1');
  });

  it('with TRUST_PROXY takes the right-most X-Forwarded-For entry, the one our proxy appended, not what the client sent', () => {
    expect(sourceAddress(req('10.0.0.1', '198.51.100.1, 203.0.113.7'), true)).toBe('203.0.113.7');
    expect(sourceAddress(req('10.0.0.1', '203.0.113.7'), true)).toBe('203.0.113.7');
    // Repeated headers arrive joined (Node); an array is read the same way.
    expect(sourceAddress({ headers: { 'x-forwarded-for': ['198.51.100.1', '203.0.113.8'] }, socket: {} } as unknown as IncomingMessage, true)).toBe(
      '203.0.113.8',
    );
  });
});

describe(throttleSubject.name, () => {
  it('counts an IPv6 address under its /64, whatever its spelling', () => {
    expect(throttleSubject('2001:db8:7:7::1')).toBe('2001:db8:7:7::/64');
    expect(throttleSubject('2001:0db8:0007:0007:ffff:ffff:ffff:fffe')).toBe('2001:db8:7:7::/64');
    expect(throttleSubject('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('counts an IPv4 address (mapped ones included) as itself, and anything else as it is', () => {
    expect(throttleSubject('203.0.113.7')).toBe('203.0.113.7');
    expect(throttleSubject('::ffff:cb00:7107')).toBe('203.0.113.7');
    expect(throttleSubject('unknown')).toBe('unknown');
  });
});

describe(rawErrorResponse.name, () => {
  it('is a complete HTTP response holding the envelope', () => {
    const raw = rawErrorResponse(431, { code: 'VALIDATION_FAILED', message: 'too large', requestId: 'req-12345678' }, { 'Retry-After': '5' });
    const [head, body] = raw.split('\r\n\r\n') as [string, string];
    expect(head.split('\r\n')).toEqual([
      'HTTP/1.1 431 Request Header Fields Too Large',
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'X-Request-Id: req-12345678',
      'Retry-After: 5',
      'Connection: close',
    ]);
    expect(JSON.parse(body)).toEqual({ error: { code: 'VALIDATION_FAILED', message: 'too large', details: null, requestId: 'req-12345678' } });
  });
});

describe('operation amounts', () => {
  it('AMOUNT_TYPES agrees with every protocol and dialect of the capability matrix', () => {
    for (const dialects of Object.values(CAPABILITIES)) {
      for (const table of Object.values(dialects)) {
        for (const type of OPERATION_TYPES) {
          if (table[type]) expect([type, !!table[type]!.needsAmount]).toEqual([type, AMOUNT_TYPES.has(type)]);
        }
      }
    }
  });

  it.each([
    [{ type: 'purchase', amount: 0 }, 'amount'],
    [{ type: 'purchase' }, 'amount'],
    [{ type: 'refund', amount: 1_000_000_000_000, originalOperationId: '11111111-1111-4111-8111-111111111111' }, 'amount'],
    [{ type: 'void', amount: 5, originalOperationId: '11111111-1111-4111-8111-111111111111' }, 'amount'],
    [{ type: 'purchase_with_cashback', amount: 5 }, 'cashbackAmount'],
    [{ type: 'purchase', amount: 5, cashbackAmount: 1 }, 'cashbackAmount'],
  ])('%j → an issue on %s', (body, field) => {
    const result = createOperationSchema.safeParse(body);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toEqual([field]);
  });

  it('accepts 1 and 999 999 999 999 minor units, and no amount where none is taken', () => {
    expect(createOperationSchema.safeParse({ type: 'purchase', amount: 1 }).success).toBe(true);
    expect(createOperationSchema.safeParse({ type: 'sbp_payment', amount: 999_999_999_999 }).success).toBe(true);
    expect(createOperationSchema.safeParse({ type: 'settlement' }).success).toBe(true);
  });
});

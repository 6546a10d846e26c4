import { ApiError, type ApiErrorCode } from '@payorch/domain';

import { statusOf } from './error.filter';
import { decodeCursor, keyset, toPage } from './pagination';
import { ZodPipe } from './zod';
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
    ['UNPROCESSABLE', 422],
    ['RATE_LIMITED', 429],
    ['INTERNAL', 500],
  ])('maps %s to %i', (code, status) => {
    expect(statusOf(code)).toBe(status);
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
  const rows = [3, 2, 1].map((n) => ({ id: `id-${n}`, createdAt: new Date(Date.UTC(2026, 0, n)) }));

  it('returns a cursor only when there are more rows', () => {
    const page = toPage(rows, { limit: 2 }, (r) => r.id);
    expect(page.data).toEqual(['id-3', 'id-2']);
    expect(decodeCursor(page.nextCursor!)).toEqual({ id: 'id-2', createdAt: rows[1]!.createdAt });
    expect(toPage(rows.slice(0, 2), { limit: 2 }, (r) => r.id).nextCursor).toBeNull();
  });

  it('builds a where clause strictly after the cursor', () => {
    const cursor = toPage(rows, { limit: 1 }, (r) => r.id).nextCursor!;
    expect(keyset({ limit: 1, cursor })).toEqual({
      where: { OR: [{ createdAt: { lt: rows[0]!.createdAt } }, { createdAt: rows[0]!.createdAt, id: { lt: 'id-3' } }] },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: 2,
    });
  });

  it('rejects a forged cursor with a field error', () => {
    expect(() => decodeCursor('bm90LWpzb24')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});

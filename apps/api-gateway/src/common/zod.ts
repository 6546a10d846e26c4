import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { z } from 'zod';

import { ApiError } from '@payorch/domain';

export interface FieldIssue {
  field: string;
  message: string;
}

export function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
}

/** Validates a body/query/param against a zod schema; a failure is a 400 naming every bad field. */
@Injectable()
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.infer<S>> {
  constructor(private readonly schema: S) {}

  transform(value: unknown, metadata: ArgumentMetadata): z.infer<S> {
    const result = this.schema.safeParse(value ?? (metadata.type === 'body' ? undefined : {}));
    if (result.success) return result.data;
    const issues = issuesOf(result.error);
    const where = metadata.type === 'body' ? 'body' : metadata.type;
    throw new ApiError('VALIDATION_FAILED', `invalid ${where}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
  }
}

export { openApi } from './openapi-schema';

/**
 * A UUID from a request (path, query or body) in its canonical spelling (lower case, as PostgreSQL prints a uuid):
 * services compare ids from requests with ids read from the database, hash request bodies for idempotency and write ids
 * into audit rows, so `3F25…` must be `3f25…`. Accepted in capitals (Swift's `uuidString`) and passed on as sent, it was a
 * 404 for an existing operation, a 409 IDEMPOTENCY_KEY_REUSED for the same request repeated in the other spelling, and an
 * audit row no search by the id found. Every UUID of the gateway's schemas is this one (responses too: a no-op there).
 */
export const canonicalUuid = (params?: Parameters<typeof z.uuid>[0]) => z.uuid(params).toLowerCase();

export const uuidParam = canonicalUuid({ message: 'must be a UUID' });

/** The instants a request may name: what PostgreSQL's timestamptz reads back as the gateway sends a Date (ISO 8601, years 1–9999). */
export const FIRST_INSTANT = '0001-01-01T00:00:00.000Z';
export const LAST_INSTANT = '9999-12-31T23:59:59.999Z';
const FIRST_INSTANT_MS = Date.parse(FIRST_INSTANT);
const LAST_INSTANT_MS = Date.parse(LAST_INSTANT);

/** Whether `date` is an instant PostgreSQL takes (false for an invalid Date): every instant read from a request passes it. */
export const isStorableInstant = (date: Date) => date.getTime() >= FIRST_INSTANT_MS && date.getTime() <= LAST_INSTANT_MS;

/** `ms` moved into the instants PostgreSQL takes: a query bound computed from a request (a day widened by zone offsets). */
export const storableInstant = (ms: number) => new Date(Math.min(Math.max(ms, FIRST_INSTANT_MS), LAST_INSTANT_MS));

/**
 * An ISO 8601 date-time with its offset, as an instant PostgreSQL takes: `z.iso.datetime` alone accepts any four-digit
 * year at any offset, so `9999-12-31T23:59:59-14:00` (year 10000 in UTC: a Date printed `+010000-…`) and
 * `0000-01-01T00:00:00Z` (year 0, which PostgreSQL does not have) reached the query and were a 500 ("date/time field value
 * out of range"). Every date-time of the gateway's schemas is this one, so a new filter cannot forget the bound.
 */
export const isoInstant = (params?: { message?: string }) =>
  z.iso
    .datetime({ offset: true, ...params })
    .refine((v) => isStorableInstant(new Date(v)), { message: `must be between ${FIRST_INSTANT} and ${LAST_INSTANT}` });

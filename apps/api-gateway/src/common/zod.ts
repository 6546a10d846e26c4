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

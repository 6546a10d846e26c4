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

export const uuidParam = z.uuid({ message: 'must be a UUID' });

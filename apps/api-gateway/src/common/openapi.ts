import type { z } from 'zod';

import { openApi } from './zod';

export const IDEMPOTENCY_HEADER = {
  name: 'Idempotency-Key',
  required: true,
  description:
    'Client-chosen key (8–128 chars of A-Z a-z 0-9 . _ : -). Same key + same request → the stored answer; same key + different request → 409.',
};

export function pageSchema(item: z.ZodType): Record<string, unknown> {
  return {
    type: 'object',
    required: ['data', 'nextCursor'],
    properties: { data: { type: 'array', items: openApi(item) }, nextCursor: { type: 'string', nullable: true } },
  };
}

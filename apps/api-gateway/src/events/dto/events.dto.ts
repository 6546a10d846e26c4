import { z } from 'zod';

import { DOMAIN_EVENT_TYPES, EVENT_FAMILIES } from '../event-types';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

const ALLOWED = new Set<string>([...DOMAIN_EVENT_TYPES, ...EVENT_FAMILIES]);

/** `types=operation.*,terminal.online` (comma-separated; exact types or `family.*`). */
export const typesField = z
  .string()
  .max(2000)
  .transform((v) =>
    v
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t.length > 0),
  )
  .refine((list) => list.every((t) => ALLOWED.has(t)), {
    message: `comma-separated event types (${DOMAIN_EVENT_TYPES.join(', ')}) or families (${EVENT_FAMILIES.join(', ')})`,
  });

export const streamQuery = z.object({
  after: canonicalUuid({ message: 'must be an event id (UUID)' })
    .optional()
    .describe('Replay events after this event id first (same as the Last-Event-ID header, which wins).'),
  types: typesField.optional().describe('Only these event types (comma-separated; `operation.*` style families allowed).'),
});
export type StreamQuery = z.infer<typeof streamQuery>;

/** What one event looks like on the stream (SSE `data:` / WebSocket message) and in webhooks. */
export const streamEventSchema = z.object({
  createdAt: z.string(),
  data: z.record(z.string(), z.unknown()),
  id: canonicalUuid(),
  subjectId: z.string().nullable(),
  subjectType: z.string(),
  tenantId: canonicalUuid(),
  type: z.enum(DOMAIN_EVENT_TYPES),
});
export type StreamEvent = z.infer<typeof streamEventSchema>;

nameSchemas({ Event: streamEventSchema });

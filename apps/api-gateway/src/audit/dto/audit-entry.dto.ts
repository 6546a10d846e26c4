import { z } from 'zod';

import { nameSchemas } from '../../common/openapi-schema';
import { paginationQuery } from '../../common/pagination';
import { canonicalUuid, isoInstant } from '../../common/zod';

const token = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^[a-z0-9_.:-]+$/i, { message: 'letters, digits and _ . : - only' });

export const auditQuerySchema = paginationQuery
  .extend({
    action: token.optional().describe('e.g. `store.create`, `api_key.revoke`, `operation.create`'),
    actorId: token.optional().describe('The API key id (or operator name) that made the change.'),
    apiKeyId: canonicalUuid({ message: 'must be a UUID' }).optional().describe('Same as actorId for changes made with an API key.'),
    from: isoInstant({ message: 'must be an ISO 8601 date-time' }).optional().describe('Entries at or after this instant.'),
    resourceId: token.optional(),
    resourceType: token.optional().describe('e.g. `store`, `terminal`, `operation`, `api_key`, `webhook_endpoint`'),
    to: isoInstant({ message: 'must be an ISO 8601 date-time' }).optional().describe('Entries before this instant.'),
  })
  .strict()
  .refine((q) => !(q.actorId && q.apiKeyId && q.actorId !== q.apiKeyId), { message: 'actorId and apiKeyId disagree', path: ['apiKeyId'] })
  .refine((q) => !(q.from && q.to && new Date(q.from) >= new Date(q.to)), { message: 'must be after from', path: ['to'] });
export type AuditQuery = z.infer<typeof auditQuerySchema>;

export const auditEntryResponseSchema = z.object({
  action: z.string(),
  actorId: z.string().nullable().describe('API key id for `api_key` actors; `user@host` for `admin` (operator CLI).'),
  actorType: z.string().describe('`api_key`, `admin` or `system`.'),
  createdAt: z.string(),
  details: z.record(z.string(), z.unknown()).nullable().describe('Ids and changed field names only; never secrets.'),
  id: canonicalUuid(),
  requestId: z.string().nullable(),
  resourceId: z.string().nullable(),
  resourceType: z.string(),
});
export type AuditEntryResponse = z.infer<typeof auditEntryResponseSchema>;

export function toAuditEntryResponse(row: {
  action: string;
  actorId: string | null;
  actorType: string;
  createdAt: Date;
  details: unknown;
  id: string;
  requestId: string | null;
  resourceId: string | null;
  resourceType: string;
}): AuditEntryResponse {
  return {
    action: row.action,
    actorId: row.actorId,
    actorType: row.actorType,
    createdAt: row.createdAt.toISOString(),
    details: (row.details ?? null) as Record<string, unknown> | null,
    id: row.id,
    requestId: row.requestId,
    resourceId: row.resourceId,
    resourceType: row.resourceType,
  };
}

nameSchemas({ AuditEntry: auditEntryResponseSchema });

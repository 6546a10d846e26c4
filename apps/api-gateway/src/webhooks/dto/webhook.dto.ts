import { z } from 'zod';

import { withOneTimeSecrets } from '../../common/one-time-secret';
import { paginationQuery } from '../../common/pagination';
import { DOMAIN_EVENT_TYPES } from '../../events/event-types';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

const urlField = z
  .string()
  .trim()
  .max(2000)
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute URL' });
      return;
    }
    if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'must not contain credentials' });
    if (url.hash) ctx.addIssue({ code: 'custom', message: 'must not contain a #fragment' });
    // https only unless the operator allows http (WEBHOOK_ALLOW_HTTP); the host is checked against the
    // platform egress policy at creation and at every delivery (DestinationGuard, docs/security.md).
    if (url.protocol !== 'https:' && url.protocol !== 'http:') ctx.addIssue({ code: 'custom', message: 'must be an https URL' });
  });

const eventTypesField = z
  .array(z.enum([...DOMAIN_EVENT_TYPES, '*']))
  .min(1)
  .max(DOMAIN_EVENT_TYPES.length + 1)
  .transform((types) => [...new Set(types)].sort())
  .describe('Event types to deliver, or ["*"] for all.');

export const createWebhookSchema = z.strictObject({
  description: z.string().trim().min(1).max(500).optional(),
  enabled: z.boolean().default(true),
  eventTypes: eventTypesField,
  url: urlField.describe(
    'https URL receiving the POSTs. Refused (400 EGRESS_DENIED) when its host is or resolves to an address the platform egress policy denies (private, loopback, link-local, metadata…); plain http only where the operator allows it.',
  ),
});
export type CreateWebhookDto = z.infer<typeof createWebhookSchema>;

export const updateWebhookSchema = z
  .strictObject({
    description: z.string().trim().min(1).max(500).nullable().optional(),
    enabled: z.boolean().optional(),
    eventTypes: eventTypesField.optional(),
    url: urlField.optional(),
  })
  .refine((v) => Object.keys(v).length > 0, { message: 'give at least one field to change' });
export type UpdateWebhookDto = z.infer<typeof updateWebhookSchema>;

export const webhookResponseSchema = z.object({
  createdAt: z.string(),
  description: z.string().nullable(),
  enabled: z
    .boolean()
    .describe(
      'false: paused, by the tenant or by payorch once the endpoint has failed every attempt for `WEBHOOK_DISABLE_AFTER_MS` (audit action `webhook.auto_disable`; docs/webhooks.md). PATCH `enabled: true` resumes it.',
    ),
  eventTypes: z.array(z.string()),
  id: canonicalUuid(),
  updatedAt: z.string(),
  url: z.string(),
});
export type WebhookResponse = z.infer<typeof webhookResponseSchema>;

/** Only on create and rotate-secret: the signing secret, shown once (never in a replay). */
export const webhookWithSecretSchema = withOneTimeSecrets(webhookResponseSchema, {
  secret: z.string().describe('Signing secret `whsec_…`; shown only now. Verify `Payorch-Signature` with it (docs/webhooks.md).'),
});
/** What the service returns; the IdempotencyInterceptor adds `secretWithheld` (route: @ReturnsOneTimeSecrets('secret')). */
export type WebhookWithSecret = WebhookResponse & { secret: string };

export function toWebhookResponse(row: {
  createdAt: Date;
  description: string | null;
  enabled: boolean;
  eventTypes: string[];
  id: string;
  updatedAt: Date;
  url: string;
}): WebhookResponse {
  return {
    createdAt: row.createdAt.toISOString(),
    description: row.description,
    enabled: row.enabled,
    eventTypes: row.eventTypes,
    id: row.id,
    updatedAt: row.updatedAt.toISOString(),
    url: row.url,
  };
}

export const DELIVERY_STATUSES = ['pending', 'delivered', 'retrying', 'failed'] as const;

export const listDeliveriesQuery = paginationQuery.extend({
  status: z.enum(DELIVERY_STATUSES).optional(),
});
export type ListDeliveriesQuery = z.infer<typeof listDeliveriesQuery>;

export const deliveryResponseSchema = z.object({
  attempts: z.number().int(),
  createdAt: z.string(),
  deliveredAt: z.string().nullable(),
  endpointId: canonicalUuid(),
  eventId: canonicalUuid(),
  eventType: z.string(),
  id: canonicalUuid(),
  lastError: z.string().nullable(),
  lastStatusCode: z.number().int().nullable(),
  nextAttemptAt: z.string().nullable(),
  status: z.enum(DELIVERY_STATUSES),
  updatedAt: z.string(),
});
export type DeliveryResponse = z.infer<typeof deliveryResponseSchema>;

export function toDeliveryResponse(row: {
  attempts: number;
  createdAt: Date;
  deliveredAt: Date | null;
  endpointId: string;
  eventId: string;
  event: { type: string };
  id: string;
  lastError: string | null;
  lastStatusCode: number | null;
  nextAttemptAt: Date | null;
  status: 'PENDING' | 'DELIVERED' | 'RETRYING' | 'FAILED';
  updatedAt: Date;
}): DeliveryResponse {
  return {
    attempts: row.attempts,
    createdAt: row.createdAt.toISOString(),
    deliveredAt: row.deliveredAt?.toISOString() ?? null,
    endpointId: row.endpointId,
    eventId: row.eventId,
    eventType: row.event.type,
    id: row.id,
    lastError: row.lastError,
    lastStatusCode: row.lastStatusCode,
    nextAttemptAt: row.nextAttemptAt?.toISOString() ?? null,
    status: row.status.toLowerCase() as DeliveryResponse['status'],
    updatedAt: row.updatedAt.toISOString(),
  };
}

nameSchemas({
  CreateWebhookRequest: createWebhookSchema,
  UpdateWebhookRequest: updateWebhookSchema,
  Webhook: webhookResponseSchema,
  WebhookWithSecret: webhookWithSecretSchema,
  WebhookDelivery: deliveryResponseSchema,
});

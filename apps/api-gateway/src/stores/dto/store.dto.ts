import { z } from 'zod';

import { labelsSchema } from '../../campaigns/dto/campaign.dto';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

/** Any IANA zone name the runtime's tz database knows, including links such as Europe/Kyiv → Europe/Kiev. */
function isIanaZone(tz: string): boolean {
  if (!/^(UTC|[A-Za-z_]+(\/[A-Za-z0-9_+-]+){1,2})$/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const timeZoneField = z.string().max(64).refine(isIanaZone, { message: 'must be an IANA time zone such as "Europe/Moscow"' });

export const createStoreSchema = z.strictObject({
  address: z.string().trim().min(1).max(500).optional(),
  labels: labelsSchema.optional().describe('Key/value labels; its terminals match selectors through them. Replaced whole on update.'),
  name: z.string().trim().min(1).max(200),
  reference: z.string().trim().min(1).max(100).optional().describe("The merchant's own id for the store; unique per tenant."),
  timeZone: timeZoneField,
});
export type CreateStoreDto = z.infer<typeof createStoreSchema>;

export const updateStoreSchema = createStoreSchema.partial().refine((v) => Object.keys(v).length > 0, { message: 'give at least one field to change' });
export type UpdateStoreDto = z.infer<typeof updateStoreSchema>;

export const storeResponseSchema = z.object({
  address: z.string().nullable(),
  createdAt: z.string(),
  id: canonicalUuid(),
  labels: z.record(z.string(), z.string()),
  name: z.string(),
  reference: z.string().nullable(),
  timeZone: z.string(),
  updatedAt: z.string(),
});
export type StoreResponse = z.infer<typeof storeResponseSchema>;

export function toStoreResponse(row: {
  address: string | null;
  createdAt: Date;
  id: string;
  labels: unknown;
  name: string;
  reference: string | null;
  timeZone: string;
  updatedAt: Date;
}): StoreResponse {
  return {
    address: row.address,
    createdAt: row.createdAt.toISOString(),
    id: row.id,
    labels: (row.labels as Record<string, string> | null) ?? {},
    name: row.name,
    reference: row.reference,
    timeZone: row.timeZone,
    updatedAt: row.updatedAt.toISOString(),
  };
}

nameSchemas({ CreateStoreRequest: createStoreSchema, UpdateStoreRequest: updateStoreSchema, Store: storeResponseSchema });

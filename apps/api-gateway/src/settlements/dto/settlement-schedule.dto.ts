import { z } from 'zod';

import { LOCAL_TIME_PATTERN } from '@payorch/settlement';

import { paginationQuery } from '../../common/pagination';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

const localTime = z.string().regex(LOCAL_TIME_PATTERN, 'must be "HH:MM" local time, 00:00–23:59');

export const createScheduleSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    localTime: localTime.describe('Close the day at this local time of the store (its IANA time zone).'),
    storeId: canonicalUuid({ message: 'must be a UUID' })
      .optional()
      .describe('Every terminal of the store (those with their own schedule excepted). A store has at most one enabled store-wide schedule.'),
    terminalId: canonicalUuid({ message: 'must be a UUID' })
      .optional()
      .describe("One terminal; overrides its store's schedule. A terminal has at most one enabled schedule of its own."),
  })
  .superRefine((v, ctx) => {
    if ((v.storeId === undefined) === (v.terminalId === undefined)) {
      ctx.addIssue({ code: 'custom', path: [v.storeId === undefined ? 'storeId' : 'terminalId'], message: 'give exactly one of storeId or terminalId' });
    }
  });
export type CreateScheduleDto = z.infer<typeof createScheduleSchema>;

export const updateScheduleSchema = z
  .strictObject({ enabled: z.boolean().optional(), localTime: localTime.optional() })
  .refine((v) => Object.keys(v).length > 0, { message: 'give at least one field to change' });
export type UpdateScheduleDto = z.infer<typeof updateScheduleSchema>;

export const listSchedulesQuery = paginationQuery.extend({
  storeId: canonicalUuid({ message: 'must be a UUID' }).optional(),
  terminalId: canonicalUuid({ message: 'must be a UUID' }).optional(),
});
export type ListSchedulesQuery = z.infer<typeof listSchedulesQuery>;

export const scheduleResponseSchema = z.object({
  createdAt: z.string(),
  enabled: z.boolean(),
  id: canonicalUuid(),
  localTime: z.string(),
  storeId: canonicalUuid().nullable(),
  terminalId: canonicalUuid().nullable(),
  timeZone: z.string().nullable().describe('The store zone the local time is read in.'),
  updatedAt: z.string(),
});
export type ScheduleResponse = z.infer<typeof scheduleResponseSchema>;

export function toScheduleResponse(
  row: { createdAt: Date; enabled: boolean; id: string; localTime: string; storeId: string | null; terminalId: string | null; updatedAt: Date },
  timeZone: string | null,
): ScheduleResponse {
  return {
    createdAt: row.createdAt.toISOString(),
    enabled: row.enabled,
    id: row.id,
    localTime: row.localTime,
    storeId: row.storeId,
    terminalId: row.terminalId,
    timeZone,
    updatedAt: row.updatedAt.toISOString(),
  };
}

nameSchemas({
  CreateSettlementScheduleRequest: createScheduleSchema,
  UpdateSettlementScheduleRequest: updateScheduleSchema,
  SettlementSchedule: scheduleResponseSchema,
});

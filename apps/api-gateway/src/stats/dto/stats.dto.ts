import { z } from 'zod';

import { nameSchemas } from '../../common/openapi-schema';

export const operationStatsQuery = z.strictObject({
  hours: z.coerce.number().int().min(1).max(168).default(24).describe('The window: the last this many hours (1..168).'),
  bucketMinutes: z.coerce.number().int().min(1).max(1440).default(60).describe('Bucket width in minutes (1..1440).'),
});
export type OperationStatsQuery = z.infer<typeof operationStatsQuery>;

const operationBucketSchema = z.object({
  start: z.string().describe('Start of the bucket (ISO 8601, UTC).'),
  total: z.number().int(),
  approved: z.number().int(),
  declined: z.number().int(),
  failed: z.number().int(),
  unknown: z.number().int(),
  approvalRate: z.number().nullable().describe('approved / (approved + declined + failed); null when none finished.'),
  perMinute: z.number().describe('Operations started per minute in this bucket.'),
  terminalsWentOffline: z.number().int().describe('`terminal.offline` events in this bucket (terminals dropping off).'),
});
export type OperationBucket = z.infer<typeof operationBucketSchema>;

const protocolTimingSchema = z.object({
  start: z.string(),
  protocol: z.string(),
  finished: z.number().int(),
  p50Ms: z.number().describe('Terminal time (created → completed), 50th percentile, milliseconds.'),
  p99Ms: z.number().describe('Terminal time (created → completed), 99th percentile, milliseconds.'),
});
export type ProtocolTiming = z.infer<typeof protocolTimingSchema>;

export const operationStatsResponseSchema = z.object({
  from: z.string(),
  to: z.string(),
  bucketMinutes: z.number().int(),
  buckets: z.array(operationBucketSchema),
  timings: z.array(protocolTimingSchema),
});
export type OperationStats = z.infer<typeof operationStatsResponseSchema>;

nameSchemas({ OperationBucket: operationBucketSchema, OperationStats: operationStatsResponseSchema, ProtocolTiming: protocolTimingSchema });

import { z } from 'zod';

import { LABEL_KEY, LABEL_VALUE_MAX, LABELS_MAX, MAX_ATTEMPTS_BEFORE_DEADLINE } from '@payorch/campaigns';

import { nameSchemas } from '../../common/openapi-schema';
import { paginationQuery } from '../../common/pagination';
import { canonicalUuid, isoInstant } from '../../common/zod';

/** Most terminals one campaign may address (the bench runs 10,000). */
export const MAX_CAMPAIGN_TARGETS = 50_000;

/** Terminal management commands a campaign can roll out (docs/operations.md capability matrix). */
export const CAMPAIGN_OPERATION_TYPES = ['load_keys', 'load_config', 'update_app', 'upload_logs', 'terminal_info', 'report_x'] as const;
export const CAMPAIGN_STATES = ['running', 'paused', 'completed', 'canceled'] as const;
export const WAVE_STATES = ['pending', 'running', 'passed', 'halted'] as const;
export const TARGET_STATES = ['pending', 'running', 'retrying', 'succeeded', 'failed', 'skipped'] as const;
export const PAUSE_REASONS = ['operator', 'canary_failed', 'failure_rate'] as const;
export const SELECTOR_PROTOCOLS = ['joinproto', 'jpay', 'ssi_ecr'] as const;

/** Key/value labels of a terminal or store (`region: north`); the whole map is replaced on update. */
export const labelsSchema = z
  .record(
    z.string().regex(LABEL_KEY, 'label keys are lower-case letters, digits, _ . / - and start with a letter (at most 63 characters)'),
    z.string().min(1).max(LABEL_VALUE_MAX),
  )
  .refine((v) => Object.keys(v).length <= LABELS_MAX, { message: `at most ${LABELS_MAX} labels` })
  .describe('Key/value labels, e.g. {"region": "north", "format": "hypermarket"}. Selectors match a terminal by its own or its store\'s labels.');

const uuids = (max: number) =>
  z
    .array(canonicalUuid({ message: 'must be a UUID' }))
    .min(1)
    .max(max);

export const selectorSchema = z
  .strictObject({
    dialects: z
      .array(z.string().min(1).max(32))
      .min(1)
      .max(10)
      .optional()
      .describe('Terminal dialects (`aqsi`, `jpay`, `android`, `linux`); `default` = none set.'),
    labels: labelsSchema.optional(),
    protocols: z.array(z.enum(SELECTOR_PROTOCOLS)).min(1).optional(),
    storeIds: uuids(10_000).optional(),
    terminalIds: uuids(50_000).optional(),
  })
  .describe('Which terminals: every given criterion must hold; any listed value of one criterion matches. `{}` = every terminal.');

const waveSizeSchema = z.union([z.strictObject({ count: z.number().int().min(1).max(50_000) }), z.strictObject({ percent: z.number().min(0.01).max(100) })]);

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24-hour)');

export const policySchema = z
  .strictObject({
    canary: waveSizeSchema.nullable().default(null).describe('First wave; all of it must succeed before the rest start. null: no canary.'),
    deadline: isoInstant()
      .optional()
      .describe(
        `No step starts after it; terminals still offline then fail with the reason. Retried every retryDelaySeconds until then (maxAttempts does not apply), so at most ${MAX_ATTEMPTS_BEFORE_DEADLINE} attempts of a terminal may fit before it; a later deadline is refused (400).`,
      ),
    failureThresholdPercent: z.number().min(0).max(100).default(20).describe('A wave whose failed share passes this pauses the campaign (failure_rate).'),
    maintenanceWindow: z
      .strictObject({ start: hhmm, end: hhmm })
      .refine((w) => w.start !== w.end, { message: 'start and end must differ' })
      .nullable()
      .default(null)
      .describe("Steps start only inside this window of each store's own time zone; an end before the start wraps midnight."),
    maxAttempts: z.number().int().min(1).max(100).default(10).describe('Attempts per offline/busy terminal when there is no deadline.'),
    maxConcurrentPerStore: z.number().int().min(1).max(1000).default(1),
    maxConcurrentPerTenant: z.number().int().min(1).max(10_000).default(50),
    retryDelaySeconds: z.number().int().min(1).max(86_400).default(60),
    waveSize: waveSizeSchema.default({ percent: 10 }),
  })
  .default({
    canary: null,
    failureThresholdPercent: 20,
    maintenanceWindow: null,
    maxAttempts: 10,
    maxConcurrentPerStore: 1,
    maxConcurrentPerTenant: 50,
    retryDelaySeconds: 60,
    waveSize: { percent: 10 },
  });

export const createCampaignSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  operation: z.strictObject({
    type: z.enum(CAMPAIGN_OPERATION_TYPES),
    params: z.strictObject({}).default({}).describe('None of the management commands takes parameters yet.'),
  }),
  policy: policySchema,
  selector: selectorSchema,
});
export type CreateCampaignDto = z.infer<typeof createCampaignSchema>;

export const listCampaignsQuery = paginationQuery.extend({ state: z.enum(CAMPAIGN_STATES).optional() });
export type ListCampaignsQuery = z.infer<typeof listCampaignsQuery>;

export const listTargetsQuery = paginationQuery.extend({
  format: z.enum(['json', 'csv']).default('json').describe('`csv`: every target (no paging) as RFC 4180 CSV.'),
  state: z.enum(TARGET_STATES).optional(),
  // Bounded like the targets: a wave index is below a campaign's most targets, and past int4 PostgreSQL answered with a 500.
  wave: z.coerce.number().int().min(0).max(MAX_CAMPAIGN_TARGETS).optional(),
});
export type ListTargetsQuery = z.infer<typeof listTargetsQuery>;

const countsSchema = z.object({
  failed: z.number().int(),
  pending: z.number().int(),
  retrying: z.number().int(),
  running: z.number().int(),
  skipped: z.number().int(),
  succeeded: z.number().int(),
  total: z.number().int(),
});
export type CountsResponse = z.infer<typeof countsSchema>;

export const waveResponseSchema = z.object({
  canary: z.boolean(),
  completedAt: z.string().nullable(),
  counts: countsSchema,
  index: z.number().int(),
  size: z.number().int(),
  startedAt: z.string().nullable(),
  state: z.enum(WAVE_STATES),
});

export const campaignResponseSchema = z.object({
  completedAt: z.string().nullable(),
  counts: countsSchema,
  createdAt: z.string(),
  deadline: z.string().nullable(),
  eta: z.string().nullable().describe('Estimated end from the pace so far; null before the first result or once nothing is left.'),
  id: canonicalUuid(),
  name: z.string(),
  operation: z.object({ params: z.record(z.string(), z.unknown()), type: z.enum(CAMPAIGN_OPERATION_TYPES) }),
  pauseReason: z.enum(PAUSE_REASONS).nullable(),
  policy: z.record(z.string(), z.unknown()),
  selector: z.record(z.string(), z.unknown()),
  state: z.enum(CAMPAIGN_STATES),
  updatedAt: z.string(),
  waves: z.array(waveResponseSchema).describe('Per wave (GET /v1/campaigns/{id} only; empty in lists).'),
});
export type CampaignResponse = z.infer<typeof campaignResponseSchema>;

export const targetResponseSchema = z.object({
  answer: z.record(z.string(), z.unknown()).nullable().describe("The terminal's own answer to the last attempt (response code and message, data)."),
  attempts: z.number().int(),
  completedAt: z.string().nullable(),
  createdAt: z.string(),
  id: canonicalUuid(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  operationId: canonicalUuid().nullable(),
  reason: z.string().nullable(),
  startedAt: z.string().nullable(),
  state: z.enum(TARGET_STATES),
  storeId: canonicalUuid(),
  terminalId: canonicalUuid(),
  wave: z.number().int().nullable(),
});
export type TargetResponse = z.infer<typeof targetResponseSchema>;

export const TARGET_CSV_COLUMNS = [
  'terminalId',
  'storeId',
  'wave',
  'state',
  'attempts',
  'operationId',
  'responseCode',
  'responseMessage',
  'lastError',
  'reason',
  'completedAt',
] as const;

nameSchemas({
  Campaign: campaignResponseSchema,
  CampaignTarget: targetResponseSchema,
  CreateCampaignRequest: createCampaignSchema,
});

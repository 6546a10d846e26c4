import { z } from 'zod';

import { paginationQuery } from '../../common/pagination';
import { nameSchemas } from '../../common/openapi-schema';
import { OPERATION_STATES } from './operation.dto';
import { canonicalUuid } from '../../common/zod';

export const listOperationEventsQuery = paginationQuery;
export type ListOperationEventsQuery = z.infer<typeof listOperationEventsQuery>;

/** One recorded step of an operation (an OperationEvent row, written with the step by libs/operations). */
export const operationEventResponseSchema = z.object({
  id: canonicalUuid(),
  operationId: canonicalUuid(),
  kind: z
    .string()
    .describe(
      'What happened: `created`, `transition` (a state change), `progress` (terminal status, display text or SBP QR), `refs` (protocol references stored), `frame` (one protocol frame exchanged with the terminal, masked: `data` = `{ direction: out|in, summary, masked, at }`), `completed`, `recovered`, `recovery_attempt`, `recovery_exhausted`, `resolved_manually`.',
    ),
  fromState: z.enum(OPERATION_STATES).nullable().describe('The state before the step; null when the step changed no state.'),
  toState: z.enum(OPERATION_STATES).nullable().describe('The state after the step; null when the step changed no state.'),
  data: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('What the step recorded (sub-status, display text, reason, …): log-safe, PANs masked (first 6 / last 4).'),
  createdAt: z.string(),
});
export type OperationEventResponse = z.infer<typeof operationEventResponseSchema>;

nameSchemas({ OperationEvent: operationEventResponseSchema });

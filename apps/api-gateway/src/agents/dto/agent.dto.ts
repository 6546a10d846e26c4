import { z } from 'zod';

import { withOneTimeSecrets } from '../../common/one-time-secret';
import { paginationQuery } from '../../common/pagination';
import { wireEnum } from '../../common/wire-enum';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

export const createAgentSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  storeId: canonicalUuid({ message: 'must be a UUID' }),
});
export type CreateAgentDto = z.infer<typeof createAgentSchema>;

export const updateAgentSchema = createAgentSchema.partial().refine((v) => Object.keys(v).length > 0, { message: 'give at least one field to change' });
export type UpdateAgentDto = z.infer<typeof updateAgentSchema>;

export const listAgentsQuery = paginationQuery.extend({ storeId: canonicalUuid().optional() });
export type ListAgentsQuery = z.infer<typeof listAgentsQuery>;

/** API casing: `pending_enrollment`, `active`, `revoked`. */
export const agentStatus = wireEnum('AgentStatus', ['PENDING_ENROLLMENT', 'ACTIVE', 'REVOKED']);

export const agentResponseSchema = z.object({
  createdAt: z.string(),
  id: canonicalUuid(),
  lastSeenAt: z.string().nullable(),
  name: z.string(),
  status: agentStatus.schema,
  storeId: canonicalUuid(),
  updatedAt: z.string(),
  version: z.string().nullable(),
});
export type AgentResponse = z.infer<typeof agentResponseSchema>;

export const enrollmentResponseSchema = withOneTimeSecrets(z.object({ agent: agentResponseSchema, enrollmentExpiresAt: z.string() }), {
  enrollmentToken: z.string().describe('Give it to `payorch-agent enroll`; it works once and expires.'),
});
/** What the service returns; the IdempotencyInterceptor adds `secretWithheld` (routes: @ReturnsOneTimeSecrets('enrollmentToken')). */
export interface EnrollmentResponse {
  agent: AgentResponse;
  enrollmentExpiresAt: string;
  enrollmentToken: string;
}

export function toAgentResponse(row: {
  createdAt: Date;
  id: string;
  lastSeenAt: Date | null;
  name: string;
  status: (typeof agentStatus.db)[number];
  storeId: string;
  updatedAt: Date;
  version: string | null;
}): AgentResponse {
  return {
    createdAt: row.createdAt.toISOString(),
    id: row.id,
    lastSeenAt: row.lastSeenAt?.toISOString() ?? null,
    name: row.name,
    status: agentStatus.toApi(row.status),
    storeId: row.storeId,
    updatedAt: row.updatedAt.toISOString(),
    version: row.version,
  };
}

nameSchemas({
  CreateAgentRequest: createAgentSchema,
  UpdateAgentRequest: updateAgentSchema,
  Agent: agentResponseSchema,
  AgentEnrollment: enrollmentResponseSchema,
});

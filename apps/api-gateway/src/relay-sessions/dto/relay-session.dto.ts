import { z } from 'zod';

import { paginationQuery } from '../../common/pagination';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid, isoInstant } from '../../common/zod';

/** How a relay session ended (docs/relay.md, "Audit"); `open` while it runs. */
export const RELAY_OUTCOMES = [
  'open',
  'closed',
  'peer_closed',
  'denied',
  'unresolved',
  'connect_failed',
  'limit_bytes',
  'limit_time',
  'error',
  'tunnel_closed',
  'revoked',
] as const;

export const listRelaySessionsQuery = paginationQuery
  .extend({
    terminalId: canonicalUuid({ message: 'must be a UUID' }).optional(),
    storeId: canonicalUuid({ message: 'must be a UUID' }).optional(),
    state: z.enum(['open', 'ended']).optional().describe('`open`: still running (no endedAt); `ended`: finished, whatever the outcome.'),
    outcome: z.enum(RELAY_OUTCOMES).optional(),
    from: isoInstant().optional().describe('startedAt ≥ from (ISO 8601)'),
    to: isoInstant().optional().describe('startedAt < to (ISO 8601)'),
  })
  .refine((q) => q.from === undefined || q.to === undefined || new Date(q.from) < new Date(q.to), { path: ['to'], message: 'must be after from' });
export type ListRelaySessionsQuery = z.infer<typeof listRelaySessionsQuery>;

export const relaySessionResponseSchema = z.object({
  id: canonicalUuid(),
  terminalId: canonicalUuid(),
  operationId: canonicalUuid().nullable(),
  host: z.string(),
  port: z.number().int(),
  resolvedAddress: z.string().nullable(),
  state: z.enum(['open', 'ended']),
  outcome: z.string(),
  reason: z.string().nullable(),
  bytesToHost: z.number().int(),
  bytesFromHost: z.number().int(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  durationMs: z.number().int().nullable(),
});
export type RelaySessionResponse = z.infer<typeof relaySessionResponseSchema>;

export function toRelaySessionResponse(row: {
  bytesFromHost: bigint;
  bytesToHost: bigint;
  endedAt: Date | null;
  host: string;
  id: string;
  operationId: string | null;
  outcome: string;
  port: number;
  reason: string | null;
  resolvedAddress: string | null;
  startedAt: Date;
  terminalId: string;
}): RelaySessionResponse {
  return {
    id: row.id,
    terminalId: row.terminalId,
    operationId: row.operationId,
    host: row.host,
    port: row.port,
    resolvedAddress: row.resolvedAddress,
    state: row.endedAt === null ? 'open' : 'ended',
    outcome: row.outcome,
    reason: row.reason,
    bytesToHost: Number(row.bytesToHost),
    bytesFromHost: Number(row.bytesFromHost),
    startedAt: row.startedAt.toISOString(),
    endedAt: row.endedAt?.toISOString() ?? null,
    durationMs: row.endedAt === null ? null : row.endedAt.getTime() - row.startedAt.getTime(),
  };
}

nameSchemas({ RelaySession: relaySessionResponseSchema });

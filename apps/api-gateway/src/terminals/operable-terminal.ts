import { Prisma, type SqlClient } from '@payorch/db';
import { type OperationInDoubt, recoveringOperationOf, terminalRefusalOf, toApiState } from '@payorch/operations';
import { ApiError, notFound } from '@payorch/domain';

/** Retry-After of TERMINAL_RECOVERING: recovery starts when the terminal is reachable and takes seconds. */
const RECOVERING_RETRY_AFTER_SECONDS = 10;

/**
 * The one gate for new work on a terminal through the API: operations of every type (payments,
 * reversals, reports, terminal_info, settlement) and manual close-day. Runs inside the caller's tenant
 * transaction, before anything is written or sent:
 *   - no such terminal (or another tenant's, or deleted) → 404 NOT_FOUND;
 *   - terminal DISABLED → 409 TERMINAL_DISABLED, its bridging agent REVOKED → 409 AGENT_REVOKED (`terminalRefusalOf`,
 *     libs/operations: the rule the settlement worker applies to a close-day queued before either happened);
 *   - an operation of the terminal still UNKNOWN (`recoveringOperationOf`) → 409 TERMINAL_RECOVERING with Retry-After
 *     and `details.operationId`, until recovery or a manual resolution (POST /v1/operations/{id}/resolve) decides it:
 *     Joinproto 95, SSI GetLastResult and the JPAY card log know only the terminal's *last* transaction, so a new one
 *     would destroy the evidence of the unknown one. An operation SENT / IN_PROGRESS does not refuse new work here:
 *     it is normally its executor's live command, and the new one queues behind it. The safety is the executor's claim,
 *     which refuses atomically while any other operation of the terminal is in doubt (SENT / IN_PROGRESS / UNKNOWN,
 *     e.g. a row left SENT by an executor that is gone) and fails the new one TERMINAL_RECOVERING, never sent.
 * Reads (GET operations, history, lists, receipts) and stopping work already running (cancel, resolve)
 * do not pass through here and keep working.
 */
type AgentStatus = 'PENDING_ENROLLMENT' | 'ACTIVE' | 'REVOKED';

export interface OperableTerminal {
  id: string;
  storeId: string;
  agentId: string | null;
  protocol: 'JOINPROTO' | 'JPAY' | 'SSI_ECR';
  dialect: string | null;
  status: string;
  agent: { id: string; status: AgentStatus } | null;
  store: { timeZone: string };
}

/** The gate's read: terminal, agent, store and the oldest UNKNOWN operation, in one statement (the operation hot path). */
export async function requireOperableTerminal(tx: SqlClient, terminalId: string): Promise<OperableTerminal> {
  const [row] = await tx.$queryRaw<
    (Omit<OperableTerminal, 'agent' | 'store'> & { agentStatus: AgentStatus | null; timeZone: string; inDoubt: OperationInDoubt | null })[]
  >`
    SELECT t."id", t."storeId", t."agentId", t."protocol"::text AS "protocol", t."dialect", t."status"::text AS "status",
      a."status"::text AS "agentStatus", s."timeZone",
      ${recoveringOperationOf(Prisma.raw('t."id"'))} AS "inDoubt"
    FROM "Terminal" t JOIN "Store" s ON s."id" = t."storeId" LEFT JOIN "Agent" a ON a."id" = t."agentId"
    WHERE t."id" = ${terminalId}::uuid`;
  if (!row) throw notFound('terminal', terminalId);
  const { agentStatus, timeZone, inDoubt, ...fields } = row;
  const terminal: OperableTerminal = {
    ...fields,
    agent: fields.agentId !== null && agentStatus !== null ? { id: fields.agentId, status: agentStatus } : null,
    store: { timeZone },
  };
  const refusal = terminalRefusalOf({ status: terminal.status, agentStatus });
  if (refusal === 'TERMINAL_DISABLED') {
    throw new ApiError(
      'TERMINAL_DISABLED',
      `terminal ${terminalId} is disabled; enable it (PATCH /v1/terminals/${terminalId} {"disabled": false}) to start new work on it`,
      {
        terminalId,
      },
    );
  }
  if (refusal === 'AGENT_REVOKED') {
    throw new ApiError(
      'AGENT_REVOKED',
      `terminal ${terminalId} is bridged by agent ${terminal.agentId}, which is revoked; move the terminal to an active agent to start new work on it`,
      {
        terminalId,
        agentId: terminal.agentId,
      },
    );
  }
  if (inDoubt !== null) {
    throw new ApiError(
      'TERMINAL_RECOVERING',
      `terminal ${terminalId} is recovering operation ${inDoubt.id}, whose outcome is unknown; new work waits until recovery or a manual resolution (POST /v1/operations/${inDoubt.id}/resolve) ends it`,
      { terminalId, operationId: inDoubt.id, state: toApiState(inDoubt.state), retryAfterSeconds: RECOVERING_RETRY_AFTER_SECONDS },
    );
  }
  return terminal;
}

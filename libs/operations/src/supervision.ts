import type { PublishedEvent, TransactionClient } from '@payorch/db';

import { type OperationRow, recordStep } from './records';
import { canTransition, type OperationStateName } from './state-machine';

/** States a human may mark an UNKNOWN operation as (what the terminal / the bank says happened). */
export type ManualResolution = 'APPROVED' | 'DECLINED' | 'FAILED';

export interface SupervisionResult {
  row: OperationRow;
  /** The domain event written (publish it after commit), or undefined when nothing changed. */
  event: PublishedEvent | undefined;
  changed: boolean;
}

/**
 * SENT / IN_PROGRESS → UNKNOWN for an operation whose executor stopped reporting (connector crash, a lost
 * reply): a conditional update that only applies while the row is still SENT/IN_PROGRESS and unchanged
 * since `olderThan`, so a live executor that just reported progress or an outcome wins. Runs in the
 * caller's tenant transaction; the recovery job then asks the terminal for the true outcome.
 */
export function markStuckUnknown(
  tx: TransactionClient,
  operationId: string,
  olderThan: Date,
  reason: string,
  by: 'recovery_sweep' | 'agent_reconnect' = 'recovery_sweep',
): Promise<SupervisionResult> {
  const from = (['SENT', 'IN_PROGRESS'] as const).filter((s) => canTransition(s, 'UNKNOWN'));
  return transitionIfUnchanged(tx, operationId, olderThan, from, 'UNKNOWN', { state: 'UNKNOWN', stateReason: reason, subStatus: null }, { reason, by }, 'operation.unknown');
}

/**
 * PENDING → FAILED for an operation no executor ever claimed (its gateway died, or its bus message was
 * lost with a connector). Safe because the executor writes PENDING → SENT, once and in its own committed
 * transaction, before the driver is handed the command: a row still PENDING proves that nothing was sent.
 * Conditional on PENDING and unchanged since `olderThan` (a PENDING row is written once, when created), so
 * a claim that wins the race runs normally and a late claim after this finds no PENDING row and sends nothing.
 */
export function failNeverSent(
  tx: TransactionClient,
  operationId: string,
  olderThan: Date,
  reason: string,
  by: 'recovery_sweep' | 'agent_reconnect' = 'recovery_sweep',
): Promise<SupervisionResult> {
  if (!canTransition('PENDING', 'FAILED')) throw new Error('PENDING → FAILED is not a transition');
  const data = { state: 'FAILED' as const, stateReason: reason, error: { code: 'NEVER_SENT', reason } as never, completedAt: new Date() };
  return transitionIfUnchanged(tx, operationId, olderThan, ['PENDING'], 'FAILED', data, { reason, by }, 'operation.completed');
}

/**
 * The supervisors' one write: `from` → `to` as a conditional update that only applies while the row is
 * still in one of `from` and unchanged since `olderThan` (a live executor that just wrote wins), plus its
 * OperationEvent and domain event in the caller's transaction.
 */
async function transitionIfUnchanged(
  tx: TransactionClient,
  operationId: string,
  olderThan: Date,
  from: readonly OperationStateName[],
  to: OperationStateName,
  data: Record<string, unknown>,
  eventData: Record<string, unknown>,
  event: 'operation.unknown' | 'operation.completed',
): Promise<SupervisionResult> {
  const before = (await tx.terminalOperation.findUnique({ where: { id: operationId } })) as OperationRow | null;
  if (before === null) throw new Error(`operation ${operationId} not found`);
  const { count } = await tx.terminalOperation.updateMany({
    where: { id: operationId, state: { in: [...from] as never }, updatedAt: { lt: olderThan } },
    data: data as never,
  });
  if (count === 0) return { row: before, event: undefined, changed: false };
  const row = (await tx.terminalOperation.findUniqueOrThrow({ where: { id: operationId } })) as OperationRow;
  const published = await recordStep(tx, row, { kind: 'transition', from: before.state, to, data: eventData, event });
  return { row, event: published, changed: true };
}

/**
 * A human's verdict on an UNKNOWN operation (after checking the terminal's journal or the bank): UNKNOWN
 * → approved / declined / failed, only from UNKNOWN (a conditional update, so a concurrent automatic
 * recovery and a human cannot both decide). The protocol columns are kept; the note is logged in the
 * OperationEvent and the domain event (`operation.recovered` with `resolvedBy: 'human'`).
 */
export async function resolveManually(
  tx: TransactionClient,
  operationId: string,
  verdict: { state: ManualResolution; note: string; actor: { type: string; id: string | null } },
): Promise<SupervisionResult> {
  const to: OperationStateName = verdict.state;
  if (!canTransition('UNKNOWN', to)) throw new Error(`UNKNOWN → ${to} is not a transition`);
  const before = (await tx.terminalOperation.findUnique({ where: { id: operationId } })) as OperationRow | null;
  if (before === null) throw new Error(`operation ${operationId} not found`);
  const reason = `resolved manually: ${verdict.note}`;
  const { count } = await tx.terminalOperation.updateMany({
    where: { id: operationId, state: 'UNKNOWN' },
    data: { state: to, stateReason: reason, completedAt: new Date() },
  });
  if (count === 0) return { row: before, event: undefined, changed: false };
  const row = (await tx.terminalOperation.findUniqueOrThrow({ where: { id: operationId } })) as OperationRow;
  const event = await recordStep(tx, row, {
    kind: 'resolved_manually',
    from: 'UNKNOWN',
    to,
    data: { reason, resolvedBy: 'human', actorType: verdict.actor.type, actorId: verdict.actor.id },
    event: 'operation.recovered',
  });
  return { row, event, changed: true };
}

/**
 * Recovery gave up: records once (OperationEvent `recovery_exhausted`, stateReason) that the UNKNOWN
 * operation now needs a human. The row stays UNKNOWN; the recoverable scan no longer returns it.
 */
export async function flagForHuman(tx: TransactionClient, operationId: string, attempts: number): Promise<SupervisionResult> {
  const reason = `recovery gave up after ${attempts} attempts; resolve manually (POST /v1/operations/${operationId}/resolve)`;
  const before = (await tx.terminalOperation.findUnique({ where: { id: operationId } })) as OperationRow | null;
  if (before === null) throw new Error(`operation ${operationId} not found`);
  const { count } = await tx.terminalOperation.updateMany({
    where: { id: operationId, state: 'UNKNOWN', OR: [{ stateReason: null }, { stateReason: { not: reason } }] },
    data: { stateReason: reason },
  });
  if (count === 0) return { row: before, event: undefined, changed: false };
  const row = (await tx.terminalOperation.findUniqueOrThrow({ where: { id: operationId } })) as OperationRow;
  const event = await recordStep(tx, row, {
    kind: 'recovery_exhausted',
    from: 'UNKNOWN',
    to: 'UNKNOWN',
    data: { reason, attempts, needsHuman: true },
    event: 'operation.unknown',
  });
  return { row, event, changed: true };
}

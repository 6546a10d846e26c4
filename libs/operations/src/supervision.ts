import type { PublishedEvent, TransactionClient } from '@payorch/db';

import type { OperationRow } from './records';
import type { OperationStateName } from './state-machine';
import { type TransitionResult, transitionOperation } from './transition';

/** States a human may mark an UNKNOWN operation as (what the terminal / the bank says happened). */
export type ManualResolution = 'APPROVED' | 'DECLINED' | 'FAILED';

export interface SupervisionResult {
  /** The row as written, or as it stands when nothing changed. */
  row: OperationRow;
  /** The domain event written (publish it after commit), or undefined when nothing changed. */
  event: PublishedEvent | undefined;
  changed: boolean;
}

/** The write's result; when it did not apply, the row as it stands (a missing operation is an error). */
async function result(tx: TransactionClient, operationId: string, written: TransitionResult | null): Promise<SupervisionResult> {
  if (written !== null) return { row: written.row, event: written.event, changed: true };
  const row = (await tx.terminalOperation.findUnique({ where: { id: operationId } })) as OperationRow | null;
  if (row === null) throw new Error(`operation ${operationId} not found`);
  return { row, event: undefined, changed: false };
}

/**
 * SENT / IN_PROGRESS → UNKNOWN for an operation whose executor stopped reporting (connector crash, a lost
 * reply): applies only while the row is still SENT/IN_PROGRESS and unchanged since `olderThan`, so a live
 * executor that just reported progress or an outcome wins. Runs in the caller's tenant transaction; the
 * recovery job then asks the terminal for the true outcome.
 */
export async function markStuckUnknown(
  tx: TransactionClient,
  operationId: string,
  olderThan: Date,
  reason: string,
  by: 'recovery_sweep' | 'agent_reconnect' | 'runner' = 'recovery_sweep',
): Promise<SupervisionResult> {
  return result(
    tx,
    operationId,
    await transitionOperation(tx, {
      operationId,
      from: ['SENT', 'IN_PROGRESS'],
      to: 'UNKNOWN',
      set: { stateReason: reason, subStatus: null },
      unchangedSince: olderThan,
      step: { kind: 'transition', data: { reason, by }, event: 'operation.unknown' },
    }),
  );
}

/**
 * PENDING → FAILED for an operation no executor ever claimed (its gateway died, or its bus message was
 * lost with a connector). Safe because the executor writes PENDING → SENT, once and in its own committed
 * transaction, before the driver is handed the command: a row still PENDING proves that nothing was sent.
 * Applies only while PENDING and unchanged since `olderThan`, so a claim that wins the race runs normally
 * and a late claim after this finds no PENDING row and sends nothing.
 */
export async function failNeverSent(
  tx: TransactionClient,
  operationId: string,
  olderThan: Date,
  reason: string,
  by: 'recovery_sweep' | 'agent_reconnect' = 'recovery_sweep',
): Promise<SupervisionResult> {
  return result(
    tx,
    operationId,
    await transitionOperation(tx, {
      operationId,
      from: ['PENDING'],
      to: 'FAILED',
      set: { stateReason: reason, error: { code: 'NEVER_SENT', reason }, completedAt: new Date() },
      unchangedSince: olderThan,
      step: { kind: 'transition', data: { reason, by }, event: 'operation.completed' },
    }),
  );
}

/**
 * A queued operation's lease: touches `updatedAt` of a row that is still PENDING (no state change, no event),
 * so the sweep's "PENDING unchanged for RECOVERY_PENDING_AFTER_MS → never sent" spares an operation that waits
 * in a live connector's queue. Returns false once the row is no longer PENDING.
 */
export async function holdPending(tx: TransactionClient, operationId: string): Promise<boolean> {
  const count = await tx.$executeRaw`UPDATE "TerminalOperation" SET "updatedAt" = now() WHERE "id" = ${operationId}::uuid AND "state" = 'PENDING'`;
  return count > 0;
}

/**
 * A human's verdict on an UNKNOWN operation (after checking the terminal's journal or the bank): UNKNOWN
 * → approved / declined / failed, only from UNKNOWN (a compare-and-set, so a concurrent automatic
 * recovery and a human cannot both decide). The protocol columns are kept; the note is logged in the
 * OperationEvent and the domain event (`operation.recovered` with `resolvedBy: 'human'`).
 */
export async function resolveManually(
  tx: TransactionClient,
  operationId: string,
  verdict: {
    state: ManualResolution;
    note: string;
    actor: { type: string; id: string | null };
    /** What the terminal journal / the bank shows; stored in the operation's columns when given. */
    rrn?: string;
    approvalCode?: string;
  },
): Promise<SupervisionResult> {
  const to: OperationStateName = verdict.state;
  const reason = `resolved manually: ${verdict.note}`;
  const evidence = {
    ...(verdict.rrn !== undefined && { rrn: verdict.rrn }),
    ...(verdict.approvalCode !== undefined && { approvalCode: verdict.approvalCode }),
  };
  return result(
    tx,
    operationId,
    await transitionOperation(tx, {
      operationId,
      from: ['UNKNOWN'],
      to,
      set: { stateReason: reason, completedAt: new Date(), ...evidence },
      step: {
        kind: 'resolved_manually',
        data: { reason, note: verdict.note, ...evidence, resolvedBy: 'human', actorType: verdict.actor.type, actorId: verdict.actor.id },
        event: 'operation.recovered',
      },
    }),
  );
}

/** How the reason of an operation flagged for a human starts. */
export const RECOVERY_GAVE_UP = 'recovery gave up';

/**
 * Recovery gave up: records once (OperationEvent `recovery_exhausted`, stateReason) that the UNKNOWN
 * operation now needs a human. The row stays UNKNOWN; the recoverable scan no longer returns it.
 */
export async function flagForHuman(tx: TransactionClient, operationId: string, attempts: number): Promise<SupervisionResult> {
  const reason = `${RECOVERY_GAVE_UP} after ${attempts} attempts; resolve manually (POST /v1/operations/${operationId}/resolve)`;
  return result(
    tx,
    operationId,
    await transitionOperation(tx, {
      operationId,
      from: ['UNKNOWN'],
      to: 'UNKNOWN',
      set: { stateReason: reason },
      // Once per operation, also when two flaggers with different attempt counts race (a sweep and a recover job).
      unlessFlagged: { reasonPrefix: RECOVERY_GAVE_UP, step: 'recovery_exhausted' },
      step: { kind: 'recovery_exhausted', data: { reason, attempts, needsHuman: true }, event: 'operation.unknown' },
    }),
  );
}

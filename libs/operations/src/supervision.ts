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

/** Why an operation sent to another device than the terminal's current one is not recovered automatically. */
export const ANOTHER_DEVICE =
  "the terminal's connection changed after this operation was sent (another agent, address, port or dialect): the device it reaches now cannot tell this operation's outcome; check the original device's journal or the bank and resolve it manually";

/**
 * Why recovery leaves an UNKNOWN operation to a person (the `cause` of its `recovery_exhausted` step and event):
 *  - `attempts_spent`: its recovery budget (RECOVERY_MAX_ATTEMPTS) is spent; the recoverable scan no longer returns it;
 *  - `another_device`: the terminal now reaches another device than the one the command went to (ANOTHER_DEVICE), so
 *    no attempt can decide it until the terminal is pointed back. Flagged at its first such attempt; recovery keeps
 *    asking at its normal pace all the same (pointed back, a later attempt decides it), until its budget is spent.
 * The settlement worker's `payorch_unknown_outcomes_needing_human` counts both (payorch_unknown_outcome_counts).
 */
export type NeedsHumanCause = 'attempts_spent' | 'another_device';

/**
 * Recovery cannot decide the operation by itself: records once (OperationEvent `recovery_exhausted`, stateReason, an
 * `operation.unknown` event with `needsHuman: true` and the `cause`) that the UNKNOWN operation now needs a human. The
 * row stays UNKNOWN. Once per operation whatever the cause: an operation flagged for another device is not flagged
 * again when its budget runs out later.
 *
 * Once, also when flaggers race: the row is locked first, in a statement of its own, so the compare-and-set that
 * follows (its snapshot taken once the lock was granted) sees the step of whoever held the row before. Blocked inside
 * the compare-and-set itself, a flagger would re-check only the row (its reason starting with RECOVERY_GAVE_UP), not the
 * steps: that misses an `another_device` flag, whose reason is ANOTHER_DEVICE, written by a recovery attempt's
 * transaction that holds the row while the sweep flags a spent budget.
 */
export async function flagForHuman(
  tx: TransactionClient,
  operationId: string,
  attempts: number,
  cause: NeedsHumanCause = 'attempts_spent',
): Promise<SupervisionResult> {
  const reason =
    cause === 'attempts_spent'
      ? `${RECOVERY_GAVE_UP} after ${attempts} attempts; resolve manually (POST /v1/operations/${operationId}/resolve)`
      : ANOTHER_DEVICE;
  await tx.$queryRaw`SELECT 1 FROM "TerminalOperation" WHERE "id" = ${operationId}::uuid FOR NO KEY UPDATE`;
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
      step: { kind: 'recovery_exhausted', data: { reason, attempts, cause, needsHuman: true }, event: 'operation.unknown' },
    }),
  );
}

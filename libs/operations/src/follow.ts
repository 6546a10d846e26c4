import type { Database } from '@payorch/db';
import type { OperationCommandCopy, TerminalCommandDispatcher, TerminalCommandReply } from '@payorch/domain';

import { operationById, type OperationRow } from './records';
import type { OperationStateName } from './state-machine';

/** States in which an operation's run may still be going on (queued, claimed, on the terminal). */
export const RUNNING_STATES: ReadonlySet<string> = new Set<OperationStateName>(['PENDING', 'SENT', 'IN_PROGRESS']);

/**
 * A PENDING operation unchanged for this long is held by no connector: one waiting in a terminal's queue is
 * touched every PENDING_HOLD_INTERVAL_MS (10 s by default, `holdPending`), so half an interval more is past
 * any live hold. Below the recovery sweep's RECOVERY_PENDING_AFTER_MS (30 s), which fails such a row as
 * never sent.
 */
export const UNHELD_PENDING_MS = 15_000;

/**
 * Whether a PENDING operation is held by nobody (its dispatcher died before the connector queued it, or the
 * connector holding it died), so that dispatching it again cannot meet a live copy in a terminal's queue. A
 * held one must not be dispatched again: a second `operation.execute` could be refused TERMINAL_BUSY, and
 * failing the row then would overrule the queued copy. `now` is the wall clock (Date.now()), as `updatedAt`
 * is written by PostgreSQL's.
 */
export function isUnheldPending(row: { state: string; updatedAt: Date }, now: number = Date.now()): boolean {
  return row.state === 'PENDING' && now - row.updatedAt.getTime() > UNHELD_PENDING_MS;
}

export interface FollowOptions {
  /** Longest wait for the run to end (a purchase may wait minutes for a card). Default 300 s. */
  deadlineMs?: number;
  /** First re-read of the row; doubles up to maxIntervalMs. Defaults 50 ms and 1 s. */
  intervalMs?: number;
  maxIntervalMs?: number;
}

export type FollowResult =
  /** The connector did not take it (offline, busy, no answer in time): nothing ran, the row is still PENDING. */
  | { kind: 'not_queued'; reply: Extract<TerminalCommandReply, { ok: false }> }
  /** The run is over: the row's state (final, or UNKNOWN and left to recovery). */
  | { kind: 'over'; state: OperationStateName }
  /** Still running at the deadline. */
  | { kind: 'running'; state: OperationStateName };

/**
 * Runs a PENDING operation on its terminal and waits for the run to end, for callers that need its outcome
 * before going on (a settlement's close-day, a campaign step). The connector answers `operation.execute`
 * as soon as the operation is queued (`replyWhen: 'queued'`); the outcome is then read from the operation's
 * row, PostgreSQL being the truth. Nothing waits on the bus for the terminal, so a connector that dies
 * mid-run costs no 300 s bus deadline: the instance the agent reconnects to recovers the operation and the
 * row ends the wait.
 */
export async function executeAndFollow(
  dispatcher: TerminalCommandDispatcher,
  db: Database,
  ref: { tenantId: string; terminalId: string; operationId: string; command?: OperationCommandCopy },
  options: FollowOptions = {},
): Promise<FollowResult> {
  const reply = await dispatcher.dispatch({ kind: 'operation.execute', ...ref, replyWhen: 'queued' });
  if (!reply.ok) return { kind: 'not_queued', reply };
  const { kind, state } = await followOperation(db, ref, options);
  return { kind, state };
}

/**
 * Reads an operation's row (re-reading after `intervalMs`, doubling up to `maxIntervalMs`) until its run is
 * over or `deadlineMs` passed: the second half of executeAndFollow, for a caller that dispatched earlier or
 * needs the whole row at the end (a campaign step). A missing row counts as FAILED (`row` null).
 */
export async function followOperation(
  db: Database,
  ref: { tenantId: string; operationId: string },
  options: FollowOptions = {},
): Promise<{ kind: 'over' | 'running'; state: OperationStateName; row: OperationRow | null }> {
  const deadline = Date.now() + (options.deadlineMs ?? 300_000);
  let interval = options.intervalMs ?? 50;
  for (;;) {
    const [row = null] = await db.querySql<OperationRow>(ref.tenantId, operationById(ref.operationId));
    const state = row?.state ?? 'FAILED';
    if (!RUNNING_STATES.has(state)) return { kind: 'over', state, row };
    if (Date.now() >= deadline) return { kind: 'running', state, row };
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))));
    interval = Math.min(interval * 2, options.maxIntervalMs ?? 1000);
  }
}

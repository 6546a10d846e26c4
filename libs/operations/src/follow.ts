import type { Database } from '@payorch/db';
import type { TerminalCommandDispatcher, TerminalCommandReply } from '@payorch/domain';

import type { OperationStateName } from './state-machine';

/** States in which an operation's run may still be going on (queued, claimed, on the terminal). */
export const RUNNING_STATES: ReadonlySet<string> = new Set<OperationStateName>(['PENDING', 'SENT', 'IN_PROGRESS']);

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
  ref: { tenantId: string; terminalId: string; operationId: string },
  options: FollowOptions = {},
): Promise<FollowResult> {
  const reply = await dispatcher.dispatch({ kind: 'operation.execute', ...ref, replyWhen: 'queued' });
  if (!reply.ok) return { kind: 'not_queued', reply };
  const deadline = Date.now() + (options.deadlineMs ?? 300_000);
  let interval = options.intervalMs ?? 50;
  for (;;) {
    const row = await db.withTenant(ref.tenantId, (tx) => tx.terminalOperation.findUnique({ where: { id: ref.operationId }, select: { state: true } }));
    const state = (row?.state ?? 'FAILED') as OperationStateName;
    if (!RUNNING_STATES.has(state)) return { kind: 'over', state };
    if (Date.now() >= deadline) return { kind: 'running', state };
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))));
    interval = Math.min(interval * 2, options.maxIntervalMs ?? 1000);
  }
}

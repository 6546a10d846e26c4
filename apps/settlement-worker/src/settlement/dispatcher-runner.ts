import type { Database } from '@payorch/db';
import type { TerminalCommandDispatcher, TerminalCommandReply } from '@payorch/domain';
import { executeAndFollow } from '@payorch/operations';

import { RunnerUnavailable, type SettlementOperationRef, type SettlementRunner } from './settlement-runner';

/** The command of every settlement's operation (`commandCopyOf` of its row), sent with its `operation.execute`. */
export const CLOSE_DAY = { type: 'settlement' } as const;

/** Longest a close-day may run on its terminal before the settlement is retried (the row stays the truth). */
const CLOSE_DAY_DEADLINE_MS = 300_000;

/**
 * Production runner: the settlement is an operation like any other, executed by the connector
 * instance that holds the terminal's agent (one command at a time per terminal). The connector answers
 * once the close-day is queued; its outcome is read from the operation's row (executeAndFollow), so a
 * connector that dies mid close-day does not hold the settlement for the bus's 300 s deadline: the
 * instance its agent reconnects to recovers the operation, and the settlement goes on at once.
 */
export class DispatcherSettlementRunner implements SettlementRunner {
  constructor(
    private readonly dispatcher: TerminalCommandDispatcher,
    private readonly db: Database,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  close(): Promise<void> {
    return this.onClose();
  }

  async execute(ref: SettlementOperationRef): Promise<void> {
    // With its command (a close-day has no amount): the connector's executor checks it at its claim instead of reading the row first.
    const result = await executeAndFollow(this.dispatcher, this.db, { ...ref, command: CLOSE_DAY }, { deadlineMs: CLOSE_DAY_DEADLINE_MS });
    if (result.kind === 'not_queued') check(result.reply);
    else if (result.kind === 'running')
      throw new RunnerUnavailable('TIMEOUT', `the close-day is still ${result.state.toLowerCase()} after ${CLOSE_DAY_DEADLINE_MS} ms`);
  }

  async recover(ref: SettlementOperationRef): Promise<void> {
    check(await this.dispatcher.dispatch({ kind: 'operation.recover', ...ref }));
  }
}

function check(reply: TerminalCommandReply): void {
  if (reply.ok) return;
  switch (reply.code) {
    case 'TERMINAL_OFFLINE':
    case 'TERMINAL_BUSY':
    case 'TIMEOUT':
      throw new RunnerUnavailable(reply.code, reply.message);
    case 'TOO_LATE':
    case 'NOT_FOUND':
    case 'INTERNAL':
      // The row's state decides what happens next (the settlement service reads it after this call).
      return;
  }
}

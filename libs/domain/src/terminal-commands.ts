/**
 * Messages of the command bus (gateway / worker → the connector instance that holds a terminal's agent).
 * Payloads carry ids, and at most a copy of what their sender just wrote (`OperationCommandCopy`) which the connector
 * checks against PostgreSQL before it acts on it: PostgreSQL stays the truth.
 */
export type TerminalCommand =
  | {
      kind: 'operation.execute';
      tenantId: string;
      terminalId: string;
      operationId: string;
      /**
       * When the connector replies. `done` (default): once the operation has run (or could not start), so
       * the caller holds the command for as long as the terminal takes (minutes for a card). `queued`: as soon
       * as the operation sits in the terminal's queue on the connector, which from then on owns it (it keeps
       * the PENDING row held, runs it exactly once, and publishes its outcome as events); the caller follows
       * the outcome through the operation's events or its row, and nothing stays on the bus or in the
       * caller's memory for the operation's duration. The gateway uses `queued`.
       */
      replyWhen?: 'done' | 'queued';
      /**
       * The operation's command as its creator just inserted it, so that the executor need not read the row before it
       * opens the terminal's session (issue 19: one transaction fewer on a payment's critical path). Only for
       * operations without an original (a refund or void reads its original's references). Never trusted: the
       * executor's claim returns the stored row, and a command that differs from it is not sent (the operation is
       * failed as never sent). Absent: the executor reads the row first, as before.
       */
      command?: OperationCommandCopy;
    }
  | { kind: 'operation.cancel'; tenantId: string; terminalId: string; operationId: string }
  | { kind: 'operation.recover'; tenantId: string; terminalId: string; operationId: string }
  | { kind: 'terminal.refresh_info'; tenantId: string; terminalId: string };

/** What an `operation.execute` may carry of the operation it runs (amounts in minor units). */
export interface OperationCommandCopy {
  /** The API's operation type (`purchase`, …). */
  type: string;
  amount?: number;
  cashbackAmount?: number;
  /** ISO 4217 alphabetic. */
  currency?: string;
}

export type TerminalCommandReply =
  | { ok: true; result?: unknown }
  | { ok: false; code: 'TERMINAL_OFFLINE' | 'TERMINAL_BUSY' | 'NOT_FOUND' | 'TOO_LATE' | 'TIMEOUT' | 'INTERNAL'; message: string };

export interface DispatchOptions {
  /** Reply deadline instead of the dispatcher's default for the command kind. */
  timeoutMs?: number;
  /**
   * The terminal's agent as the caller just read it under the command's tenant (row-level security), e.g. in
   * the transaction that created the operation: the dispatcher then skips its own lookup (one transaction
   * fewer per payment). null = the terminal has no agent. The connector checks tenant and terminal again.
   */
  agentId?: string | null;
}

/**
 * Delivers a TerminalCommand to whoever holds the terminal and returns its reply; for `operation.execute`
 * the reply comes when the operation has finished (or could not start), or with `replyWhen: 'queued'` once
 * the connector has queued it. Production: the Redis command
 * bus (@payorch/command-bus RedisTerminalCommandDispatcher); in-process ones in tests.
 */
export interface TerminalCommandDispatcher {
  dispatch(command: TerminalCommand, options?: DispatchOptions): Promise<TerminalCommandReply>;
  /** false while the bus cannot take a command at all (Redis down): new work is refused with 503 instead of accepted and failed. */
  isAvailable?(): boolean;
}

/**
 * Messages of the command bus (gateway / worker → the connector instance that holds a terminal's agent).
 * Payloads carry ids only; the connector loads everything else from PostgreSQL under the tenant.
 */
export type TerminalCommand =
  | { kind: 'operation.execute'; tenantId: string; terminalId: string; operationId: string }
  | { kind: 'operation.cancel'; tenantId: string; terminalId: string; operationId: string }
  | { kind: 'operation.recover'; tenantId: string; terminalId: string; operationId: string }
  | { kind: 'terminal.refresh_info'; tenantId: string; terminalId: string };

export type TerminalCommandReply =
  | { ok: true; result?: unknown }
  | { ok: false; code: 'TERMINAL_OFFLINE' | 'TERMINAL_BUSY' | 'NOT_FOUND' | 'TOO_LATE' | 'TIMEOUT' | 'INTERNAL'; message: string };

/**
 * Delivers a TerminalCommand to whoever holds the terminal and returns its reply; for `operation.execute`
 * the reply comes when the operation has finished (or could not start). Production: the Redis command
 * bus (@payorch/command-bus RedisTerminalCommandDispatcher); in-process ones in tests.
 */
export interface TerminalCommandDispatcher {
  dispatch(command: TerminalCommand): Promise<TerminalCommandReply>;
  /** false while the bus cannot take a command at all (Redis down): new work is refused with 503 instead of accepted and failed. */
  isAvailable?(): boolean;
}

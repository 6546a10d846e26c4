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

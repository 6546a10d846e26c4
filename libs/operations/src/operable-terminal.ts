/**
 * Why a terminal takes no new work, or null: the one rule of every path that starts work on a terminal — the gateway's
 * gate (`requireOperableTerminal`: any operation, a manual close-day) and a settlement's close-day in the worker (a
 * settlement queued before the terminal was disabled ends instead of waiting for it; docs/settlements.md). A missing
 * terminal is each caller's own answer (404, or a job with nothing to run). `PATCH /v1/terminals/{id}
 * {"disabled": false}`, or moving the terminal to an active agent, lifts it.
 */
export type TerminalRefusal = 'TERMINAL_DISABLED' | 'AGENT_REVOKED';

/** A terminal's status and its bridging agent's (null: no agent). */
export interface TerminalStatuses {
  status: string;
  agentStatus: string | null;
}

export function terminalRefusalOf(terminal: TerminalStatuses): TerminalRefusal | null {
  if (terminal.status === 'DISABLED') return 'TERMINAL_DISABLED';
  if (terminal.agentStatus === 'REVOKED') return 'AGENT_REVOKED';
  return null;
}

import { assertUnreachable, isUuid } from '@payorch/domain';
import { eventMessageObject } from '@payorch/operations';

import type { TerminalRow } from '../terminals/terminal-link';

/**
 * The decisions of live revocation (docs/tunnel.md §12.4), free of I/O: whether a held tunnel's
 * credential still holds, which agents a live event asks to re-check, and how the held terminals
 * must change to match PostgreSQL.
 */

/** Why a held tunnel is cut with AGENT_REVOKED. */
export type RevocationReason = 'revoked' | 'deleted' | 'credential_replaced' | 'tenant_disabled';

/** The agent's row as PostgreSQL has it now. */
export interface AgentAccessRow {
  credentialPrefix: string | null;
  status: 'PENDING_ENROLLMENT' | 'ACTIVE' | 'REVOKED';
  /** The owning tenant's status: a DISABLED tenant's agents authenticate nothing. */
  tenant?: { status: 'ACTIVE' | 'DISABLED' };
}

/** null = the credential the tunnel authenticated with (`heldPrefix`) is still the agent's active one. */
export function revocationReason(row: AgentAccessRow | null, heldPrefix: string): RevocationReason | null {
  if (row === null) return 'deleted';
  if (row.tenant?.status === 'DISABLED') return 'tenant_disabled';
  switch (row.status) {
    case 'REVOKED':
    case 'PENDING_ENROLLMENT':
      return 'revoked';
    case 'ACTIVE':
      return row.credentialPrefix === heldPrefix ? null : 'credential_replaced';
    default:
      return assertUnreachable(row.status);
  }
}

/** Live events naming an agent whose credential may have changed (subjectId = agent id). */
export const AGENT_EVENTS: ReadonlySet<string> = new Set(['agent.deleted', 'agent.enrolled', 'agent.revoked']);
/** Live events about the whole tenant: every agent of it held here is re-checked. */
export const TENANT_EVENTS: ReadonlySet<string> = new Set(['tenant.disabled', 'tenant.enabled']);
/** Live events naming a terminal whose agent must re-read it (`data.agentId`, `data.previousAgentId`). */
export const TERMINAL_EVENTS: ReadonlySet<string> = new Set(['terminal.created', 'terminal.deleted', 'terminal.updated']);

/**
 * The agents a message on `${prefix}:access:<tenantId>` (ACCESS_EVENT_TYPES) asks to re-check, or null. A message only
 * ever triggers a re-check against PostgreSQL; it never revokes anything by itself, so a lost,
 * repeated or forged message cannot do more than cost one query.
 */
export function agentsToRecheck(channel: string, message: string): { tenantId: string; agentIds: string[]; wholeTenant?: true } | null {
  const tenantId = channel.slice(channel.lastIndexOf(':') + 1);
  if (!isUuid(tenantId)) return null;
  const event = eventMessageObject(message);
  if (event === null || event.tenantId !== tenantId || typeof event.type !== 'string') return null;
  if (TENANT_EVENTS.has(event.type)) return { tenantId, agentIds: [], wholeTenant: true };
  const data = (event.data !== null && typeof event.data === 'object' ? event.data : {}) as Record<string, unknown>;
  const named = AGENT_EVENTS.has(event.type) ? [event.subjectId] : TERMINAL_EVENTS.has(event.type) ? [data.agentId, data.previousAgentId] : [];
  const agentIds = [...new Set(named.filter((id): id is string => typeof id === 'string' && isUuid(id)))];
  return agentIds.length > 0 ? { tenantId, agentIds } : null;
}

/** The columns a terminal's driver and link are built from; a change to any of them rebuilds its handle. */
const DRIVER_FIELDS = ['connection', 'credentialsEncrypted', 'department', 'dialect', 'encryptionEnabled', 'merchantId', 'protocol', 'terminalId'] as const;

export function sameDriverConfig(a: TerminalRow, b: TerminalRow): boolean {
  return DRIVER_FIELDS.every((field) => JSON.stringify(a[field]) === JSON.stringify(b[field]));
}

export interface TerminalPlan {
  /** Held terminals whose handle must close: no longer the agent's enabled terminal, or changed. */
  close: string[];
  /** Rows that need a new handle: new to the agent, re-enabled, or changed. */
  open: TerminalRow[];
}

/** How the handles `held` (by terminal id) must change to match `wanted`, the agent's enabled terminals now. */
export function planTerminals(held: ReadonlyMap<string, TerminalRow>, wanted: readonly TerminalRow[]): TerminalPlan {
  const wantedById = new Map(wanted.map((row) => [row.id, row]));
  const close = [...held].filter(([id, row]) => !wantedById.has(id) || !sameDriverConfig(row, wantedById.get(id)!)).map(([id]) => id);
  const open = wanted.filter((row) => !held.has(row.id) || !sameDriverConfig(held.get(row.id)!, row));
  return { close, open };
}

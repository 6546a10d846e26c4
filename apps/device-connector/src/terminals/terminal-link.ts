import { createHash } from 'node:crypto';

import { Prisma } from '@payorch/db';
import { canonicalJson } from '@payorch/domain';
import type { LinkDescriptor, TerminalEntry, TerminalProtocol } from '@payorch/tunnel';
import { parseLinkDescriptor } from '@payorch/tunnel';

/** The columns of a Terminal row the connector needs to drive it. */
export interface TerminalRow {
  agentId: string | null;
  connection: unknown;
  credentialsEncrypted: string | null;
  department: string | null;
  dialect: string | null;
  /** JPAY: run commands in §9 secure sessions. */
  encryptionEnabled: boolean;
  id: string;
  merchantId: string | null;
  name: string;
  protocol: 'JOINPROTO' | 'JPAY' | 'SSI_ECR';
  status: 'UNKNOWN' | 'ONLINE' | 'OFFLINE' | 'DISABLED';
  tenantId: string;
  terminalId: string | null;
  /** When Terminal.info was last read from the terminal (null: never). */
  infoReadAt: Date | null;
}

export const TERMINAL_ROW_SELECT = {
  agentId: true,
  connection: true,
  credentialsEncrypted: true,
  department: true,
  dialect: true,
  encryptionEnabled: true,
  id: true,
  merchantId: true,
  name: true,
  protocol: true,
  status: true,
  tenantId: true,
  terminalId: true,
  infoReadAt: true,
} as const;

/** The same columns for raw SQL over `"Terminal" t` (the tunnel set-up and the access re-checks, on the bare driver): enums as text. */
export const TERMINAL_ROW_COLUMNS = Prisma.raw(
  Object.keys(TERMINAL_ROW_SELECT)
    .map((column) => (column === 'protocol' || column === 'status' ? `t."${column}"::text AS "${column}"` : `t."${column}"`))
    .join(', '),
);

const PROTOCOLS: Record<TerminalRow['protocol'], TerminalProtocol> = { JOINPROTO: 'joinproto', JPAY: 'jpay', SSI_ECR: 'ssi-ecr' };

/**
 * Terminal.connection (the gateway's `connectionSchema`: tcp / tcp-listen / serial) → the tunnel's
 * link descriptor. Validated again with the tunnel schema: the row is data, not trusted code.
 * @throws TunnelProtocolError INVALID_LINK for a connection the tunnel cannot carry.
 */
export function linkForConnection(connection: unknown): LinkDescriptor {
  const c = (connection ?? {}) as Record<string, unknown>;
  switch (c.kind) {
    case 'tcp':
      return parseLinkDescriptor({ kind: 'tcp-connect', host: c.host, port: c.port });
    case 'tcp-listen':
      return parseLinkDescriptor({ kind: 'tcp-listen', port: c.port });
    case 'serial':
      return parseLinkDescriptor({
        kind: 'serial',
        path: c.path,
        baudRate: c.baudRate,
        ...(c.dataBits !== undefined && { dataBits: c.dataBits }),
        ...(c.parity !== undefined && { parity: c.parity }),
        ...(c.stopBits !== undefined && { stopBits: c.stopBits }),
      });
    default:
      return parseLinkDescriptor(connection);
  }
}

/** One entry of the `terminal-list` control message, or null when the row's connection is unusable. */
export function terminalEntry(row: TerminalRow): TerminalEntry | null {
  try {
    return { terminalId: row.id, protocol: PROTOCOLS[row.protocol], link: linkForConnection(row.connection), label: row.name.slice(0, 128) };
  } catch {
    return null;
  }
}

/**
 * Which physical device a driver of `row` reaches through the agent `agentId`: a fingerprint of the agent (a serial
 * port or a LAN is the till's), the connection, the protocol and the dialect (DriverConfig.device). Every command
 * records it; recovery asks a driver only about commands sent through the same fingerprint, so a terminal re-pointed
 * at another device (a replacement at a new address, another till's COM port) never reads another device's journal
 * as "this command was not performed".
 */
export function deviceKey(agentId: string, row: Pick<TerminalRow, 'protocol' | 'dialect' | 'connection'>): string {
  const identity = canonicalJson({ agentId, protocol: row.protocol, dialect: row.dialect, connection: row.connection });
  return createHash('sha256').update(identity).digest('base64url').slice(0, 22);
}

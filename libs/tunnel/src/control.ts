import { z } from 'zod';

import { TunnelProtocolError } from './errors';
import { describeIssues, LinkDescriptorSchema, TerminalIdSchema } from './link';

/**
 * CONTROL messages: JSON on stream 0 (docs/tunnel.md, "Control messages").
 * Each message type has a direction; the Multiplexer drops messages its role must not receive.
 */

export type TunnelRole = 'agent' | 'connector';

const TerminalProtocol = z.enum(['joinproto', 'jpay', 'ssi-ecr']);
const LinkState = z.enum(['up', 'down', 'error']);
const reason = z.string().max(512);

const TerminalEntry = z.strictObject({
  terminalId: TerminalIdSchema,
  protocol: TerminalProtocol,
  link: LinkDescriptorSchema,
  label: z.string().max(128).optional(),
});

const LinkStatus = z.strictObject({
  terminalId: TerminalIdSchema,
  state: LinkState,
  detail: reason.optional(),
});

/** connector -> agent: the complete list of terminals this agent serves (replaces the previous one). */
const TerminalListMessage = z.strictObject({
  type: z.literal('terminal-list'),
  terminals: z.array(TerminalEntry).max(1024),
});

/** agent -> connector: periodic or on-demand status of the agent. */
const AgentStatusMessage = z.strictObject({
  type: z.literal('agent-status'),
  software: z.string().min(1).max(64),
  hostname: z.string().max(253).optional(),
  uptimeMs: z.int().min(0),
  links: z.array(LinkStatus).max(1024),
});

/** agent -> connector: one terminal link changed state. */
const LinkStatusMessage = z.strictObject({
  type: z.literal('link-status'),
  terminalId: TerminalIdSchema,
  state: LinkState,
  detail: reason.optional(),
});

/** either way: the sender is going away (e.g. connector draining); reconnect after the delay. */
const GoAwayMessage = z.strictObject({
  type: z.literal('goaway'),
  reason,
  reconnectDelayMs: z.int().min(0).max(3_600_000).optional(),
});

export const ControlMessageSchema = z.discriminatedUnion('type', [TerminalListMessage, AgentStatusMessage, LinkStatusMessage, GoAwayMessage]);

export type ControlMessage = z.infer<typeof ControlMessageSchema>;
export type ControlMessageType = ControlMessage['type'];
export type TerminalEntry = z.infer<typeof TerminalEntry>;
export type LinkStatus = z.infer<typeof LinkStatus>;
export type TerminalProtocol = z.infer<typeof TerminalProtocol>;

/** Which role may receive each control message type. */
const RECEIVERS: Record<ControlMessageType, readonly TunnelRole[]> = {
  'terminal-list': ['agent'],
  'agent-status': ['connector'],
  'link-status': ['connector'],
  goaway: ['agent', 'connector'],
};

export function mayReceiveControl(role: TunnelRole, type: ControlMessageType): boolean {
  return RECEIVERS[type].includes(role);
}

/**
 * Validates an untrusted control message.
 * @throws TunnelProtocolError with code `INVALID_CONTROL`.
 */
export function parseControlMessage(value: unknown): ControlMessage {
  const result = ControlMessageSchema.safeParse(value);
  if (!result.success) {
    throw new TunnelProtocolError('INVALID_CONTROL', describeIssues(result.error), 'drop-frame');
  }
  return result.data;
}

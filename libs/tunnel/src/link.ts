import { z } from 'zod';

import { TunnelProtocolError } from './errors';

/**
 * Link descriptors: what the side receiving OPEN must connect the stream to (docs/tunnel.md,
 * "Link descriptors"). Objects are strict: unknown keys are rejected, so a newer peer cannot slip
 * options past an older one without negotiating a new protocol version.
 */

const host = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9._:-]+$/, 'host must be a DNS name or an IP literal');
const port = z.int().min(1).max(65_535);
const timeoutMs = z.int().min(1).max(120_000);

const TcpConnectLink = z.strictObject({
  kind: z.literal('tcp-connect'),
  host,
  port,
  connectTimeoutMs: timeoutMs.optional(),
});

const TcpListenLink = z.strictObject({
  kind: z.literal('tcp-listen'),
  port,
  /** Bind address on the agent host; all interfaces when absent. */
  host: host.optional(),
});

const SerialLink = z.strictObject({
  kind: z.literal('serial'),
  path: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[^\u0000-\u001f\u007f]+$/, 'path must not contain control characters'),
  baudRate: z.int().min(50).max(4_000_000),
  dataBits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).optional(),
  stopBits: z.union([z.literal(1), z.literal(1.5), z.literal(2)]).optional(),
  parity: z.enum(['none', 'even', 'odd', 'mark', 'space']).optional(),
  rtscts: z.boolean().optional(),
});

/** TCP opened by the agent on behalf of a relay session; the connector checks its allowlist first. */
const RelayTcpLink = z.strictObject({
  kind: z.literal('relay-tcp'),
  host,
  port,
  connectTimeoutMs: timeoutMs.optional(),
});

export const LinkDescriptorSchema = z.discriminatedUnion('kind', [TcpConnectLink, TcpListenLink, SerialLink, RelayTcpLink]);

export type LinkDescriptor = z.infer<typeof LinkDescriptorSchema>;
export type LinkKind = LinkDescriptor['kind'];

export const TerminalIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._:-]+$/, 'terminalId must be 1-64 of [A-Za-z0-9._:-]');

/** Payload of OPEN after the window field. */
export const OpenRequestSchema = z.strictObject({
  link: LinkDescriptorSchema,
  terminalId: TerminalIdSchema.optional(),
});

/** Describes zod issues by path and rule only: values never reach messages (they could be secrets). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Validates an untrusted link descriptor (e.g. terminal configuration from the database).
 * @throws TunnelProtocolError with code `INVALID_LINK`.
 */
export function parseLinkDescriptor(value: unknown): LinkDescriptor {
  const result = LinkDescriptorSchema.safeParse(value);
  if (!result.success) {
    throw new TunnelProtocolError('INVALID_LINK', describeIssues(result.error), 'fail-stream');
  }
  return result.data;
}

/**
 * `payorch-proto --protocol jpay`: decodes JPAY / aQsi cardcore captures (4-byte length + XML) and
 * builds packets from JSON. Card data and secrets are redacted in decoded output: a manual-entry PAN
 * is masked, passwords and key material are replaced. Encrypted packets are shown as such (no key).
 */
import {
  DEFAULT_MAX_FRAME_BYTES,
  FrameDecoder,
  JpayError,
  decodeCommand,
  decodeMessage,
  decodeReply,
  decodeResponse,
  encodeCommand,
  encodeFrame,
  encodeMessage,
  encodeReply,
  encodeResponse,
  isCommandName,
  isKnownMessageRoot,
  isSealed,
  maskPan,
  parseXmlBytes,
  writeXmlBytes,
  type JpayCommand,
  type JpayResponse,
  type MessageReply,
  type TerminalMessage,
  type XmlElement,
} from '@payorch/jpay';

import type { ProtocolCliAdapter } from '../adapter';

type PacketKind = 'command' | 'response' | 'message' | 'reply';
const REDACTED = '[redacted]';

function redactCommand(command: JpayCommand): JpayCommand {
  const out: Record<string, unknown> = { ...command };
  for (const secret of ['password', 'newPassword', 'token', 'material']) if (secret in out) out[secret] = REDACTED;
  if (command.command === 'transaction' && command.manualEntry) {
    out.manualEntry = {
      ...command.manualEntry,
      pan: maskPan(command.manualEntry.pan),
      password: REDACTED,
    };
  }
  return out as JpayCommand;
}

const names = (root: XmlElement): string[] => root.children.map((c) => c.name);

/** Which side sent a message-root packet: the application's message or the client's reply. */
function isReply(root: XmlElement): boolean {
  const children = names(root);
  const text = (name: string) => root.children.find((c) => c.name === name)?.text.trim();
  switch (root.name) {
    case 'smartcard':
      return ['next', 'end', 'retry'].includes(text('command') ?? '');
    case 'card':
      return text('code') === 'close' || (!children.includes('status') && ['read', 'write'].includes(text('code') ?? ''));
    case 'dex':
      return children.includes('status');
    default:
      return children.length === 1 && children[0] === 'status';
  }
}

function describe(root: XmlElement): Record<string, unknown> {
  if (isSealed(root)) return { kind: 'encrypted', root: root.name, attrs: root.attrs };
  if (isCommandName(root.name)) {
    return names(root).includes('status')
      ? { kind: 'response', packet: decodeResponse(root.name, root) }
      : { kind: 'command', packet: redactCommand(decodeCommand(root)) };
  }
  if (isKnownMessageRoot(root.name)) {
    return isReply(root) ? { kind: 'reply', packet: decodeReply(root) } : { kind: 'message', packet: decodeMessage(root) };
  }
  return names(root).includes('status') ? { kind: 'reply', packet: decodeReply(root) } : { kind: 'unknown-message', root: root.name };
}

function errorEntry(error: unknown): Record<string, unknown> {
  return error instanceof JpayError
    ? { error: { code: error.code, message: error.message, reaction: error.reaction } }
    : { error: { code: 'UNEXPECTED', message: String(error) } };
}

function toElement(kind: PacketKind, packet: unknown): XmlElement {
  switch (kind) {
    case 'command':
      return encodeCommand(packet as JpayCommand);
    case 'response': {
      const response = packet as JpayResponse;
      return encodeResponse({ ...response, errors: response.errors ?? [] });
    }
    case 'message':
      return encodeMessage(packet as TerminalMessage);
    case 'reply':
      return encodeReply(packet as MessageReply);
  }
}

export const adapter: ProtocolCliAdapter = {
  name: 'jpay',
  description: 'JPAY / aQsi cardcore banking application (4-byte BE length + XML, TCP 4433)',

  decode(bytes: Uint8Array): unknown[] {
    const decoder = new FrameDecoder({ maxFrameBytes: DEFAULT_MAX_FRAME_BYTES });
    const events = decoder.push(bytes);
    const entries: unknown[] = events.map((event) => {
      if (event.kind === 'garbage') {
        return {
          kind: 'garbage',
          bytes: Buffer.from(event.bytes).toString('hex'),
          ...errorEntry(event.error),
        };
      }
      try {
        return describe(parseXmlBytes(event.frame));
      } catch (error) {
        return { kind: 'frame', length: event.frame.length, ...errorEntry(error) };
      }
    });
    if (decoder.bufferedBytes > 0) {
      entries.push({
        kind: 'truncated',
        bufferedBytes: decoder.bufferedBytes,
        error: { code: 'TRUNCATED', message: 'capture ends inside a packet' },
      });
    }
    return entries;
  },

  encode(json: unknown): Uint8Array {
    const input = json as { kind?: unknown; packet?: unknown };
    const kinds: PacketKind[] = ['command', 'response', 'message', 'reply'];
    if (typeof input !== 'object' || input === null || !kinds.includes(input.kind as PacketKind) || typeof input.packet !== 'object') {
      throw new JpayError('INVALID_ARGUMENT', 'expected { kind: command|response|message|reply, packet: {...} }', { field: 'kind' });
    }
    return encodeFrame(writeXmlBytes(toElement(input.kind as PacketKind, input.packet)));
  },
};

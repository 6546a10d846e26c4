/**
 * Messages sent by the application while a command runs, and the client's replies (§8, §8.9, §8.10, §10).
 *
 *  - [JPAY-8-MSG]       "Клиент должен обязательно ответить на сообщение": every message gets one reply;
 *  - [JPAY-8-NOTIMPL]   an unknown message is answered `<name><status>notimplemented</status></name>`;
 *  - [JPAY-10-KEEP]     JPAY spells the runreset keepalive `keep-alive`; the reply echoes the spelling;
 *  - [JPAY-8.9-DISPLAY] `language` (example) and `lang` (prose) are both read;
 *  - [AQSI-SMARTCARD]   descriptor = len(1) ‖ UID(len) ‖ ATQA(2) ‖ SAK(1) in HEX ASCII; the replies
 *                       (`next`/`end`/`retry`) carry `command`, and no `status`, as in the examples;
 *  - [JPAY-8.9-CARD]    MIFARE `card`: open → (read|write)* → close; each terminal `card` packet is a
 *                       message and each client `card` packet is its reply.
 */
import { decodeAmount } from './amounts';
import { compact, mapOptional, requiredText } from './codec-util';
import { JpayError } from './errors';
import type { EmvTag, MessageReply, SmartcardDescriptor, TerminalMessage } from './messages';
import { normalizeStatus } from './status';
import { child, childrenNamed, el, opt, textOf, type XmlElement } from './xml';

export const MESSAGE_ROOTS = ['keepalive', 'keep-alive', 'display', 'displayqrcode', 'dex', 'smartcard', 'card'] as const;
const ROOTS = new Set<string>(MESSAGE_ROOTS);

export function isKnownMessageRoot(name: string): boolean {
  return ROOTS.has(name);
}

function decodeTags(block: XmlElement | undefined): EmvTag[] {
  return block
    ? childrenNamed(block, 'tag').map((t) => ({
        name: t.attrs.name ?? '',
        value: t.attrs.value ?? '',
      }))
    : [];
}

function encodeTags(name: string, tags: readonly EmvTag[]): XmlElement | undefined {
  return tags.length === 0
    ? undefined
    : el(
        name,
        tags.map((t) => el('tag', '', { name: t.name, value: t.value })),
      );
}

/** [AQSI-SMARTCARD] */
export function parseSmartcardDescriptor(hex: string): SmartcardDescriptor {
  const bytes = /^(?:[0-9a-fA-F]{2})+$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
  const uidLength = bytes?.[0] ?? 0;
  if (!bytes || bytes.length !== 1 + uidLength + 3) {
    throw new JpayError('FIELD_INVALID', 'smartcard descriptor is not len‖UID‖ATQA‖SAK [AQSI-SMARTCARD]', {
      field: 'descriptor',
    });
  }
  const hexOf = (from: number, to: number): string => bytes.subarray(from, to).toString('hex').toUpperCase();
  return {
    hex: hex.toUpperCase(),
    uid: hexOf(1, 1 + uidLength),
    atqa: hexOf(1 + uidLength, 3 + uidLength),
    sak: hexOf(3 + uidLength, 4 + uidLength),
  };
}

function decodeBlockId(root: XmlElement): number | undefined {
  return mapOptional(textOf(root, 'block-id'), (v) => {
    if (!/^\d{1,5}$/.test(v)) throw new JpayError('FIELD_INVALID', 'block-id is not a number', { field: 'block-id' });
    return Number(v);
  });
}

/** Decodes a message, or returns `undefined` for a root we do not know ([JPAY-8-NOTIMPL]). */
export function decodeMessage(root: XmlElement): TerminalMessage | undefined {
  switch (root.name) {
    case 'keepalive':
    case 'keep-alive':
      return compact({
        type: 'keepalive' as const,
        root: root.name,
        resetConnected: mapOptional(textOf(root, 'reset-connected-indicator'), (v) => v === '1'),
      });
    case 'display': {
      const value = textOf(root, 'value');
      return compact({
        type: 'display' as const,
        code: textOf(root, 'code') ?? '',
        language: textOf(root, 'language') ?? textOf(root, 'lang'),
        msg: textOf(root, 'msg'),
        status: textOf(root, 'status'),
        holdTime: textOf(root, 'hold-time'),
        valueQualifier: textOf(root, 'value-qualifier'),
        value: value !== undefined && /^\d{1,15}$/.test(value) ? decodeAmount(value, 'value') : undefined,
        currency: textOf(root, 'currency'),
      });
    }
    case 'displayqrcode': {
      const status = requiredText(root, 'status');
      if (status !== 'show' && status !== 'hide') {
        throw new JpayError('FIELD_INVALID', 'displayqrcode status must be show or hide', {
          field: 'status',
        });
      }
      const qrStatus: 'show' | 'hide' = status;
      return compact({
        type: 'displayqrcode' as const,
        status: qrStatus,
        url: textOf(root, 'url'),
      });
    }
    case 'dex':
      return { type: 'dex', kernelTags: decodeTags(child(root, 'kernel-tags')) };
    case 'smartcard':
      return compact({
        type: 'smartcard' as const,
        command: requiredText(root, 'command'),
        descriptor: mapOptional(textOf(root, 'descriptor'), parseSmartcardDescriptor),
      });
    case 'card': {
      const code = requiredText(root, 'code');
      if (code !== 'open' && code !== 'read' && code !== 'write') {
        throw new JpayError('FIELD_INVALID', 'card code must be open, read or write', {
          field: 'code',
        });
      }
      const cardCode: 'open' | 'read' | 'write' = code;
      return compact({
        type: 'card' as const,
        code: cardCode,
        blockId: decodeBlockId(root),
        status: mapOptional(textOf(root, 'status'), normalizeStatus),
        payload: textOf(root, 'payload'),
      });
    }
    default:
      return undefined;
  }
}

export function encodeMessage(message: TerminalMessage): XmlElement {
  switch (message.type) {
    case 'keepalive':
      return el(message.root, [opt('reset-connected-indicator', message.resetConnected === undefined ? undefined : message.resetConnected ? '1' : '0')]);
    case 'display':
      return el('display', [
        el('code', message.code),
        opt('language', message.language),
        opt('msg', message.msg),
        opt('status', message.status),
        opt('hold-time', message.holdTime),
        opt('value-qualifier', message.valueQualifier),
        opt('value', message.value === undefined ? undefined : String(message.value).padStart(12, '0')),
        opt('currency', message.currency),
      ]);
    case 'displayqrcode':
      return el('displayqrcode', [el('status', message.status), opt('url', message.url)]);
    case 'dex':
      return el('dex', [encodeTags('kernel-tags', message.kernelTags)]);
    case 'smartcard':
      return el('smartcard', [el('command', message.command), opt('descriptor', message.descriptor?.hex)]);
    case 'card':
      return el('card', [
        el('code', message.code),
        opt('block-id', message.blockId?.toString()),
        opt('status', message.status),
        opt('payload', message.payload),
      ]);
  }
}

/** The reply telling the application we cannot handle `root` ([JPAY-8-NOTIMPL]). */
export function notImplementedReply(root: string): MessageReply {
  return { type: 'status', root, status: 'notimplemented' };
}

export function encodeReply(reply: MessageReply): XmlElement {
  switch (reply.type) {
    case 'status':
      return el(reply.root, [el('status', reply.status)]);
    case 'dex':
      return el('dex', [el('status', reply.status), encodeTags('terminal-tags', reply.terminalTags)]);
    case 'smartcard':
      return el('smartcard', [el('command', reply.command), opt('indicator', reply.indicator)]);
    case 'card':
      switch (reply.code) {
        case 'read':
          return el('card', [el('code', 'read'), el('block-id', String(reply.blockId))]);
        case 'write':
          return el('card', [el('code', 'write'), el('block-id', String(reply.blockId)), el('payload', reply.payload)]);
        case 'close':
          return el('card', [el('code', 'close'), reply.receipt ? el('receipt', reply.receipt) : undefined]);
      }
  }
}

/** Reads a client reply (simulator side). */
export function decodeReply(root: XmlElement): MessageReply {
  switch (root.name) {
    case 'dex':
      return {
        type: 'dex',
        status: normalizeStatus(requiredText(root, 'status')),
        terminalTags: decodeTags(child(root, 'terminal-tags')),
      };
    case 'smartcard': {
      const command = requiredText(root, 'command');
      if (command !== 'next' && command !== 'end' && command !== 'retry') {
        throw new JpayError('FIELD_INVALID', 'smartcard reply must be next, end or retry', {
          field: 'command',
        });
      }
      const indicator = textOf(root, 'indicator');
      return compact({
        type: 'smartcard' as const,
        command,
        indicator: indicator === 'ok' || indicator === 'error' ? indicator : undefined,
      });
    }
    case 'card': {
      const code = requiredText(root, 'code');
      const blockId = decodeBlockId(root);
      if (code === 'close') {
        const receipt = child(root, 'receipt');
        return compact({ type: 'card' as const, code, receipt: receipt?.children });
      }
      if ((code === 'read' || code === 'write') && blockId !== undefined) {
        return code === 'read' ? { type: 'card', code, blockId } : { type: 'card', code, blockId, payload: requiredText(root, 'payload') };
      }
      throw new JpayError('FIELD_INVALID', 'card reply must be read/write with block-id, or close', { field: 'code' });
    }
    default:
      return {
        type: 'status',
        root: root.name,
        status: normalizeStatus(requiredText(root, 'status')),
      };
  }
}

/**
 * Pluggable answers to the messages that need a decision from the client. keepalive, display and
 * displayqrcode are always answered by the session (`ok`, or `cancelled` for a keepalive after abort)
 * and reach the caller as events.
 */
import type { EmvTag, MessageReply, TerminalMessage } from './messages';

export type DexMessage = Extract<TerminalMessage, { type: 'dex' }>;
export type SmartcardMessage = Extract<TerminalMessage, { type: 'smartcard' }>;
export type CardMessage = Extract<TerminalMessage, { type: 'card' }>;
export type SmartcardReply = Extract<MessageReply, { type: 'smartcard' }>;
export type CardReply = Extract<MessageReply, { type: 'card' }>;

export interface JpayMessageHandlers {
  /** dex tag provider: tags the kernel should add or change. Default: none. */
  readonly dex?: (message: DexMessage) => readonly EmvTag[] | Promise<readonly EmvTag[]>;
  /** aQsi smartcard: `next` (process as a bank card), `end` or `retry`. Default: `next`. */
  readonly smartcard?: (message: SmartcardMessage) => SmartcardReply | Promise<SmartcardReply>;
  /** JPAY MIFARE card: answer each `open`/`read`/`write` with read, write or close. Default: close. */
  readonly card?: (message: CardMessage) => CardReply | Promise<CardReply>;
}

export const DEFAULT_HANDLERS: Required<JpayMessageHandlers> = {
  dex: () => [],
  // "Клиент отвечает командой next, если принято решение продолжить обрабатывать карту, как банковскую".
  smartcard: () => ({ type: 'smartcard', command: 'next' }),
  card: () => ({ type: 'card', code: 'close' }),
};

/** Layers handler sets left to right; an `undefined` entry never hides the one beneath it. */
export function mergeHandlers(...layers: readonly (JpayMessageHandlers | undefined)[]): Required<JpayMessageHandlers> {
  const merged: Record<string, unknown> = { ...DEFAULT_HANDLERS };
  for (const layer of layers) {
    for (const [name, handler] of Object.entries(layer ?? {})) if (handler !== undefined) merged[name] = handler;
  }
  return merged as Required<JpayMessageHandlers>;
}

/**
 * Live events of a running command, for the caller's dashboards and operation log. Events never
 * carry card data in clear: EMV tags holding track or PAN data are masked before they are emitted.
 */
import type { CommandName, EmvTag, MessageReply, TerminalMessage } from './messages';
import { maskPan } from './pan';
import type { JpayStatus } from './status';

export type JpayEvent =
  | { readonly type: 'command-sent'; readonly command: CommandName; readonly encrypted: boolean }
  | {
      readonly type: 'message';
      readonly command: CommandName;
      readonly message: TerminalMessage;
      readonly reply: MessageReply;
      readonly encrypted: boolean;
    }
  /** A message we do not know (or could not decode), answered `notimplemented`. */
  | { readonly type: 'unknown-message'; readonly command: CommandName; readonly root: string }
  /** A keepalive was answered `cancelled` because the caller aborted. */
  | { readonly type: 'cancel-sent'; readonly command: CommandName }
  | {
      readonly type: 'handler-failed';
      readonly command: CommandName;
      readonly message: TerminalMessage['type'];
    }
  | {
      readonly type: 'response';
      readonly command: CommandName;
      readonly status: JpayStatus;
      readonly encrypted: boolean;
    };

export type JpayEventListener = (event: JpayEvent) => void;

/** EMV tags whose value is card data: PAN, track 1/2 (and equivalents), cardholder name. */
const SENSITIVE_TAGS = new Set(['5A', '56', '57', '5F20', '9F1F', '9F20', '9F6B']);

export function redactEmvTags(tags: readonly EmvTag[]): EmvTag[] {
  return tags.map((tag) => {
    const name = tag.name.toUpperCase();
    if (!SENSITIVE_TAGS.has(name)) return tag;
    return {
      name: tag.name,
      value: name === '5A' ? maskPan(tag.value) : '*'.repeat(tag.value.length),
    };
  });
}

export function redactMessage(message: TerminalMessage): TerminalMessage {
  return message.type === 'dex' ? { ...message, kernelTags: redactEmvTags(message.kernelTags) } : message;
}

export function redactReply(reply: MessageReply): MessageReply {
  return reply.type === 'dex' ? { ...reply, terminalTags: redactEmvTags(reply.terminalTags) } : reply;
}

/** The simulator side of one running command. */
import type { Dialect, MessageReply, TerminalMessage, XmlElement } from '@payorch/jpay';

/** One command in progress on one connection: lets a handler send messages and await replies. */
export interface Conversation {
  readonly dialect: Dialect;
  readonly encrypted: boolean;
  /** Aborted when the connection closes. */
  readonly linkGone: AbortSignal;
  /** Sends a message and resolves with the client's reply (rejects if the connection closes). */
  ask(message: TerminalMessage): Promise<MessageReply>;
  /** Sends any element as a message (e.g. one the client does not know) and returns the raw reply. */
  askRaw(message: XmlElement): Promise<XmlElement>;
  /** Sends raw bytes (for the malformed-packet scenario). */
  sendRaw(bytes: Uint8Array): void;
  /** Drops the connection. */
  drop(): void;
  sleep(ms: number): Promise<void>;
}

/** Thrown by a handler that ended the connection on purpose: no response is sent. */
export class NoResponse extends Error {}

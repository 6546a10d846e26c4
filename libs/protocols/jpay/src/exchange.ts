/**
 * One command exchange over one connection (§3, §8): send the command, answer every message the
 * application sends, return the response whose root repeats the command name.
 *
 *  - [JPAY-8-ONE]    one command at a time; the caller (JpayClient) serialises;
 *  - [JPAY-8-MSG]    every message is answered before the response can arrive; messages are handled
 *                    strictly in arrival order;
 *  - [JPAY-8.9-CANCEL] after the caller aborts, the next keepalive is answered `cancelled`;
 *  - [JPAY-9-MIRROR] a reply is encrypted iff the message was ("для зашифрованной команды они так же
 *                    передаются зашифрованными");
 *  - [JPAY-9-MIRROR] …and the response to an encrypted command must be encrypted: a clear one ends the
 *                    exchange (ENCRYPTION_MISMATCH), its content is not a result;
 *  - [PAYORCH-FATAL] garbage on the stream, undecodable XML, a timeout or a closed connection end the
 *                    exchange with a typed error; we cannot know which packet was lost, so we never guess;
 *  - [PAYORCH-AFTER-SEND] once the command is written, no error says "not sent" (`reject-request`): a
 *                    reply we cannot encode (a `notimplemented` echo of a root name our writer refuses)
 *                    ends the exchange as UNEXPECTED_PACKET, an unknown outcome.
 */
import { decodeServerHandshake, type JpayEcdhe, type JpaySessionKey } from './crypto';
import { decodeMessage, encodeReply, notImplementedReply } from './codec-messages';
import { isSealed, openElement, sealElement } from './envelope';
import { afterSendError, JpayError } from './errors';
import { redactMessage, redactReply, type JpayEventListener } from './events';
import { encodeFrame, FrameDecoder } from './framing';
import { mergeHandlers, type JpayMessageHandlers } from './handlers';
import type { CommandName, MessageReply, TerminalMessage } from './messages';
import { normalizeStatus } from './status';
import type { JpayTransport } from './transport';
import { parseXmlBytes, textOf, writeXmlBytes, type XmlElement } from './xml';

export interface ExchangeOptions {
  readonly command: CommandName;
  /** The command element in clear. */
  readonly request: XmlElement;
  /** Encrypt the command (and so its messages and response) with this key. */
  readonly key?: JpaySessionKey;
  /** Secure login: derive the session key from the response's `server-handshake`. */
  readonly loginEcdhe?: JpayEcdhe;
  readonly handlers?: JpayMessageHandlers;
  readonly onEvent?: JpayEventListener;
  readonly signal?: AbortSignal;
  /** Longest silence from the application (keepalives count as activity). */
  readonly idleTimeoutMs: number;
  readonly maxFrameBytes: number;
}

export interface ExchangeResult {
  /** The response element, decrypted. */
  readonly root: XmlElement;
  readonly encrypted: boolean;
  /** The key derived by a secure login. */
  readonly derivedKey?: JpaySessionKey;
}

export function runExchange(transport: JpayTransport, options: ExchangeOptions): Promise<ExchangeResult> {
  const handlers = mergeHandlers(options.handlers);
  const { command, onEvent, signal } = options;
  const decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });

  return new Promise<ExchangeResult>((resolve, reject) => {
    let settled = false;
    /** The command's bytes went to the transport: from here on its outcome may be anything. */
    let written = false;
    let queue = Promise.resolve();
    let timer: NodeJS.Timeout | undefined;

    const finish = (error: JpayError | undefined, result?: ExchangeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        transport.close();
        // [PAYORCH-AFTER-SEND]
        reject(written ? afterSendError(error) : error);
      } else resolve(result!);
    };
    const armTimer = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(new JpayError('TIMEOUT', `no packet from the application for ${options.idleTimeoutMs} ms`)), options.idleTimeoutMs);
    };
    const send = (root: XmlElement, key: JpaySessionKey | undefined): void => {
      transport.write(encodeFrame(writeXmlBytes(key ? sealElement(root, key) : root), options.maxFrameBytes));
    };

    const answer = async (message: TerminalMessage): Promise<MessageReply> => {
      switch (message.type) {
        case 'keepalive':
          if (signal?.aborted) onEvent?.({ type: 'cancel-sent', command });
          return {
            type: 'status',
            root: message.root,
            status: signal?.aborted ? 'cancelled' : 'ok',
          };
        case 'display':
        case 'displayqrcode':
          return { type: 'status', root: message.type, status: 'ok' };
        case 'dex':
          return { type: 'dex', status: 'ok', terminalTags: await handlers.dex(message) };
        case 'smartcard':
          // "В ответ на неизвестные команды терминала, клиент должен отвечать командой next".
          return message.command === 'newcard' ? handlers.smartcard(message) : fallbackReply(message);
        case 'card':
          return handlers.card(message);
      }
    };

    const answerSafely = async (message: TerminalMessage): Promise<MessageReply> => {
      try {
        return await answer(message);
      } catch {
        onEvent?.({ type: 'handler-failed', command, message: message.type });
        return fallbackReply(message);
      }
    };

    const handleFrame = async (frame: Uint8Array): Promise<void> => {
      const sealedRoot = parseXmlBytes(frame);
      const encrypted = isSealed(sealedRoot);
      if (sealedRoot.name === command) {
        let key = options.key;
        let derivedKey: JpaySessionKey | undefined;
        const serverHandshake = sealedRoot.attrs['server-handshake'];
        if (options.loginEcdhe && serverHandshake !== undefined) {
          derivedKey = options.loginEcdhe.deriveKey(decodeServerHandshake(serverHandshake));
          key = derivedKey;
        }
        const root = openElement(sealedRoot, key, { requireSealed: options.key !== undefined });
        onEvent?.({
          type: 'response',
          command,
          status: normalizeStatus(textOf(root, 'status') ?? ''),
          encrypted,
        });
        finish(undefined, { root, encrypted, derivedKey });
        return;
      }
      const root = openElement(sealedRoot, options.key);
      let message: TerminalMessage | undefined;
      try {
        message = decodeMessage(root);
      } catch {
        message = undefined;
      }
      const replyKey = encrypted ? options.key : undefined;
      if (!message) {
        send(encodeReply(notImplementedReply(root.name)), replyKey);
        onEvent?.({ type: 'unknown-message', command, root: root.name });
        return;
      }
      const reply = await answerSafely(message);
      if (settled) return;
      send(encodeReply(reply), replyKey);
      onEvent?.({
        type: 'message',
        command,
        message: redactMessage(message),
        reply: redactReply(reply),
        encrypted,
      });
    };

    transport.onClose((cause) => {
      finish(new JpayError('TRANSPORT_CLOSED', 'connection closed before the response', {}, { cause }));
    });
    transport.onData((chunk) => {
      if (settled) return;
      armTimer();
      for (const event of decoder.push(chunk)) {
        if (event.kind === 'garbage') {
          finish(event.error);
          return;
        }
        const frame = event.frame;
        queue = queue
          .then(() => (settled ? undefined : handleFrame(frame)))
          .catch((error: unknown) =>
            finish(error instanceof JpayError ? error : new JpayError('UNEXPECTED_PACKET', 'packet could not be processed', {}, { cause: error })),
          );
      }
    });

    armTimer();
    let request: Uint8Array;
    try {
      request = encodeFrame(writeXmlBytes(options.key ? sealElement(options.request, options.key) : options.request), options.maxFrameBytes);
    } catch (error) {
      // Nothing was written: the request itself is at fault (a too large one included).
      const rejected = error instanceof JpayError && error.reaction === 'reject-request';
      finish(rejected ? error : new JpayError('INVALID_ARGUMENT', 'the command could not be encoded', {}, { cause: error }));
      return;
    }
    written = true;
    try {
      transport.write(request);
      onEvent?.({ type: 'command-sent', command, encrypted: options.key !== undefined });
    } catch (error) {
      finish(error instanceof JpayError ? error : new JpayError('TRANSPORT_CLOSED', 'write failed', {}, { cause: error }));
    }
  });
}

/** Reply when a pluggable handler throws: the spec's neutral answer for each message. */
function fallbackReply(message: TerminalMessage): MessageReply {
  switch (message.type) {
    case 'dex':
      return { type: 'dex', status: 'ok', terminalTags: [] };
    case 'smartcard':
      return { type: 'smartcard', command: 'next' };
    case 'card':
      return { type: 'card', code: 'close' };
    default:
      return notImplementedReply(message.type);
  }
}

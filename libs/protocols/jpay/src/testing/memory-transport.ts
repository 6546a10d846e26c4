/**
 * In-memory transport for session tests: the test plays the banking application, reading what the
 * client wrote (as XML text, decoded with an independent length-prefix reader) and pushing bytes back.
 */
import type { JpayTransport } from '../transport';

export interface ScriptedPeer {
  readonly transport: JpayTransport;
  /** XML payloads the client has written so far. */
  readonly written: string[];
  /** Resolves with the next payload the client writes. */
  nextWrite(): Promise<string>;
  /** Sends raw bytes to the client. */
  push(bytes: Uint8Array): void;
  /** Closes the connection from the application side. */
  hangUp(): void;
  readonly closedByClient: () => boolean;
}

export function scriptedPeer(): ScriptedPeer {
  let onData: ((chunk: Uint8Array) => void) | undefined;
  const closeListeners: Array<(error?: Error) => void> = [];
  const written: string[] = [];
  const unread: string[] = [];
  const waiters: Array<(xml: string) => void> = [];
  let closed = false;
  let closedByClient = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const listener of closeListeners) listener();
  };
  return {
    written,
    transport: {
      write(bytes) {
        const buffer = Buffer.from(bytes);
        const xml = buffer.subarray(4, 4 + buffer.readUInt32BE(0)).toString('utf8');
        written.push(xml);
        const waiter = waiters.shift();
        if (waiter) waiter(xml);
        else unread.push(xml);
      },
      onData(listener) {
        onData = listener;
      },
      onClose(listener) {
        closeListeners.push(listener);
      },
      close() {
        closedByClient = true;
        close();
      },
    },
    nextWrite: () =>
      new Promise<string>((resolve) => {
        const xml = unread.shift();
        if (xml !== undefined) resolve(xml);
        else waiters.push(resolve);
      }),
    push: (bytes) => onData?.(bytes),
    hangUp: close,
    closedByClient: () => closedByClient,
  };
}

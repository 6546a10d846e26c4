import type { Duplex } from 'node:stream';

/**
 * The byte pipe a TillSession talks over: a TCP socket, a serial port, or a tunnel stream of the device
 * connector. Writes are fire-and-forget; backpressure, if any, is the transport's business.
 */
export interface ByteTransport {
  write(bytes: Uint8Array): void;
  onData(listener: (chunk: Uint8Array) => void): void;
  /** Called once when the pipe is gone (either side closed, or an error). */
  onClose(listener: (error?: Error) => void): void;
  close(): void;
}

/** Adapts a Node Duplex (net.Socket, a tunnel stream) to a ByteTransport. */
export function duplexTransport(stream: Duplex): ByteTransport {
  let closed = false;
  const closeListeners: ((error?: Error) => void)[] = [];
  let lastError: Error | undefined;
  const finish = () => {
    if (closed) return;
    closed = true;
    for (const listener of closeListeners) listener(lastError);
  };
  stream.on('error', (error: Error) => {
    lastError = error;
  });
  stream.on('close', finish);
  return {
    write(bytes) {
      if (!closed && !stream.destroyed) stream.write(bytes);
    },
    onData(listener) {
      stream.on('data', (chunk: Buffer) => listener(chunk));
    },
    onClose(listener) {
      if (closed) listener(lastError);
      else closeListeners.push(listener);
    },
    close() {
      stream.destroy();
    },
  };
}

import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * The byte pipe every protocol session talks over: a TCP socket, a serial port, a tunnel stream of
 * the device connector, or an in-memory pair in tests. Writes are fire-and-forget; backpressure,
 * if any, is the transport's business.
 */
export interface ByteTransport {
  write(bytes: Uint8Array): void;
  onData(listener: (chunk: Uint8Array) => void): void;
  /** Called once when the pipe is gone (either side closed, or an error), with the error if any. A late listener is called at once. */
  onClose(listener: (error?: Error) => void): void;
  close(): void;
}

export interface DuplexTransportOptions {
  /** The error a write after close throws; by default such a write is dropped silently. */
  writeAfterClose?: () => Error;
}

/** Adapts a Node Duplex (net.Socket, tunnel stream) to a ByteTransport. */
export function duplexTransport(stream: Duplex, options: DuplexTransportOptions = {}): ByteTransport {
  let closed = false;
  let lastError: Error | undefined;
  const closeListeners: ((error?: Error) => void)[] = [];
  const finish = (): void => {
    if (closed) return;
    closed = true;
    for (const listener of closeListeners.splice(0)) listener(lastError);
  };
  stream.on('error', (error: Error) => {
    lastError = error;
  });
  // A peer's FIN ends the conversation: every protocol here is request/response on one pipe.
  stream.on('end', () => stream.destroy());
  stream.on('close', finish);
  return {
    write(bytes) {
      if (closed || stream.destroyed) {
        if (options.writeAfterClose) throw options.writeAfterClose();
        return;
      }
      stream.write(bytes);
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

export interface SocketConnectOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  /** Builds the protocol's own error for a refused or timed-out connection (`cause` absent: timed out). */
  connectError: (message: string, cause?: NodeJS.ErrnoException) => Error;
}

/** Opens a TCP connection (no Nagle delay) and resolves with the socket once connected. */
export function connectSocket(options: SocketConnectOptions): Promise<Socket> {
  const { host, port } = options;
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(options.connectError(`connect to ${host}:${port} timed out`));
    }, options.connectTimeoutMs);
    socket.once('error', (cause) => {
      clearTimeout(timer);
      socket.destroy();
      reject(options.connectError(`connect to ${host}:${port} failed: ${cause.message}`, cause));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

export interface TcpConnectOptions extends SocketConnectOptions {
  transport?: DuplexTransportOptions;
}

/** Opens a TCP connection (no Nagle delay) and resolves with its ByteTransport once connected. */
export async function connectTcp(options: TcpConnectOptions): Promise<ByteTransport> {
  return duplexTransport(await connectSocket(options), options.transport);
}

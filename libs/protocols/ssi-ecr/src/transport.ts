import { connect } from 'node:net';
import type { Duplex } from 'node:stream';

import { SsiEcrError } from './errors';

/**
 * The byte pipe the client talks through. A TCP socket, a tunnel stream from the device connector or an
 * in-memory pair all fit. `onClose` fires once, after which the transport is unusable.
 */
export interface ByteTransport {
  write(bytes: Uint8Array): void;
  onData(listener: (chunk: Uint8Array) => void): void;
  onClose(listener: (error?: Error) => void): void;
  close(): void;
}

/** Opens a fresh transport; called on first use and again after a connection is lost. */
export type TransportFactory = () => Promise<ByteTransport>;

/** Adapts a Node Duplex (net.Socket, tunnel stream) to a ByteTransport. */
export function duplexTransport(stream: Duplex): ByteTransport {
  let closed = false;
  const closeListeners: ((error?: Error) => void)[] = [];
  let lastError: Error | undefined;
  const fireClose = (): void => {
    if (closed) return;
    closed = true;
    for (const listener of closeListeners) listener(lastError);
  };
  stream.on('error', (error: Error) => {
    lastError = error;
    fireClose();
  });
  stream.on('close', fireClose);
  stream.on('end', fireClose);
  return {
    write: (bytes) => {
      if (closed) throw new SsiEcrError('CONNECTION_CLOSED', 'transport is closed');
      stream.write(bytes);
    },
    onData: (listener) => stream.on('data', (chunk: Buffer) => listener(chunk)),
    onClose: (listener) => {
      if (closed) listener(lastError);
      else closeListeners.push(listener);
    },
    close: () => {
      stream.destroy();
      fireClose();
    },
  };
}

export interface TcpTransportOptions {
  readonly host: string;
  /** Spec 1.1: 3000 by default. */
  readonly port?: number;
  readonly connectTimeoutMs?: number;
}

/** Spec 1.1: the terminal listens on TCP (default port 3000); the ECR connects. */
export function tcpTransportFactory(options: TcpTransportOptions): TransportFactory {
  const { host, port = 3000, connectTimeoutMs = 5000 } = options;
  return () =>
    new Promise<ByteTransport>((resolve, reject) => {
      const socket = connect({ host, port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new SsiEcrError('CONNECT_FAILED', `connect to ${host}:${port} timed out`, { context: { host, port } }));
      }, connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(duplexTransport(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new SsiEcrError('CONNECT_FAILED', `connect to ${host}:${port} failed: ${error.message}`, { context: { host, port } }));
      });
    });
}

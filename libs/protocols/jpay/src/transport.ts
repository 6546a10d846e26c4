/**
 * Byte transport of one connection to the banking application. The session only needs to write bytes,
 * receive bytes and learn that the connection ended, so a TCP socket, a tunnel stream from the device
 * connector or an in-memory pair in tests all fit.
 */
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';

import { JpayError } from './errors';

export interface JpayTransport {
  write(bytes: Uint8Array): void;
  /** Registers the data listener (one per transport). */
  onData(listener: (chunk: Uint8Array) => void): void;
  /** Registers the close listener; called once, with the error if the connection failed. */
  onClose(listener: (error?: Error) => void): void;
  close(): void;
}

/** Opens a new connection. The spec processes one command per connection (§3 steps 1–6). */
export type JpayConnect = () => Promise<JpayTransport>;

/** Adapts a Node Duplex (net.Socket, tunnel stream). */
export function transportFromDuplex(stream: Duplex): JpayTransport {
  let closed = false;
  const closeListeners: Array<(error?: Error) => void> = [];
  let lastError: Error | undefined;
  const fireClose = (): void => {
    if (closed) return;
    closed = true;
    for (const listener of closeListeners) listener(lastError);
  };
  stream.on('error', (error: Error) => {
    lastError = error;
  });
  stream.on('close', fireClose);
  stream.on('end', () => stream.destroy());
  return {
    write: (bytes) => {
      if (!closed) stream.write(bytes);
    },
    onData: (listener) => {
      stream.on('data', (chunk: Buffer) => listener(chunk));
    },
    onClose: (listener) => {
      closeListeners.push(listener);
    },
    close: () => {
      stream.destroy();
    },
  };
}

export interface TcpConnectOptions {
  readonly host: string;
  /** Default 4433 (§3). */
  readonly port?: number;
  readonly connectTimeoutMs?: number;
}

export const DEFAULT_JPAY_PORT = 4433;

/** A `JpayConnect` over plain TCP. Connection failures reject with `CONNECT_FAILED`. */
export function tcpConnector(options: TcpConnectOptions): JpayConnect {
  return () =>
    new Promise<JpayTransport>((resolve, reject) => {
      const socket = netConnect({ host: options.host, port: options.port ?? DEFAULT_JPAY_PORT });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new JpayError('CONNECT_FAILED', 'connect timed out'));
      }, options.connectTimeoutMs ?? 10_000);
      socket.once('error', (cause) => {
        clearTimeout(timer);
        reject(new JpayError('CONNECT_FAILED', 'connect failed', {}, { cause }));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(transportFromDuplex(socket));
      });
    });
}

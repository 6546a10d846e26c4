/**
 * Byte transport of one connection to the banking application. The session only needs to write bytes,
 * receive bytes and learn that the connection ended, so a TCP socket, a tunnel stream from the device
 * connector or an in-memory pair in tests all fit.
 */
import type { Duplex } from 'node:stream';

import { type ByteTransport, connectTcp, duplexTransport } from '@payorch/byte-transport';

import { JpayError } from './errors';

/** One connection to the banking application (see @payorch/byte-transport). */
export type JpayTransport = ByteTransport;

/** Opens a new connection. The spec processes one command per connection (§3 steps 1–6). */
export type JpayConnect = () => Promise<JpayTransport>;

/** Adapts a Node Duplex (net.Socket, tunnel stream). */
export function transportFromDuplex(stream: Duplex): JpayTransport {
  return duplexTransport(stream);
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
    connectTcp({
      host: options.host,
      port: options.port ?? DEFAULT_JPAY_PORT,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      connectError: (message, cause) => new JpayError('CONNECT_FAILED', message, {}, cause ? { cause } : undefined),
    });
}

import type { Duplex } from 'node:stream';

import { type ByteTransport, connectTcp, duplexTransport as sharedDuplexTransport } from '@payorch/byte-transport';

import { SsiEcrError } from './errors';

/** The byte pipe the client talks through: see @payorch/byte-transport. */
export type { ByteTransport };

/** Opens a fresh transport; called on first use and again after a connection is lost. */
export type TransportFactory = () => Promise<ByteTransport>;

/** Adapts a Node Duplex (net.Socket, tunnel stream); a write after close throws CONNECTION_CLOSED. */
export function duplexTransport(stream: Duplex): ByteTransport {
  return sharedDuplexTransport(stream, { writeAfterClose: () => new SsiEcrError('CONNECTION_CLOSED', 'transport is closed') });
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
    connectTcp({
      host,
      port,
      connectTimeoutMs,
      connectError: (message) => new SsiEcrError('CONNECT_FAILED', message, { context: { host, port } }),
      transport: { writeAfterClose: () => new SsiEcrError('CONNECTION_CLOSED', 'transport is closed') },
    });
}

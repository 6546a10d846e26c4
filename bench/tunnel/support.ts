import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import { WebSocket, WebSocketServer } from 'ws';

import { createLogger } from '@payorch/logging';
import { attachWebSocket, type Multiplexer, type TerminalEntry, toDuplex } from '@payorch/tunnel';

import { LinkBridge } from '../../apps/agent/src/bridge/link-bridge';

export const silent = createLogger({ name: 'bench', level: 'silent' });

/** A connector-side Multiplexer and an agent (LinkBridge) over a real loopback WebSocket. */
export async function tunnelPair(
  terminals: TerminalEntry[],
): Promise<{ connector: Multiplexer; link: (terminalId: string) => Promise<Duplex>; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 1024 * 1024 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const connectorReady = new Promise<Multiplexer>((resolve) => {
    wss.once('connection', (ws) => {
      const mux = attachWebSocket(ws, { role: 'connector', software: 'bench-connector/1', heartbeat: false });
      mux.onReady(() => {
        mux.sendControl({ type: 'terminal-list', terminals });
        resolve(mux);
      });
    });
  });
  let listedResolve!: () => void;
  const listed = new Promise<void>((resolve) => (listedResolve = resolve));
  const bridge = new LinkBridge({ logger: silent, onTerminals: () => listedResolve() });
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { maxPayload: 1024 * 1024 });
  bridge.attach(ws);
  const connector = await connectorReady;
  await listed;
  return {
    connector,
    link: async (terminalId) => {
      const entry = terminals.find((t) => t.terminalId === terminalId)!;
      return toDuplex(await connector.open(entry.link, { terminalId }));
    },
    close: async () => {
      bridge.close();
      ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** A TCP server that discards what it receives and counts it. */
export async function sinkServer(): Promise<{ port: number; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  const server = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received: () => received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A TCP server that streams to whoever connects (the upstream direction of a relay: bytes from behind the
 * agent to the connector); `next()` resolves with the next accepted socket, for the bench to write into.
 */
export async function sourceServer(): Promise<{ port: number; next: () => Promise<Socket>; close: () => Promise<void> }> {
  const accepted: Socket[] = [];
  const waiting: Array<(socket: Socket) => void> = [];
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    const waiter = waiting.shift();
    if (waiter) waiter(socket);
    else accepted.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    next: () => {
      const socket = accepted.shift();
      return socket ? Promise.resolve(socket) : new Promise<Socket>((resolve) => waiting.push(resolve));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex, Writable } from 'node:stream';

import { WebSocket, WebSocketServer } from 'ws';

import { createLogger } from '@payorch/logging';
import { attachWebSocket, type Multiplexer, type TerminalEntry, toDuplex } from '@payorch/tunnel';

import { LinkBridge } from '../../apps/agent/src/bridge/link-bridge';

export const silent = createLogger({ name: 'bench', level: 'silent' });

/** The agent's half of a bench tunnel: a LinkBridge on a WebSocket dialled to `url`; resolves once it has its terminal list. */
export async function bridgeAgent(url: string): Promise<{ close: () => void }> {
  let listedResolve!: () => void;
  const listed = new Promise<void>((resolve) => (listedResolve = resolve));
  const bridge = new LinkBridge({ logger: silent, onTerminals: () => listedResolve() });
  const ws = new WebSocket(url, { maxPayload: 1024 * 1024 });
  bridge.attach(ws);
  await listed;
  return {
    close: () => {
      bridge.close();
      ws.terminate();
    },
  };
}

/**
 * A connector-side Multiplexer over a real loopback WebSocket, and its agent: `dialAgent(url)` starts one (in this
 * process: `bridgeAgent`; in its own: a child that runs it) and resolves once the agent has the terminal list.
 */
export async function tunnelPair(
  terminals: TerminalEntry[],
  dialAgent: (url: string) => Promise<{ close: () => void | Promise<void> }>,
): Promise<{ link: (terminalId: string) => Promise<Duplex>; close: () => Promise<void> }> {
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
  const agent = await dialAgent(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  const connector = await connectorReady;
  return {
    link: async (terminalId) => {
      const entry = terminals.find((t) => t.terminalId === terminalId)!;
      return toDuplex(await connector.open(entry.link, { terminalId }));
    },
    close: async () => {
      await agent.close();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * A TCP server that discards what it receives and counts it; `until(total)` resolves once it has received `total`
 * bytes since it started (an absolute count, so that bytes arriving before the call are not counted twice).
 */
export async function sinkServer(): Promise<{ port: number; until: (total: number) => Promise<void>; close: () => Promise<void> }> {
  let received = 0;
  let waiting: { total: number; resolve: () => void } | undefined;
  const server = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (waiting && received >= waiting.total) {
        waiting.resolve();
        waiting = undefined;
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    until: (total) => (received >= total ? Promise.resolve() : new Promise<void>((resolve) => (waiting = { total, resolve }))),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A TCP server that streams to whoever connects (the upstream direction of a relay: bytes from behind the agent to the
 * connector): `send(bytes)` writes that many bytes, 64 KiB at a time with backpressure, into the next accepted socket,
 * then ends it.
 */
export async function sourceServer(): Promise<{ port: number; send: (bytes: number) => Promise<void>; close: () => Promise<void> }> {
  const accepted: Socket[] = [];
  const waiting: Array<(socket: Socket) => void> = [];
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    const waiter = waiting.shift();
    if (waiter) waiter(socket);
    else accepted.push(socket);
  });
  const next = (): Promise<Socket> => {
    const socket = accepted.shift();
    return socket ? Promise.resolve(socket) : new Promise<Socket>((resolve) => waiting.push(resolve));
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    send: async (bytes) => {
      const socket = await next();
      await writeAll(socket, bytes);
      socket.end();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const CHUNK = Buffer.alloc(64 * 1024, 7);

/** Writes `bytes` into `writer` in 64 KiB chunks, waiting for 'drain' when it asks to. */
export async function writeAll(writer: Writable, bytes: number): Promise<void> {
  let sent = 0;
  while (sent < bytes) {
    if (!writer.write(CHUNK)) await new Promise((resolve) => writer.once('drain', resolve));
    sent += CHUNK.length;
  }
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

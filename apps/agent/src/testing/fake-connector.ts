import { createServer, type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';

import { WebSocketServer } from 'ws';

import { attachWebSocket, type TerminalEntry } from '@payorch/tunnel';

export interface FakeConnection {
  probe: boolean;
  agentVersion: string | undefined;
  /** WebSocket close code once closed. */
  closeCode?: number;
}

export interface FakeConnector {
  /** `ws://127.0.0.1:<port>/agent` */
  readonly url: string;
  readonly port: number;
  readonly connections: FakeConnection[];
  /** Upgrades answered 401. */
  readonly refused: number;
  /** Closes every open tunnel from the connector side (1001, as on a connector restart). */
  dropAll(): Promise<void>;
  close(): Promise<void>;
}

export interface FakeConnectorOptions {
  credential: string;
  terminals?: TerminalEntry[];
  /** Accepted by POST /agent/enroll. */
  enrollmentToken?: string;
}

/**
 * A loopback stand-in for the device connector's agent endpoint (apps/device-connector
 * AgentTunnelServer): `/agent` upgrades need `Authorization: Bearer <credential>` (401 otherwise,
 * before any frame), then the real tunnel handshake (Multiplexer, role `connector`) and a
 * `terminal-list`; `POST /agent/enroll` exchanges the enrollment token. Records every connection,
 * whether it was a doctor probe, and how it was closed.
 */
export async function startFakeConnector(options: FakeConnectorOptions): Promise<FakeConnector> {
  const connections: FakeConnection[] = [];
  let refused = 0;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  const server: Server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/agent/enroll') {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const token = (JSON.parse(body || '{}') as { token?: string }).token;
        const ok = options.enrollmentToken !== undefined && token === options.enrollmentToken;
        res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' });
        res.end(
          JSON.stringify(
            ok
              ? { agentId: 'agent-1', tenantId: 'tenant-1', credential: options.credential }
              : { error: { code: 'UNAUTHENTICATED', message: 'invalid, used or expired enrollment token' } },
          ),
        );
      });
      return;
    }
    res.writeHead(404).end();
  });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const reject = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
    };
    if (req.url !== '/agent') return reject(404, 'Not Found');
    if (req.headers.authorization !== `Bearer ${options.credential}`) {
      refused++;
      return reject(401, 'Unauthorized');
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection: FakeConnection = {
        probe: req.headers['x-payorch-agent-probe'] !== undefined,
        agentVersion: req.headers['x-payorch-agent-version'] as string | undefined,
      };
      connections.push(connection);
      ws.on('close', (code) => (connection.closeCode = code));
      const mux = attachWebSocket(ws, { role: 'connector', software: 'fake-connector/1', heartbeat: false });
      mux.onReady(() => mux.sendControl({ type: 'terminal-list', terminals: options.terminals ?? [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/agent`,
    port,
    connections,
    get refused() {
      return refused;
    },
    dropAll: async () => {
      await Promise.all([...wss.clients].map((ws) => new Promise<void>((resolve) => (ws.once('close', () => resolve()), ws.close(1001, 'going away')))));
    },
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port with nothing listening on it (bound once, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A connector endpoint that refuses every upgrade with `status` and `headers`, before any WebSocket exists (as the
 * device connector's connect budget, a draining connector, or the proxy in front of them).
 */
export async function startRefusingConnector(status: number, headers: Record<string, string> = {}) {
  const server = createServer();
  let upgrades = 0;
  server.on('upgrade', (_req, socket) => {
    upgrades += 1;
    const lines = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
      'Connection: close',
      'Content-Length: 0',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.end(`${lines.join('\r\n')}\r\n\r\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/agent`,
    upgrades: () => upgrades,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { WebSocket, WebSocketServer } from 'ws';

import { DEFAULT_MAX_FRAME_BYTES } from './constants';
import type { Multiplexer, MultiplexerOptions } from './multiplexer';
import type { TunnelStream } from './stream';
import { collect, writeAll } from './testing/collect';
import type { TunnelCloseInfo } from './transport';
import { attachWebSocket } from './ws-adapter';

/**
 * Over a real `ws` server on 127.0.0.1:0, set up the way STYLE C6 asks the connector to: noServer,
 * a small maxPayload, authentication in 'upgrade' before any frame is read.
 */
describe(attachWebSocket.name, () => {
  let server: Server;
  let wss: WebSocketServer;
  let url: string;
  let connector: Promise<Multiplexer>;
  const agentStreams = new Map<string, TunnelStream>();
  /** The connector's options (a test may change them before its agent connects). */
  let connectorOptions: MultiplexerOptions;

  beforeEach(async () => {
    agentStreams.clear();
    connectorOptions = { role: 'connector', software: 'connector/1' };
    server = createServer();
    wss = new WebSocketServer({ noServer: true, maxPayload: DEFAULT_MAX_FRAME_BYTES });
    connector = new Promise((resolve) => {
      server.on('upgrade', (request, socket, head) => {
        if (request.headers.authorization !== 'Bearer agent-credential') {
          socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
          return;
        }
        wss.handleUpgrade(request, socket, head, (ws) => resolve(attachWebSocket(ws, connectorOptions)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/agent`;
  });

  afterEach(async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
    await new Promise((resolve) => server.close(resolve));
  });

  function connectAgent(): { agent: Multiplexer; socket: WebSocket } {
    const socket = new WebSocket(url, { headers: { authorization: 'Bearer agent-credential' } });
    const agent = attachWebSocket(socket, { role: 'agent', software: 'payorch-agent/1.0.0' });
    agent.setOpenHandler((request) => {
      const stream = request.accept();
      agentStreams.set(request.terminalId ?? '', stream);
      if (request.terminalId?.startsWith('echo')) {
        stream.onData((chunk) => stream.write(chunk));
        stream.onEnd(() => stream.end());
      } else {
        stream.pause();
      }
    });
    return { agent, socket };
  }

  it('runs many concurrent echo streams while a stalled stream stays within its window', async () => {
    const { agent } = connectAgent();
    const sut = await connector;
    await new Promise((resolve) => sut.onReady(resolve));
    expect(sut.session?.peerSoftware).toBe('payorch-agent/1.0.0');

    const stalled = await sut.open({ kind: 'tcp-connect', host: 'pos.local', port: 1 }, { terminalId: 'stalled' });
    stalled.write(new Uint8Array(1024 * 1024));

    const payloads = Array.from({ length: 20 }, () => randomBytes(100_000));
    const results = await Promise.all(
      payloads.map(async (payload, i) => {
        const stream = await sut.open({ kind: 'tcp-connect', host: 'pos.local', port: 1 }, { terminalId: `echo-${i}` });
        const received = collect(stream);
        await writeAll(stream, payload);
        return received;
      }),
    );
    results.forEach((result, i) => expect(result.data.equals(payloads[i])).toBe(true));
    expect(agentStreams.get('stalled')?.readableLength).toBe(256 * 1024);
    expect(stalled.bufferedAmount).toBe(1024 * 1024 - 256 * 1024);
    agent.close();
  });

  it('sends a bulk stream in full-size messages that each fit one 64 KiB socket read, header included', async () => {
    const { agent, socket } = connectAgent();
    const sizes: number[] = [];
    socket.on('message', (data: Buffer) => sizes.push(data.length));
    const sut = await connector;
    await new Promise((resolve) => sut.onReady(resolve));
    const stream = await sut.open({ kind: 'tcp-connect', host: 'pos.local', port: 1 }, { terminalId: 'echo-bulk' });
    const received = collect(stream);
    const payload = randomBytes(1024 * 1024);
    await writeAll(stream, payload, 64 * 1024);
    expect((await received).data.equals(payload)).toBe(true);

    const largest = Math.max(...sizes);
    expect(largest).toBe(DEFAULT_MAX_FRAME_BYTES);
    // RFC 6455 header of a server → client message: 2 bytes, +2 of extended length from 126 bytes, +8 from 64 KiB.
    const webSocketHeader = largest < 126 ? 2 : largest < 65_536 ? 4 : 10;
    // One read of a socket delivers at most 64 KiB (libuv's read buffer): a larger message is reassembled with a copy.
    expect(largest + webSocketHeader).toBeLessThanOrEqual(64 * 1024);
    agent.close();
  });

  it('closes every agent stream with TUNNEL_CLOSED when the connector drops the socket', async () => {
    const { agent } = connectAgent();
    const sut = await connector;
    await new Promise((resolve) => sut.onReady(resolve));
    await sut.open({ kind: 'serial', path: '/dev/ttyS0', baudRate: 9600 }, { terminalId: 'serial' });
    const agentClosed = new Promise<TunnelCloseInfo>((resolve) => agent.onClose(resolve));
    const streamClosed = collect(agentStreams.get('serial') as TunnelStream);
    sut.close('connector shutting down');
    expect((await streamClosed).error?.code).toBe('TUNNEL_CLOSED');
    expect(await agentClosed).toEqual({
      code: 'TRANSPORT_CLOSED',
      message: 'transport closed (1000) LOCAL_CLOSE: connector shutting down',
    });
  });

  it('leaves authentication to the upgrade: a client without credentials never reaches a Multiplexer', async () => {
    const socket = new WebSocket(url);
    const status = await new Promise<number | undefined>((resolve) => {
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode));
      socket.on('error', () => resolve(undefined));
    });
    expect(status).toBe(401);
  });

  it('counts the WebSocket’s own pings and pongs against the connection frame budget', async () => {
    connectorOptions = { ...connectorOptions, connectionFrameBudget: { limit: 4, windowMs: 60_000 } };
    const { agent, socket } = connectAgent();
    const sut = await connector;
    await new Promise((resolve) => sut.onReady(resolve));
    const closed = new Promise<TunnelCloseInfo>((resolve) => sut.onClose(resolve));
    for (let i = 0; i < 3; i++) socket.ping();
    socket.pong();
    socket.ping();

    expect(await closed).toEqual({
      code: 'PROTOCOL_ERROR',
      message: 'connection frame budget exhausted: more than 4 frames per 60000 ms (last WebSocket ping)',
    });
    expect(await new Promise((resolve) => agent.onClose(resolve))).toMatchObject({ message: expect.stringMatching(/^transport closed \(1002\)/) });
  });

  it('sends the frames of one tick as one socket write, in order', async () => {
    const { agent } = connectAgent();
    const sut = await connector;
    await new Promise((resolve) => sut.onReady(resolve));
    const [ws] = [...wss.clients];
    const raw = (ws as unknown as { _socket: { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void } })._socket;
    let writes = 0;
    for (const method of ['_write', '_writev'] as const) {
      const original = raw[method].bind(raw);
      raw[method] = (...args: unknown[]) => {
        writes += 1;
        original(...args);
      };
    }
    const received: string[] = [];
    const all = new Promise<void>((resolve) =>
      agent.onControl((message) => {
        if (message.type === 'terminal-list') received.push(message.terminals.map((t) => t.terminalId).join(','));
        if (received.length === 3) resolve();
      }),
    );
    for (const id of ['a', 'b', 'c'])
      sut.sendControl({
        type: 'terminal-list',
        terminals: [{ terminalId: id, protocol: 'joinproto', link: { kind: 'tcp-connect', host: 'pos.local', port: 1 } }],
      });
    await all;
    expect(received).toEqual(['a', 'b', 'c']);
    expect(writes).toBe(1);

    // The next tick's frames are written again (the socket was uncorked).
    const more = new Promise<void>((resolve) => agent.onControl(() => resolve()));
    sut.sendControl({ type: 'terminal-list', terminals: [] });
    await more;
    expect(writes).toBe(2);
  });
});

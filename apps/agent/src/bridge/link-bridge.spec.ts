import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

import { WebSocket, WebSocketServer } from 'ws';

import { createLogger } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { attachWebSocket, type Multiplexer, type TerminalEntry, toDuplex } from '@payorch/tunnel';

import { LinkBridge } from './link-bridge';

const logger = createLogger({ name: 'test', level: 'silent' });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A connection to 127.0.0.1:port, or undefined while nothing listens there (refused connections are never accepted). */
function tryConnect(port: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', () => resolve(undefined));
  });
}

/** Whether something listens on 127.0.0.1:port, found by trying to listen there ourselves. */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
}

describe(LinkBridge.name, () => {
  let wss: WebSocketServer;
  let connector: Multiplexer;
  let ws: WebSocket;
  let sut: LinkBridge;
  const statuses: string[] = [];
  let listenPort: number;
  // A terminal that answers every connection with a burst and hangs up: more than the tunnel's window (256 KiB) and its
  // high-water mark (64 KiB) together can hold back, so the agent reads it all and sees the hang-up while the tail
  // still waits in the tunnel for the connector's credit.
  const burst = Buffer.alloc(256 * 1024 + 32 * 1024);
  for (let i = 0; i < burst.length; i++) burst[i] = (i * 7) & 0xff;
  const burstTerminal = createServer((socket) => socket.end(burst));
  const burstHungUp: Promise<void>[] = [];
  burstTerminal.on('connection', (socket) => burstHungUp.push(new Promise((resolve) => socket.once('close', () => resolve()))));

  beforeAll(async () => {
    listenPort = await freePort();
    await new Promise<void>((resolve) => burstTerminal.listen(0, '127.0.0.1', resolve));
    const burstPort = (burstTerminal.address() as AddressInfo).port;
    const terminals: TerminalEntry[] = [
      { terminalId: 'till-dialled', protocol: 'jpay', link: { kind: 'tcp-listen', port: listenPort, host: '127.0.0.1' } },
      { terminalId: 'burst', protocol: 'jpay', link: { kind: 'tcp-connect', port: burstPort, host: '127.0.0.1' } },
    ];
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const ready = new Promise<Multiplexer>((resolve) =>
      wss.once('connection', (socket) => {
        const mux = attachWebSocket(socket, { role: 'connector', software: 'test/1', heartbeat: false });
        mux.onControl((m) => m.type === 'link-status' && statuses.push(`${m.terminalId}:${m.state}`));
        mux.onReady(() => (mux.sendControl({ type: 'terminal-list', terminals }), resolve(mux)));
      }),
    );
    let listed!: () => void;
    const gotList = new Promise<void>((resolve) => (listed = resolve));
    sut = new LinkBridge({ logger, onTerminals: () => listed() });
    ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    sut.attach(ws);
    connector = await ready;
    await gotList;
  });

  afterAll(async () => {
    sut.close();
    ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => burstTerminal.close(() => resolve()));
  });

  it('listens for a terminal that dials the till and bridges bytes both ways', async () => {
    // Issue 19: stream.pipeline's AbortController built a DOMException with its stack for every link closed.
    const abort = jest.spyOn(AbortController.prototype, 'abort');
    const opening = connector.open({ kind: 'tcp-listen', port: listenPort, host: '127.0.0.1' }, { terminalId: 'till-dialled' });
    // The terminal dials in as soon as the agent listens.
    const terminal = await waitFor(() => tryConnect(listenPort), { what: 'the agent listening for the terminal' });
    const link = toDuplex(await opening);
    link.on('error', () => undefined); // the terminal hanging up resets the stream
    terminal.write('ping');
    const fromTerminal = await new Promise<string>((resolve) => link.once('data', (d: Buffer) => resolve(d.toString())));
    expect(fromTerminal).toBe('ping');
    link.write('pong');
    expect(await new Promise<string>((resolve) => terminal.once('data', (d: Buffer) => resolve(d.toString())))).toBe('pong');
    terminal.destroy();
    // The hang-up reaches the connector as the end of the terminal's bytes; the connector then ends its direction (as
    // its protocol sessions do on 'end': byte-transport.ts), which closes the link.
    await new Promise((r) => link.once('end', r));
    link.end();
    await new Promise((r) => (link.closed ? r(undefined) : link.once('close', r)));
    await waitFor(() => statuses.includes('till-dialled:down'), { what: 'link-status down' });
    expect(statuses).toEqual(['till-dialled:up', 'till-dialled:down']);
    expect(sut.openLinks).toBe(0);
    expect(abort).not.toHaveBeenCalled();
    abort.mockRestore();
  });

  it('stops listening for a terminal once the connector gave up on the tcp-listen OPEN (its timeout is shorter)', async () => {
    // The connector's open timeout (30 s) ends before the agent's accept timeout (120 s). Until 2026-12-07 the agent
    // listened on, accepted the terminal's later dial-in and hung up on it at once (the link was gone), reporting nothing.
    const before = statuses.length;
    const stream = connector.openStream({ kind: 'tcp-listen', port: listenPort, host: '127.0.0.1' }, { terminalId: 'till-dialled' });
    stream.onClose(() => undefined);
    // Whether the agent listens, asked without dialling (a dial-in would be taken for the terminal's): the port is taken.
    await waitFor(async () => (await portTaken(listenPort)) || undefined, { what: 'the agent listening for the terminal' });
    stream.destroy('TIMEOUT', 'the terminal did not dial in');
    await waitFor(async () => !(await portTaken(listenPort)) || undefined, { what: 'the agent no longer listening' });
    expect(await tryConnect(listenPort)).toBeUndefined();
    expect(statuses.slice(before)).toEqual([]);
  });

  it('carries every byte a terminal sent before it hung up, then ends the link without a reset', async () => {
    const link = toDuplex(
      await connector.open({ kind: 'tcp-connect', port: (burstTerminal.address() as AddressInfo).port, host: '127.0.0.1' }, { terminalId: 'burst' }),
    );
    link.pause(); // no credit goes back: the tail waits in the agent's tunnel stream
    await waitFor(() => burstHungUp.length > 0, { what: 'the burst terminal to accept' });
    await burstHungUp[0]; // the agent has read the whole burst and its socket has closed
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    const chunks: Buffer[] = [];
    const errors: Error[] = [];
    link.on('error', (error) => errors.push(error));
    link.on('data', (chunk: Buffer) => chunks.push(chunk));
    link.resume();
    await new Promise((r) => link.once('end', r));
    // Until 2026-12-07 the agent destroyed the tunnel stream when the terminal's socket closed: RESET, the tail lost.
    expect(errors).toEqual([]);
    expect(Buffer.concat(chunks).equals(burst)).toBe(true);
    link.end();
    await new Promise((r) => (link.closed ? r(undefined) : link.once('close', r)));
    expect(errors).toEqual([]);
    await waitFor(() => statuses.includes('burst:down'), { what: 'link-status down' });
    expect(sut.openLinks).toBe(0);
  });

  it('refuses links that are not in the terminal list, and relays', async () => {
    await expect(connector.open({ kind: 'tcp-connect', host: '127.0.0.1', port: 22 }, { terminalId: 'till-dialled' })).rejects.toMatchObject({
      code: 'NOT_ALLOWED',
    });
    await expect(connector.open({ kind: 'tcp-connect', host: '127.0.0.1', port: 22 })).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
    await expect(connector.open({ kind: 'relay-tcp', host: '127.0.0.1', port: 22 })).rejects.toMatchObject({ code: 'NOT_ALLOWED' });
  });
});

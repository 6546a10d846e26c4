import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';

import { connectRelaySocket, RelayConnection, RelayConnections, RelayError, TcpRelayPort } from './relay';

/**
 * A loopback processing host; `next()` resolves with the socket of the next connection it accepts.
 * Accepted sockets flow (bytes nobody listens for are dropped), so they see the relay's close; `stop()`
 * ends them all.
 */
async function host() {
  const all: Socket[] = [];
  const accepted: Socket[] = [];
  const waiting: ((socket: Socket) => void)[] = [];
  const server = createServer((socket) => {
    all.push(socket);
    socket.resume();
    const taker = waiting.shift();
    if (taker) taker(socket);
    else accepted.push(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const next = () => {
    const socket = accepted.shift();
    return socket ? Promise.resolve(socket) : new Promise<Socket>((resolve) => waiting.push(resolve));
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of all) socket.destroy();
      server.close(() => resolve());
    });
  return { port, address: `127.0.0.1:${port}`, next, stop };
}

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** The code a promise was rejected with by the next turn of the event loop, 'pending' if still unsettled, 'resolved'. */
function settledNow(promise: Promise<unknown>): Promise<string> {
  return Promise.race([
    promise.then(
      () => 'resolved',
      (error: RelayError) => error.code,
    ),
    new Promise<string>((resolve) => setImmediate(() => resolve('pending'))),
  ]);
}

const target = (address: string) => {
  const [hostName, port] = address.split(':');
  return { protocol: 'tcp' as const, host: hostName!, port: Number(port), address };
};

/** Reads until `bytes` bytes arrived (many 93s). */
async function readAll(read: (max: number) => Promise<Uint8Array>, bytes: number, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  while (total < bytes) {
    const chunk = await read(max);
    expect(chunk.length).toBeGreaterThan(0);
    expect(chunk.length).toBeLessThanOrEqual(max);
    parts.push(Buffer.from(chunk));
    total += chunk.length;
  }
  return Buffer.concat(parts);
}

describe(TcpRelayPort.name, () => {
  let h: Awaited<ReturnType<typeof host>>;
  beforeAll(async () => (h = await host()));
  afterAll(() => h.stop());

  it('denies a target outside the allowlist without dialing, and answers REFUSED for a closed port', async () => {
    const sut = new TcpRelayPort({ allow: [h.address] });
    await expect(sut.open(target('127.0.0.1:1'))).rejects.toMatchObject({ code: 'DENIED' });
    const port = await closedPort();
    const refused = new TcpRelayPort({ allow: [`127.0.0.1:${port}`] });
    await expect(refused.open(target(`127.0.0.1:${port}`))).rejects.toMatchObject({ code: 'REFUSED', wireText: 'Connection refused' });
    expect(refused.openConnections).toBe(0);
  });

  it('relays bytes both ways, in chunks of at most the asked size, through a small receive buffer, then 0 bytes after the host closed', async () => {
    const sut = new TcpRelayPort({ allow: [h.address], maxBufferedBytes: 16 });
    const id = await sut.open(target(h.address));
    const peer = await h.next();
    const request = new Uint8Array([1, 2, 3, 4, 5]);
    const got = once(peer, 'data');
    expect(await sut.send(id, request)).toBe(5);
    expect([...((await got)[0] as Buffer)]).toEqual([...request]);
    const answer = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    peer.end(answer);
    expect((await readAll((max) => sut.receive(id, max), answer.length, 64)).equals(answer)).toBe(true);
    expect((await sut.receive(id, 64)).length).toBe(0);
    await sut.close(id);
    await sut.close(id);
    expect(sut.openConnections).toBe(0);
    await expect(sut.receive(id, 1)).rejects.toMatchObject({ code: 'UNKNOWN_CONNECTION' });
    await expect(sut.send(id, request)).rejects.toMatchObject({ code: 'UNKNOWN_CONNECTION' });
  });

  it('answers TIMEOUT when no byte comes within the receive timeout, and closeAll ends every connection', async () => {
    const sut = new TcpRelayPort({ allow: [h.address], receiveTimeoutMs: 30 });
    const id = await sut.open(target(h.address));
    const peer = await h.next();
    await expect(sut.receive(id, 10)).rejects.toMatchObject({ code: 'TIMEOUT' });
    await sut.closeAll();
    expect(sut.openConnections).toBe(0);
    await once(peer, 'close');
  });
});

describe(RelayConnection.name, () => {
  let h: Awaited<ReturnType<typeof host>>;
  beforeAll(async () => (h = await host()));
  afterAll(() => h.stop());

  const open = async (limits: Partial<ConstructorParameters<typeof RelayConnection>[1]> = {}) => {
    const socket = await connectRelaySocket('127.0.0.1', h.port, 1000);
    const sut = new RelayConnection(socket, { receiveTimeoutMs: 5000, maxBufferedBytes: 1024, ...limits });
    return { sut, socket, peer: await h.next() };
  };

  it('cuts the connection (limit_bytes) at one byte more than maxBytes to the host, and counts what went through', async () => {
    const { sut, peer } = await open({ maxBytes: 8 });
    expect(await sut.send(new Uint8Array(8))).toBe(8);
    await expect(sut.send(new Uint8Array(1))).rejects.toMatchObject({ code: 'CLOSED', message: 'relay byte limit reached' });
    expect(sut).toMatchObject({ outcome: 'limit_bytes', reason: 'more than 8 bytes to the host', bytesToHost: 8 });
    await once(peer, 'close');
    await expect(sut.send(new Uint8Array(1))).rejects.toBeInstanceOf(RelayError);
  });

  it('cuts the connection (limit_bytes) when the host sends more than maxBytes, failing the waiting read', async () => {
    const { sut, peer } = await open({ maxBytes: 4 });
    const reading = sut.receive(10);
    peer.write(Buffer.alloc(3));
    expect((await reading).length).toBe(3);
    const waiting = sut.receive(10);
    peer.write(Buffer.alloc(2));
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    expect(sut).toMatchObject({ outcome: 'limit_bytes', reason: 'more than 4 bytes from the host', bytesFromHost: 5 });
  });

  it('cuts the connection (limit_time) after maxDurationMs', async () => {
    const { sut, peer } = await open({ maxDurationMs: 40 });
    await expect(sut.receive(10)).rejects.toMatchObject({ code: 'CLOSED' });
    expect(sut.outcome).toBe('limit_time');
    await once(peer, 'close');
  });

  it('holds one 93 waiting per connection: another is refused at once (BUSY), and the waiting one gets the next bytes', async () => {
    const { sut, peer } = await open({ receiveTimeoutMs: 60_000 });
    const waiting = sut.receive(10);
    // A terminal (or the agent feeding it bytes) sending 93s without waiting for their answers: before, each held a
    // promise and a receive timer for receiveTimeoutMs (100,000 of them: >100 MB), and only the last one was woken.
    const flood = Array.from({ length: 1000 }, () => sut.receive(10));
    const answers = await Promise.all(flood.map((read) => settledNow(read)));
    expect(new Set(answers)).toEqual(new Set(['BUSY']));
    peer.write('ok');
    expect(Buffer.from(await waiting).toString()).toBe('ok');
    // Once answered, the next 93 waits again.
    const next = sut.receive(10);
    peer.write('again');
    expect(Buffer.from(await next).toString()).toBe('again');
    sut.destroy();
  });

  it('holds one 92 in progress per connection: another is refused at once (BUSY) and sends nothing', async () => {
    const { sut, socket, peer } = await open({ maxBytes: 1024 });
    // The host does not take the bytes (corked: the write is not done), as a host that stopped reading once the
    // socket buffers are full. Before, every 92 meanwhile queued a write (a zero-length one spending nothing of
    // maxBytes), held until the session's maxDurationMs.
    socket.cork();
    const sending = sut.send(new Uint8Array([1, 2, 3]));
    const flood = Array.from({ length: 1000 }, () => sut.send(new Uint8Array(0)));
    const answers = await Promise.all(flood.map((send) => settledNow(send)));
    expect(new Set(answers)).toEqual(new Set(['BUSY']));
    const received = once(peer, 'data');
    socket.uncork();
    expect(await sending).toBe(3);
    expect([...((await received)[0] as Buffer)]).toEqual([1, 2, 3]);
    expect(sut.bytesToHost).toBe(3);
    // Once done, the next 92 goes through.
    expect(await sut.send(new Uint8Array([4]))).toBe(1);
    sut.destroy();
  });

  it("keeps what happened before it was read: the host's answer and close (peer_closed), then 0 bytes", async () => {
    const { sut, peer } = await open();
    peer.end('ok');
    await once(peer, 'close');
    expect(Buffer.from(await sut.receive(10)).toString()).toBe('ok');
    expect((await sut.receive(10)).length).toBe(0);
    expect(sut.outcome).toBe('peer_closed');
    sut.destroy();
  });

  it('tells its owner once that it holds nothing: the host closed and all was read, a cut (unread bytes dropped), or destroy', async () => {
    const released: string[] = [];
    const watched = async (name: string, limits: Partial<ConstructorParameters<typeof RelayConnection>[1]> = {}) => {
      const socket = await connectRelaySocket('127.0.0.1', h.port, 1000);
      const sut = new RelayConnection(socket, { receiveTimeoutMs: 5000, maxBufferedBytes: 1024, ...limits }, () => released.push(name));
      return { sut, socket, peer: await h.next() };
    };
    // The host answers and closes: held while its answer is unread, released when the terminal has read it, not again at the 94.
    const closed = await watched('host closed');
    closed.peer.end('ok');
    await once(closed.socket, 'close');
    expect(released).toEqual([]);
    expect(Buffer.from(await closed.sut.receive(10)).toString()).toBe('ok');
    expect(released).toEqual(['host closed']);
    closed.sut.destroy();
    expect(released).toEqual(['host closed']);
    // Bytes never read, no 94: the lifetime cut drops them and releases it; a later read fails CLOSED.
    const unread = await watched('cut', { maxDurationMs: 40 });
    unread.peer.write('unread');
    await once(unread.socket, 'close');
    expect(released).toEqual(['host closed', 'cut']);
    await expect(unread.sut.receive(10)).rejects.toMatchObject({ code: 'CLOSED' });
    unread.sut.destroy();
    // 94 on an open connection.
    const open94 = await watched('94');
    open94.sut.destroy();
    open94.sut.destroy();
    expect(released).toEqual(['host closed', 'cut', '94']);
  });
});

describe(RelayConnections.name, () => {
  it('hands out increasing ids, and removes (destroying) each once', async () => {
    const h = await host();
    try {
      const sut = new RelayConnections();
      const a = new RelayConnection(await connectRelaySocket('127.0.0.1', h.port, 1000), { receiveTimeoutMs: 1000, maxBufferedBytes: 1024 });
      const peer = await h.next();
      const id = sut.add(a);
      expect(id).toBe('1');
      expect(sut.add(a)).toBe('2');
      expect(sut.get(id)).toBe(a);
      expect(sut.remove(id)).toBe(a);
      expect(sut.remove(id)).toBeUndefined();
      expect(() => sut.get(id)).toThrow(expect.objectContaining({ code: 'UNKNOWN_CONNECTION' }));
      expect(sut.ids()).toEqual(['2']);
      await once(peer, 'close');
    } finally {
      await h.stop();
    }
  });
});

describe(connectRelaySocket.name, () => {
  it('maps a refused connection to REFUSED with the errno as detail', async () => {
    const port = await closedPort();
    await expect(connectRelaySocket('127.0.0.1', port, 1000)).rejects.toMatchObject({ code: 'REFUSED', message: 'ECONNREFUSED' });
  });
});

import { randomBytes } from 'node:crypto';

import { DEFAULT_MAX_FRAME_BYTES } from './constants';
import { dataFramePool, FramePool } from './frame-pool';
import { Multiplexer } from './multiplexer';
import { collect, writeAll } from './testing/collect';
import type { FrameTransport } from './transport';

describe(FramePool.name, () => {
  it('hands back only buffers of the asked size, and holds at most maxBytes', () => {
    const sut = new FramePool(3 * 1024);
    const a = new Uint8Array(1024);
    const b = new Uint8Array(1024);
    const c = new Uint8Array(2048);
    sut.give(a);
    sut.give(b);
    sut.give(c); // 4 KiB would exceed the bound: dropped
    expect(sut.bytes).toBe(2048);
    expect(sut.take(2048)).toBeUndefined();
    expect(sut.take(1024)).toBe(b);
    expect(sut.take(1024)).toBe(a);
    expect(sut.take(1024)).toBeUndefined();
    expect(sut.bytes).toBe(0);
  });
});

/**
 * A socket-like transport, as ws over TCP: the frame is read (copied to the "socket") only when it is
 * flushed, a turn later, and it may be reused from then on (`releasesOnFlush`). Records a frame buffer
 * sent again while still in flight, which would corrupt the bytes on a real socket.
 */
class SocketLikeTransport implements FrameTransport {
  readonly releasesOnFlush = true;
  peer: Multiplexer | undefined;
  self: SocketLikeTransport | undefined;
  readonly inFlight = new Set<Uint8Array>();
  /** Distinct buffers of the full-size frames sent, and how many such frames. */
  readonly fullBuffers = new Set<Uint8Array>();
  fullFrames = 0;
  reusedInFlight = 0;

  send(frame: Uint8Array, onFlushed: (error?: Error) => void): void {
    if (this.inFlight.has(frame)) this.reusedInFlight += 1;
    this.inFlight.add(frame);
    if (frame.length === DEFAULT_MAX_FRAME_BYTES) {
      this.fullBuffers.add(frame);
      this.fullFrames += 1;
    }
    setImmediate(() => {
      const copy = Uint8Array.from(frame);
      this.inFlight.delete(frame);
      onFlushed();
      this.peer?.receive(copy);
    });
  }

  close(): void {
    setImmediate(() => this.peer?.handleTransportClosed({ code: 1000 }));
  }
}

describe(`${Multiplexer.name} over a transport that releases frames on flush`, () => {
  it('recycles full-size DATA buffers only once flushed, and every stream arrives intact', async () => {
    const toAgent = new SocketLikeTransport();
    const toConnector = new SocketLikeTransport();
    const agent = new Multiplexer(toConnector, { role: 'agent', software: 'agent-test/1', heartbeat: false });
    const connector = new Multiplexer(toAgent, { role: 'connector', software: 'connector-test/1', heartbeat: false });
    toAgent.peer = agent;
    toConnector.peer = connector;
    const received = new Map<string, ReturnType<typeof collect>>();
    agent.setOpenHandler((request) => {
      const stream = request.accept();
      received.set(request.terminalId ?? '', collect(stream));
      stream.onEnd(() => stream.end());
    });
    const ready = Promise.all([new Promise((resolve) => agent.onReady(resolve)), new Promise((resolve) => connector.onReady(resolve))]);
    connector.start();
    agent.start();
    await ready;

    const payloads = ['a', 'b', 'c'].map((name) => [name, randomBytes(1024 * 1024 + 4321)] as const);
    await Promise.all(
      payloads.map(async ([name, payload]) => {
        const stream = await connector.open({ kind: 'tcp-connect', host: 'pos.local', port: 2000 }, { terminalId: name });
        await writeAll(stream, payload, 64 * 1024);
      }),
    );
    for (const [name, payload] of payloads) expect((await received.get(name))!.data.equals(payload)).toBe(true);

    expect(toAgent.reusedInFlight).toBe(0);
    // ~48 full-size frames went out in far fewer buffers: the pool was used.
    expect(toAgent.fullFrames).toBeGreaterThan(40);
    expect(toAgent.fullBuffers.size).toBeLessThan(toAgent.fullFrames / 2);
    expect(dataFramePool.bytes).toBeLessThanOrEqual(dataFramePool.maxBytes);
    expect(DEFAULT_MAX_FRAME_BYTES * 16).toBe(dataFramePool.maxBytes);
    agent.close();
    connector.close();
  });
});

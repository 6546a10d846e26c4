import { randomBytes } from 'node:crypto';

import type { LinkDescriptor } from './link';
import { Multiplexer } from './multiplexer';
import type { TunnelStream } from './stream';
import { collect, writeAll } from './testing/collect';
import { createMuxPair, settle, startPair, type MuxPair } from './testing/mux-pair';

const WINDOW = 16 * 1024;
const link = (terminalId: string): [LinkDescriptor, { terminalId: string }] => [{ kind: 'tcp-connect', host: 'pos.local', port: 2000 }, { terminalId }];

describe(`${Multiplexer.name} flow control`, () => {
  let pair: MuxPair;
  const agentStreams = new Map<string, TunnelStream>();

  async function setup(options: Parameters<typeof createMuxPair>[0] = {}): Promise<void> {
    agentStreams.clear();
    pair = createMuxPair(options);
    pair.agent.setOpenHandler((request) => {
      const stream = request.accept();
      agentStreams.set(request.terminalId ?? '', stream);
      if (request.terminalId?.startsWith('echo')) {
        stream.onData((chunk) => stream.write(chunk));
        stream.onEnd(() => stream.end());
      }
    });
    await startPair(pair);
  }

  afterEach(() => {
    pair.agent.close();
    pair.connector.close();
  });

  it('never buffers more than the window for a reader that does not read, and does not block another stream', async () => {
    await setup({
      agent: { initialWindow: WINDOW },
      connector: { initialWindow: WINDOW, streamHighWaterMark: 8 * 1024 },
    });
    let maxReadable = 0;
    const receive = pair.agent.receive.bind(pair.agent);
    pair.agent.receive = (message, isBinary) => {
      receive(message, isBinary);
      maxReadable = Math.max(maxReadable, agentStreams.get('slow')?.readableLength ?? 0);
    };

    const slow = await pair.connector.open(...link('slow'));
    agentStreams.get('slow')?.pause();
    const slowPayload = randomBytes(200 * 1024);
    const writeResults = [];
    for (let offset = 0; offset < slowPayload.length; offset += 8192) writeResults.push(slow.write(slowPayload.subarray(offset, offset + 8192)));

    const fast = await pair.connector.open(...link('echo-fast'));
    const fastPayload = randomBytes(300 * 1024);
    const echoed = collect(fast);
    await writeAll(fast, fastPayload);
    expect((await echoed).data.equals(fastPayload)).toBe(true);

    expect(writeResults[0]).toBe(true);
    expect(writeResults.at(-1)).toBe(false);
    expect(agentStreams.get('slow')?.readableLength).toBe(WINDOW);
    expect(maxReadable).toBe(WINDOW);
    expect(slow.bufferedAmount).toBe(slowPayload.length - WINDOW);

    const drained = new Promise<void>((resolve) => slow.onDrain(resolve));
    const slowReceived = collect(agentStreams.get('slow') as TunnelStream);
    agentStreams.get('slow')?.resume();
    slow.end();
    await drained;
    agentStreams.get('slow')?.end();
    expect((await slowReceived).data.equals(slowPayload)).toBe(true);
    expect(maxReadable).toBe(WINDOW);
  });

  it('buffers data that arrives before the first data listener and delivers it in order', async () => {
    await setup();
    const stream = await pair.connector.open(...link('late'));
    stream.write(Buffer.from('hello'));
    stream.write(Buffer.from(' world'));
    stream.end();
    await settle();
    const late = agentStreams.get('late') as TunnelStream;
    expect(late.readableLength).toBe(11);
    const received = collect(late);
    late.end();
    expect(await received).toEqual({
      data: Buffer.from('hello world'),
      ended: true,
      error: undefined,
    });
  });

  it('resets a stream whose writer ignores backpressure past the per-stream limit, and only that stream', async () => {
    await setup({
      agent: { initialWindow: WINDOW },
      connector: { streamQueueLimit: 64 * 1024, streamHighWaterMark: 16 * 1024 },
    });
    const greedy = await pair.connector.open(...link('greedy'));
    const polite = await pair.connector.open(...link('echo-polite'));
    agentStreams.get('greedy')?.pause();
    const greedyClosed = collect(greedy);
    const remoteClosed = collect(agentStreams.get('greedy') as TunnelStream);
    let accepted = 0;
    let reset = false;
    greedy.onClose(() => {
      reset = true;
    });
    for (let i = 0; i < 20 && !reset; i++) {
      greedy.write(new Uint8Array(8192));
      await settle(5);
      if (!reset) accepted += 8192;
    }
    expect((await greedyClosed).error).toMatchObject({ code: 'LIMIT_EXCEEDED', remote: false });
    expect((await remoteClosed).error).toMatchObject({ code: 'LIMIT_EXCEEDED', remote: true });
    expect(accepted).toBe(WINDOW + 64 * 1024);

    const payload = randomBytes(50_000);
    const echoed = collect(polite);
    await writeAll(polite, payload);
    expect((await echoed).data.equals(payload)).toBe(true);
    expect(pair.connector.stats.sendQueuedBytes).toBe(0);
  });

  it('bounds the bytes queued over all streams of one tunnel', async () => {
    await setup({
      agent: { initialWindow: 4096 },
      connector: {
        maxSendBufferBytes: 48 * 1024,
        streamQueueLimit: 40 * 1024,
        streamHighWaterMark: 16 * 1024,
      },
    });
    const first = await pair.connector.open(...link('a'));
    const second = await pair.connector.open(...link('b'));
    agentStreams.get('a')?.pause();
    agentStreams.get('b')?.pause();
    first.write(new Uint8Array(36 * 1024));
    await settle();
    expect(pair.connector.stats.sendQueuedBytes).toBe(32 * 1024);
    const secondClosed = collect(second);
    second.write(new Uint8Array(8 * 1024));
    second.write(new Uint8Array(16 * 1024));
    expect((await secondClosed).error).toMatchObject({ code: 'LIMIT_EXCEEDED' });
    expect(first.state).toBe('open');
    expect(pair.connector.stats.sendQueuedBytes).toBe(32 * 1024);
  });

  it('shrinks and then refuses receive windows when the tunnel receive budget is used up', async () => {
    await setup({ agent: { initialWindow: WINDOW, maxReceiveBufferBytes: 2 * WINDOW + 8192 } });
    await pair.connector.open(...link('1'));
    await pair.connector.open(...link('2'));
    const third = await pair.connector.open(...link('3'));
    expect(pair.agent.stats.receiveCommittedBytes).toBe(2 * WINDOW + 8192);
    await expect(pair.connector.open(...link('4'))).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      remote: true,
    });

    agentStreams.get('3')?.pause();
    third.write(new Uint8Array(20_000));
    await settle();
    expect(agentStreams.get('3')?.readableLength).toBe(8192);
    third.destroy();
    await settle();
    await expect(pair.connector.open(...link('5'))).resolves.toBeDefined();
  });

  it('holds DATA back while the transport has too many unflushed bytes', async () => {
    pair = createMuxPair({
      connector: { transportHighWaterMark: 20_000 },
      agent: { initialWindow: 256 * 1024 },
    });
    pair.agent.setOpenHandler((request) => request.accept());
    await startPair(pair);
    const stream = await pair.connector.open(...link('x'));
    const sent: number[] = [];
    const send = pair.connectorTransport.send.bind(pair.connectorTransport);
    const held: (() => void)[] = [];
    pair.connectorTransport.send = (frame, onFlushed) => {
      sent.push(frame.length);
      send(frame, () => undefined);
      held.push(() => onFlushed());
    };
    stream.write(new Uint8Array(100_000));
    await settle();
    expect(sent.reduce((a, b) => a + b, 0)).toBeLessThan(20_000 + 65_536);
    expect(stream.bufferedAmount).toBeGreaterThan(0);
    while (held.length > 0) {
      held.splice(0).forEach((release) => release());
      await settle();
    }
    expect(stream.bufferedAmount).toBe(0);
  });
});

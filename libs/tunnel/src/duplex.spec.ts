import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { toDuplex } from './duplex';
import type { TunnelStream } from './stream';
import { collect } from './testing/collect';
import { createMuxPair, startPair, type MuxPair } from './testing/mux-pair';

describe(toDuplex.name, () => {
  let pair: MuxPair;
  let accepted: Promise<TunnelStream>;

  beforeEach(async () => {
    pair = createMuxPair({
      agent: { initialWindow: 16 * 1024 },
      connector: { initialWindow: 16 * 1024 },
    });
    accepted = new Promise((resolve) => pair.agent.setOpenHandler((request) => resolve(request.accept())));
    await startPair(pair);
  });

  afterEach(() => {
    pair.agent.close();
    pair.connector.close();
  });

  it('pipes a Readable through the tunnel and a slow Writable applies backpressure', async () => {
    const payload = randomBytes(300_000);
    const stream = await pair.connector.open({ kind: 'tcp-connect', host: 'pos.local', port: 1 });
    const remote = await accepted;
    const chunks: Buffer[] = [];
    let maxReadable = 0;
    const slowSink = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        maxReadable = Math.max(maxReadable, remote.readableLength);
        setImmediate(callback);
      },
    });
    remote.end();
    await Promise.all([
      pipeline(Readable.from([payload.subarray(0, 100_000), payload.subarray(100_000)]), toDuplex(stream)),
      pipeline(toDuplex(remote), slowSink),
    ]);
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    expect(maxReadable).toBeLessThanOrEqual(16 * 1024);
  });

  it('ends gracefully behind bytes still waiting for credit: neither its finish nor its autoDestroy drops the tail', async () => {
    // The peer has ended its direction and reads nothing yet: 16 KiB of window, 40 KiB written, then end().
    const payload = randomBytes(40 * 1024);
    const stream = await pair.connector.open({ kind: 'tcp-connect', host: 'pos.local', port: 1 });
    const remote = await accepted;
    remote.pause();
    remote.end();
    const duplex = toDuplex(stream);
    duplex.resume(); // reads the peer's end, so the Duplex ends both ways
    const events: string[] = [];
    duplex.on('finish', () => events.push('finish'));
    duplex.on('close', () => events.push('close'));
    duplex.end(payload);
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    // 24 KiB wait for credit: the Duplex has not finished (until 2026-12-07 it had, autoDestroyed, and reset the stream).
    expect(events).toEqual([]);
    expect(stream.bufferedAmount).toBe(24 * 1024);
    const received = collect(remote);
    remote.resume();
    const { data, error } = await received;
    expect(error).toBeUndefined();
    expect(data.equals(payload)).toBe(true);
    await new Promise((resolve) => (duplex.closed ? resolve(undefined) : duplex.once('close', resolve)));
    expect(events).toEqual(['finish', 'close']);
    expect(stream.state).toBe('closed');
  });

  it('destroys the Duplex with the stream error when the peer resets', async () => {
    const stream = await pair.connector.open({ kind: 'tcp-connect', host: 'pos.local', port: 1 });
    const duplex = toDuplex(stream);
    const failed = new Promise<Error>((resolve) => duplex.on('error', resolve));
    (await accepted).destroy('LINK_ERROR', 'cable pulled');
    expect(await failed).toMatchObject({ code: 'LINK_ERROR', remote: true });
  });

  it('resets the stream when the Duplex is destroyed with an error', async () => {
    const stream = await pair.connector.open({ kind: 'tcp-connect', host: 'pos.local', port: 1 });
    const remoteClosed = collect(await accepted);
    const duplex = toDuplex(stream);
    const errored = new Promise((resolve) => duplex.on('error', resolve));
    duplex.destroy(new Error('session aborted'));
    expect(await errored).toMatchObject({ message: 'session aborted' });
    expect((await remoteClosed).error).toMatchObject({
      code: 'CANCELLED',
      message: 'session aborted',
      remote: true,
    });
  });

  it('bounds what a writer that ignores backpressure leaves waiting: past the stream limit the stream is reset (LIMIT_EXCEEDED)', async () => {
    // A session that answers every request of its peer writes without waiting for 'drain'; the peer reads nothing (no
    // credit). Until 2026-12-07 the writes piled up in the Duplex's own buffer without bound (a hostile agent grew the
    // connector's memory this way).
    const stream = await pair.connector.open({ kind: 'tcp-connect', host: 'pos.local', port: 1 });
    const remote = await accepted;
    remote.pause();
    const closed = new Promise<unknown>((resolve) => stream.onClose(resolve));
    const duplex = toDuplex(stream);
    duplex.on('error', () => undefined);
    let waiting = 0;
    for (let i = 0; i < 2048 && !duplex.destroyed; i++) {
      duplex.write(Buffer.alloc(1024));
      waiting = Math.max(waiting, duplex.writableLength + stream.bufferedAmount);
    }
    expect(await closed).toMatchObject({ code: 'LIMIT_EXCEEDED', remote: false });
    expect(waiting).toBeLessThanOrEqual(stream.writeLimit);
    expect(duplex.destroyed).toBe(true);
  });

  it('a writer that waits for drain is never cut: 2 MiB through a peer that reads slowly', async () => {
    const stream = await pair.connector.open({ kind: 'tcp-connect', host: 'pos.local', port: 1 });
    const remote = await accepted;
    const received = collect(remote);
    remote.end();
    const duplex = toDuplex(stream);
    duplex.resume();
    for (let i = 0; i < 2048; i++) {
      if (!duplex.write(Buffer.alloc(1024, i & 0xff))) await new Promise((resolve) => duplex.once('drain', resolve));
    }
    duplex.end();
    const { data, error } = await received;
    expect(error).toBeUndefined();
    expect(data.length).toBe(2048 * 1024);
  });
});

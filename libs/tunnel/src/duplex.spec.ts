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
});

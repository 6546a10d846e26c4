import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';

import { connectTcp, duplexTransport } from './byte-transport';

describe(duplexTransport.name, () => {
  it('passes bytes both ways and reports close once, also to late listeners', () => {
    const stream = new PassThrough();
    const sut = duplexTransport(stream);
    const received: string[] = [];
    const closes: (Error | undefined)[] = [];
    sut.onData((c) => received.push(Buffer.from(c).toString()));
    sut.onClose((e) => closes.push(e));
    sut.write(Buffer.from('ab'));
    return new Promise<void>((resolve) => {
      setImmediate(() => {
        expect(received).toEqual(['ab']);
        stream.destroy(new Error('boom'));
        stream.once('close', () => {
          expect(closes).toHaveLength(1);
          expect(closes[0]?.message).toBe('boom');
          sut.onClose((e) => {
            expect(e?.message).toBe('boom');
            resolve();
          });
        });
      });
    });
  });

  it('drops writes after close by default, or throws the configured error', async () => {
    const quiet = new PassThrough();
    const loud = new PassThrough();
    const a = duplexTransport(quiet);
    const b = duplexTransport(loud, { writeAfterClose: () => new Error('closed!') });
    quiet.destroy();
    loud.destroy();
    await new Promise((r) => setImmediate(r));
    expect(() => a.write(Buffer.from('x'))).not.toThrow();
    expect(() => b.write(Buffer.from('x'))).toThrow('closed!');
  });
});

describe(connectTcp.name, () => {
  let server: Server;
  let port: number;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    server = createServer((s) => {
      sockets.push(s);
      s.on('data', (d) => s.write(d));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => server.close(r));
  });

  it('connects and echoes', async () => {
    const t = await connectTcp({ host: '127.0.0.1', port, connectTimeoutMs: 2000, connectError: (m) => new Error(m) });
    const got = new Promise<string>((r) => t.onData((c) => r(Buffer.from(c).toString())));
    t.write(Buffer.from('ping'));
    expect(await got).toBe('ping');
    t.close();
  });

  it('rejects with the protocol error when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    await expect(connectTcp({ host: '127.0.0.1', port: deadPort, connectTimeoutMs: 2000, connectError: (m) => new Error(`X: ${m}`) })).rejects.toThrow(
      /^X: connect to 127\.0\.0\.1:\d+ failed/,
    );
  });
});

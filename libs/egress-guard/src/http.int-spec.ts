import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';

import { guardedFetch, guardedHttpRequest } from './http';
import { EgressPolicy } from './policy';
import { NAME_REFUSED } from './resolve';

/** Only loopback servers of this test are ever dialled. */
describe('guardedHttpRequest', () => {
  let server: Server;
  let port: number;
  const connections: string[] = [];
  const loopbackAllowed = EgressPolicy.fromList('127.0.0.1/32, ::1');

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/redirect') {
        res.writeHead(302, { location: `http://127.0.0.1:${port}/target` }).end();
        return;
      }
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => res.writeHead(201, { 'content-type': 'text/plain' }).end(`${req.method} ${req.url} ${req.headers.host} ${body}`));
    });
    server.on('connection', (socket) => connections.push(socket.remoteAddress ?? '?'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => connections.splice(0));

  it('connects to the checked address when the operator allows it', async () => {
    const res = await guardedHttpRequest({ url: `http://localhost:${port}/hook?x=1`, body: 'hi', timeoutMs: 5000, policy: loopbackAllowed, allowHttp: true });
    expect(res.status).toBe(201);
    expect(res.body.toString()).toBe(`POST /hook?x=1 localhost:${port} hi`);
    expect(connections).toEqual(['127.0.0.1']);
  });

  it.each([`http://127.0.0.1:PORT/`, `http://2130706433:PORT/`, `http://0x7f.1:PORT/`, `http://localhost.:PORT/`, `http://[::ffff:7f00:1]:PORT/`])(
    'never connects to a loopback destination under the strict policy (%s)',
    async (template) => {
      const error = await guardedHttpRequest({
        url: template.replace('PORT', String(port)),
        timeoutMs: 5000,
        policy: EgressPolicy.strict(),
        allowHttp: true,
      }).catch((e) => e);
      // A name (localhost.) is refused in the words used for every name, whatever it resolved to.
      expect(error).toMatchObject({ code: 'DENIED', publicReason: template.includes('localhost') ? NAME_REFUSED : 'destination not allowed' });
      expect(connections).toEqual([]);
    },
  );

  it('refuses plain http unless the operator allows it', async () => {
    const error = await guardedHttpRequest({ url: `http://127.0.0.1:${port}/`, timeoutMs: 5000, policy: loopbackAllowed }).catch((e) => e);
    expect(error).toMatchObject({ code: 'DENIED', publicReason: 'https required' });
    expect(connections).toEqual([]);
  });

  it('does not follow redirects', async () => {
    const res = await guardedHttpRequest({ url: `http://127.0.0.1:${port}/redirect`, timeoutMs: 5000, policy: loopbackAllowed, allowHttp: true });
    expect(res.status).toBe(302);
    expect(connections).toHaveLength(1);
  });

  it('gives the same public reason for a closed port and a port that never answers', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    // A listener that accepts and never answers.
    const silent: TcpServer = createTcpServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      const refused = await guardedHttpRequest({ url: `http://127.0.0.1:${closedPort}/`, timeoutMs: 2000, policy: loopbackAllowed, allowHttp: true }).catch(
        (e) => e,
      );
      const stalled = await guardedHttpRequest({ url: `http://127.0.0.1:${silentPort}/`, timeoutMs: 300, policy: loopbackAllowed, allowHttp: true }).catch(
        (e) => e,
      );
      expect(refused).toMatchObject({ code: 'CONNECT_FAILED', publicReason: 'no HTTP response' });
      expect(stalled).toMatchObject({ code: 'CONNECT_FAILED', publicReason: 'no HTTP response' });
      expect(refused.message).toContain('ECONNREFUSED');
    } finally {
      silent.close();
    }
  });

  /** A receiver that answers 200 and then never ends its body (it writes as fast as the client reads). */
  async function endlessBody(): Promise<{ port: number; closed: Promise<number>; close: () => Promise<void> }> {
    let closedWith!: (bytes: number) => void;
    const closed = new Promise<number>((resolve) => (closedWith = resolve));
    const endless = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let written = 0;
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) written += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => closedWith(written));
      res.on('error', () => undefined);
      pump();
    });
    await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
    return {
      port: (endless.address() as AddressInfo).port,
      closed,
      close: () =>
        new Promise<void>((resolve) => {
          endless.closeAllConnections();
          endless.close(() => resolve());
        }),
    };
  }

  it('stops reading an answer at maxResponseBytes and closes the connection: an endless body does not hold the request until its deadline', async () => {
    const receiver = await endlessBody();
    try {
      const request = guardedHttpRequest({
        url: `http://127.0.0.1:${receiver.port}/`,
        timeoutMs: 4_000,
        policy: loopbackAllowed,
        allowHttp: true,
        maxResponseBytes: 100_000,
      });
      // Before, the rest of the body was read (and dropped) until the deadline, and the request failed then.
      const res = await request;
      expect(res).toMatchObject({ status: 200, truncated: true });
      expect(res.body).toHaveLength(100_000);
      // The receiver sees its connection closed, however much it still had to send.
      await receiver.closed;
    } finally {
      await receiver.close();
    }
  });

  it('with maxResponseBytes 0 reads no body: the answer is its status line and headers', async () => {
    const receiver = await endlessBody();
    try {
      const res = await guardedHttpRequest({
        url: `http://127.0.0.1:${receiver.port}/`,
        timeoutMs: 4_000,
        policy: loopbackAllowed,
        allowHttp: true,
        maxResponseBytes: 0,
      });
      expect(res).toMatchObject({ status: 200, truncated: true, body: Buffer.alloc(0) });
      await receiver.closed;
    } finally {
      await receiver.close();
    }
  });

  it('reads a whole answer within maxResponseBytes (not truncated)', async () => {
    const res = await guardedHttpRequest({
      url: `http://127.0.0.1:${port}/x`,
      body: 'y',
      timeoutMs: 5000,
      policy: loopbackAllowed,
      allowHttp: true,
      maxResponseBytes: 1024,
    });
    expect(res).toMatchObject({ status: 201, truncated: false });
    expect(res.body.toString()).toBe(`POST /x 127.0.0.1:${port} y`);
  });

  it("guardedFetch leaves the deadline to the caller's signal (its own timeout is only a backstop)", async () => {
    const silent: TcpServer = createTcpServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const fetchLike = guardedFetch({ policy: loopbackAllowed, allowHttp: true, timeoutMs: 50 });
      const signal = AbortSignal.timeout(300);
      const error = await fetchLike(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/`, { method: 'POST', body: 'x', signal }).catch((e) => e);
      // A client maps its own abort to TIMEOUT: the request must not have failed before the caller's signal fired.
      expect(signal.aborted).toBe(true);
      expect(error).toMatchObject({ code: 'CONNECT_FAILED', publicReason: 'no HTTP response' });
    } finally {
      silent.close();
    }
  });
});

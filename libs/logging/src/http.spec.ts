import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';

import { pinoHttp } from 'pino-http';

import { httpLogging } from './http';
import { createLogger } from './logger';

/** Captures the JSON lines a logger writes. */
function captured() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe(httpLogging.name, () => {
  const { lines, stream } = captured();
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const middleware = pinoHttp(
      httpLogging<IncomingMessage, ServerResponse>({
        logger: createLogger({ name: 'test', destination: stream }),
        genReqId: (req, res) => {
          const id = String(req.headers['x-request-id'] ?? 'generated-id');
          res.setHeader('X-Request-Id', id);
          return id;
        },
        fields: (req) => ({ route: req.url?.split('?')[0] }),
      }),
    );
    server = createServer((req, res) =>
      middleware(req, res, () => {
        req.log.info({ step: 'handler' }, 'inside the handler');
        res.statusCode = req.url === '/boom' ? 503 : 200;
        res.end('{}');
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const requestLine = (requestId: string) => lines.find((l) => l.msg === 'request' && l.requestId === requestId);

  it('writes one `request` line per request with ids only: no headers, no Authorization, no query', async () => {
    const res = await fetch(`${url}/v1/stores?token=pok_secret`, { headers: { 'x-request-id': 'req-0000001', authorization: 'Bearer pok_abc_secret' } });
    expect(res.headers.get('x-request-id')).toBe('req-0000001');
    const line = await waitForLine(() => requestLine('req-0000001'));
    expect(line).toEqual({
      level: 'info',
      time: expect.any(String),
      service: 'test',
      name: 'test',
      msg: 'request',
      requestId: 'req-0000001',
      method: 'GET',
      route: '/v1/stores',
      status: 200,
      ms: expect.any(Number),
    });
    expect(JSON.stringify(lines)).not.toContain('pok_');
  });

  it('binds the request id (only) to req.log', async () => {
    await fetch(`${url}/x`, { headers: { 'x-request-id': 'req-0000002' } });
    const inside = await waitForLine(() => lines.find((l) => l.msg === 'inside the handler' && l.requestId === 'req-0000002'));
    expect(inside).toMatchObject({ step: 'handler', requestId: 'req-0000002' });
    expect(inside).not.toHaveProperty('req');
  });

  it("logs a 5xx answer as the same info line (its cause is the error filter's to log)", async () => {
    await fetch(`${url}/boom`, { headers: { 'x-request-id': 'req-0000003' } });
    expect(await waitForLine(() => requestLine('req-0000003'))).toMatchObject({ level: 'info', msg: 'request', status: 503 });
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});

/** The line is written on the response's 'finish', which may come just after the client has read it. */
async function waitForLine<T>(find: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const found = find();
    if (found) return found;
    if (Date.now() > deadline) throw new Error('log line not written within 2 s');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

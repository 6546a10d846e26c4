import { connect } from 'node:net';

import type { Redis } from 'ioredis';
import { WebSocket } from 'ws';

import { Database } from '@payorch/db';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { AuthThrottle } from '../../apps/api-gateway/src/common/auth-throttle';
import { REDIS } from '../../apps/api-gateway/src/common/tokens';
import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { InProcessDispatcher } from '../e2e/support/in-process-dispatcher';

/** Security finding 6 of issue 13: input that made the gateway answer 500, or answer outside the error envelope. */
describe('hostile input (docs/security.md: input hygiene, error envelope, auth throttling)', () => {
  const session = new GatewaySession();
  const AUTH_FAILURE_LIMIT = 3;
  let dispatcher: InProcessDispatcher;
  let joinproto: JoinprotoTerminalSimulator;
  let auth: { Authorization: string };
  let authB: { Authorization: string };
  let apiKey: string;
  let storeId: string;
  let terminalId: string;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    // TRUST_PROXY lets each throttling test come from its own address (X-Forwarded-For); the rest come from 127.0.0.1.
    await session.start({ AUTH_FAILURE_LIMIT: String(AUTH_FAILURE_LIMIT), TRUST_PROXY: 'true' });
    const a = await session.tenant();
    apiKey = a.apiKey;
    auth = { Authorization: `Bearer ${a.apiKey}` };
    authB = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' })).body.id;
    terminalId = (
      await session
        .http()
        .post('/v1/terminals')
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } })
    ).body.id;
    joinproto = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    dispatcher.route(terminalId, { port: (await joinproto.listen(0)).port, options: { commandTimeoutMs: 300 } });
  });

  afterAll(async () => {
    await dispatcher.close();
    await joinproto.close();
    await session.stop();
  });

  afterEach(() => jest.restoreAllMocks());

  /** The one error body: `{error:{code,message,details,requestId}}`, requestId echoed in X-Request-Id. */
  function expectEnvelope(res: { status: number; headers: Record<string, string>; body: unknown }, status: number, code: string) {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(res.body as object)).toEqual(['error']);
    const { error } = res.body as { error: Record<string, unknown> };
    expect(Object.keys(error).sort()).toEqual(['code', 'details', 'message', 'requestId']);
    expect(error).toMatchObject({ code, message: expect.any(String), requestId: expect.any(String) });
    const requestId = error.requestId as string;
    expect(requestId.length).toBeGreaterThanOrEqual(8);
    expect(res.headers['x-request-id']).toBe(requestId);
    return (res.body as { error: { message: string; details: { issues?: { field: string; message: string }[] } } }).error;
  }
  const createStore = (body: string | object, headers: Record<string, string> = {}) =>
    session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).set(headers).send(body);
  const storeCount = () => session.owner.store.count();

  describe('the error envelope', () => {
    it('malformed JSON → 400 with the requestId', async () => {
      const res = await createStore('{"name": "A",', { 'Content-Type': 'application/json' });
      expect(expectEnvelope(res, 400, 'VALIDATION_FAILED').message).toMatch(/^malformed request/);
    });

    it('a body over the limit → 413 with the requestId', async () => {
      const res = await createStore({ name: 'A', timeZone: 'UTC', pad: 'x'.repeat(300 * 1024) });
      expectEnvelope(res, 413, 'VALIDATION_FAILED');
    });

    it('form-encoded or other non-JSON bodies → 415 before the handler; bodyless requests still pass', async () => {
      const before = await storeCount();
      const form = await createStore('name=Form&timeZone=UTC', { 'Content-Type': 'application/x-www-form-urlencoded' });
      expect(expectEnvelope(form, 415, 'VALIDATION_FAILED').message).toContain('application/json');
      expectEnvelope(await createStore('{"name":"Text","timeZone":"UTC"}', { 'Content-Type': 'text/plain' }), 415, 'VALIDATION_FAILED');
      expect(await storeCount()).toBe(before);
      // No body: reaches the handler (here: unknown operation → 404).
      const bodyless = await session.http().post('/v1/operations/00000000-0000-4000-8000-000000000000/cancel').set(auth).set('Idempotency-Key', idem());
      expectEnvelope(bodyless, 404, 'NOT_FOUND');
    });

    it('request header fields too large → 431 in the envelope, answered on the raw socket', async () => {
      const { port } = session.app.getHttpServer().address() as { port: number };
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.on('data', (chunk) => chunks.push(chunk));
        socket.on('error', reject);
        socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
        socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
      });
      const [head, body] = raw.split('\r\n\r\n') as [string, string];
      expect(head).toMatch(/^HTTP\/1\.1 431 /);
      expect(head).toMatch(/\r\ncontent-type: application\/json/i);
      const parsed = JSON.parse(body) as { error: { code: string; requestId: string } };
      expect(parsed).toEqual({ error: { code: 'VALIDATION_FAILED', message: expect.stringMatching(/header/i), details: null, requestId: expect.any(String) } });
      expect(head).toContain(`X-Request-Id: ${parsed.error.requestId}`);
    });

    it('unknown routes → 404 in the envelope (already so; keep it)', async () => {
      expectEnvelope(await session.http().get('/v1/nothing-here').set(auth), 404, 'NOT_FOUND');
      expectEnvelope(await session.http().delete('/nope'), 404, 'NOT_FOUND');
    });

    it('the OpenAPI document declares the envelope and the input errors of every operation', async () => {
      const doc = (await session.http().get('/docs/openapi.json')).body;
      expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'message', 'details', 'requestId']);
      const create = doc.paths['/v1/stores'].post.responses;
      for (const status of ['400', '401', '413', '415', '429', 'default']) {
        expect(create[status].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
      }
    });

    it('a refused event WebSocket upgrade answers with the envelope', async () => {
      const { port } = session.app.getHttpServer().address() as { port: number };
      const answer = await new Promise<{ status: number; headers: Record<string, string>; body: unknown }>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/events/ws`, { headers: { Authorization: 'Bearer pok_nothing_valid' } });
        ws.on('open', () => reject(new Error('upgrade accepted')));
        ws.on('error', () => undefined);
        ws.on('unexpected-response', (_req, res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body: JSON.parse(text) });
            } catch {
              reject(new Error(`not a JSON body: ${JSON.stringify(text)}`));
            }
          });
        });
      });
      expectEnvelope(answer, 401, 'UNAUTHENTICATED');
    });

    /** Sends `request` on a raw socket and returns what the gateway answered before closing it. */
    const rawExchange = (request: string) =>
      new Promise<{ head: string; body: { error: { code: string; message: string } } }>((resolve, reject) => {
        const { port } = session.app.getHttpServer().address() as { port: number };
        const socket = connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.on('data', (chunk) => chunks.push(chunk));
        socket.on('error', reject);
        socket.on('close', () => {
          const [head, body] = Buffer.concat(chunks).toString('utf8').split('\r\n\r\n') as [string, string];
          try {
            resolve({ head, body: JSON.parse(body) });
          } catch {
            reject(new Error(`not an envelope: ${JSON.stringify(head)} ${JSON.stringify(body)}`));
          }
        });
        socket.write(request);
      });
    const upgradeHeaders =
      'Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

    it('an upgrade whose request target URL cannot parse → 400 in the envelope, and the gateway stays up', async () => {
      // Node's parser accepts these targets; `new URL` threw in the parser's callback and the process exited (until 2026-12-07).
      for (const target of ['//[/', 'http://a:99999/', '//[/../v1/events/ws']) {
        const { head, body } = await rawExchange(`GET ${target} HTTP/1.1\r\n${upgradeHeaders}`);
        expect(head).toMatch(/^HTTP\/1\.1 400 /);
        expect(body.error).toMatchObject({ code: 'VALIDATION_FAILED', message: 'malformed request target' });
      }
      expect((await session.http().get('/health/live')).status).toBe(200);
    });

    it('an upgrade to any other path → 404 in the envelope at once (it was left unanswered, its socket open)', async () => {
      for (const upgrade of [
        upgradeHeaders,
        'Host: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
      ]) {
        const { head, body } = await rawExchange(`GET /v1/stores HTTP/1.1\r\n${upgrade}`);
        expect(head).toMatch(/^HTTP\/1\.1 404 /);
        expect(body.error.code).toBe('NOT_FOUND');
        expect(body.error.message).toContain('/v1/events/ws');
      }
    });

    it('a client that resets its connection while its upgrade is being authenticated leaves the gateway up', async () => {
      // Node stops watching an upgraded socket for errors: a reset before ws took it over was an unhandled 'error' event,
      // which ended the process (until 2026-12-07). The upgrade is held at its first await until the reset is in.
      const { port } = session.app.getHttpServer().address() as { port: number };
      const throttle = session.app.get(AuthThrottle);
      const retryAfter = throttle.retryAfter.bind(throttle);
      let reached!: () => void;
      let release!: () => void;
      const arrived = new Promise<void>((resolve) => (reached = resolve));
      const held = new Promise<void>((resolve) => (release = resolve));
      jest.spyOn(throttle, 'retryAfter').mockImplementationOnce(async (...args) => {
        reached();
        await held;
        return retryAfter(...args);
      });
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve));
      // A wrong key: the gateway then writes its 401 to the socket the client has reset (an 'error' event on it).
      socket.write(`GET /v1/events/ws HTTP/1.1\r\nAuthorization: Bearer pok_nothing_valid\r\nX-Forwarded-For: 203.0.113.77\r\n${upgradeHeaders}`);
      await arrived;
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.resetAndDestroy();
      await closed;
      release();
      for (let i = 0; i < 3; i++) expect((await session.http().get('/health/live')).status).toBe(200);
    });
  });

  describe('body depth and string content, before any processing', () => {
    it('200 KB of nested arrays → 400 naming the path (no stack overflow, gateway stays up)', async () => {
      const depth = 100_000;
      const res = await createStore(`{"timeZone":"UTC","name":${'['.repeat(depth)}${']'.repeat(depth)}}`, { 'Content-Type': 'application/json' });
      const error = expectEnvelope(res, 400, 'VALIDATION_FAILED');
      expect(error.details.issues![0]!.field).toMatch(/^name(\.0)+$/);
      expect(error.details.issues![0]!.message).toContain('32');
      expect((await session.http().get('/health')).status).toBe(200);
    });

    it('a body nested just past the limit → 400; at the limit it is judged by the schema', async () => {
      const nest = (n: number): unknown => (n === 0 ? 'x' : { a: nest(n - 1) });
      const deep = await createStore({ name: 'A', timeZone: 'UTC', extra: nest(40) });
      expect(expectEnvelope(deep, 400, 'VALIDATION_FAILED').details.issues![0]!.field).toMatch(/^extra(\.a)+$/);
      const shallow = await createStore({ name: 'A', timeZone: 'UTC', extra: nest(5) });
      expect(expectEnvelope(shallow, 400, 'VALIDATION_FAILED').message).toContain('extra');
    });

    it('NUL in a body string → 400 VALIDATION_FAILED with the field path, nothing stored', async () => {
      const before = await storeCount();
      const res = await createStore({ name: 'Evil\u0000Store', timeZone: 'UTC' });
      const error = expectEnvelope(res, 400, 'VALIDATION_FAILED');
      expect(error.details.issues).toEqual([{ field: 'name', message: expect.stringContaining('NUL') }]);
      const nested = await session
        .http()
        .post('/v1/terminals')
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1\u0000evil', port: 1 } });
      expect(expectEnvelope(nested, 400, 'VALIDATION_FAILED').details.issues![0]!.field).toBe('connection.host');
      expect(await storeCount()).toBe(before);
    });

    it('NUL in a key, or a lone surrogate anywhere → 400 with the path', async () => {
      const key = await createStore(`{"name":"A","timeZone":"UTC","meta":{"k\\u0000":1}}`, { 'Content-Type': 'application/json' });
      expect(expectEnvelope(key, 400, 'VALIDATION_FAILED').details.issues![0]!.field).toBe('meta.k\\u0000');
      const before = await storeCount();
      const surrogate = await createStore(`{"name":"Caf\\ud800e","timeZone":"UTC"}`, { 'Content-Type': 'application/json' });
      expect(expectEnvelope(surrogate, 400, 'VALIDATION_FAILED').details.issues).toEqual([{ field: 'name', message: expect.stringContaining('surrogate') }]);
      expect(await storeCount()).toBe(before);
    });

    it('NUL in a query parameter or a path segment never reaches PostgreSQL → 400', async () => {
      const query = await session.http().get('/v1/wallet-payments?orderNumber=A%00B').set(auth);
      expect(expectEnvelope(query, 400, 'VALIDATION_FAILED').details.issues).toEqual([{ field: 'orderNumber', message: expect.stringContaining('NUL') }]);
      const path = await session.http().get('/v1/stores/%00').set(auth);
      expectEnvelope(path, 400, 'VALIDATION_FAILED');
    });
  });

  describe('amounts per operation type, before any terminal is touched', () => {
    const start = (body: object) => session.http().post(`/v1/terminals/${terminalId}/operations?wait=2000`).set(auth).set('Idempotency-Key', idem()).send(body);

    it('a zero-amount purchase → 400 on amount; the dispatcher and the terminal never see it', async () => {
      const commands = dispatcher.commands.length;
      const journal = joinproto.journal.length;
      const res = await start({ type: 'purchase', amount: 0, currency: 'RUB' });
      expect(expectEnvelope(res, 400, 'VALIDATION_FAILED').details.issues).toEqual([{ field: 'amount', message: expect.stringContaining('greater than 0') }]);
      expect(dispatcher.commands.length).toBe(commands);
      expect(joinproto.journal.length).toBe(journal);
      expect(await session.owner.terminalOperation.count({ where: { terminalId, amount: 0 } })).toBe(0);
    });

    it.each([
      ['refund without amount', { type: 'refund', currency: 'RUB', originalOperationId: '00000000-0000-4000-8000-000000000000' }, 'amount'],
      ['preauth with a zero amount', { type: 'preauth', amount: 0, currency: 'RUB' }, 'amount'],
      ['capture with a negative amount', { type: 'preauth_capture', amount: -5, originalOperationId: '00000000-0000-4000-8000-000000000000' }, 'amount'],
      ['purchase over 12 digits', { type: 'purchase', amount: 1_000_000_000_000, currency: 'RUB' }, 'amount'],
      ['purchase with a fractional amount', { type: 'purchase', amount: 10.5, currency: 'RUB' }, 'amount'],
      ['cashback of zero', { type: 'purchase_with_cashback', amount: 1000, cashbackAmount: 0, currency: 'RUB' }, 'cashbackAmount'],
      ['cashback on a plain purchase', { type: 'purchase', amount: 1000, cashbackAmount: 100, currency: 'RUB' }, 'cashbackAmount'],
      ['an amount on a settlement', { type: 'settlement', amount: 100 }, 'amount'],
      ['an amount on a void', { type: 'void', amount: 100, originalOperationId: '00000000-0000-4000-8000-000000000000' }, 'amount'],
      ['an amount on a balance inquiry', { type: 'balance_inquiry', amount: 1 }, 'amount'],
    ])('%s → 400 naming the field, nothing dispatched', async (_name, body, field) => {
      const commands = dispatcher.commands.length;
      const res = await start(body);
      expect(expectEnvelope(res, 400, 'VALIDATION_FAILED').details.issues!.map((i) => i.field)).toEqual([field]);
      expect(dispatcher.commands.length).toBe(commands);
    });

    it('a valid purchase still reaches the terminal and is approved', async () => {
      const res = await start({ type: 'purchase', amount: 1500, currency: 'RUB' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ state: 'approved', amount: 1500 });
    });
  });

  describe('failed authentication is throttled per source address', () => {
    it(`${AUTH_FAILURE_LIMIT} wrong keys → 401 each, then 429 with Retry-After without checking any key, even a valid one`, async () => {
      const from = { 'X-Forwarded-For': '203.0.113.7' };
      for (let i = 0; i < AUTH_FAILURE_LIMIT; i++) {
        const res = await session
          .http()
          .get('/v1/stores')
          .set(from)
          .set('Authorization', `Bearer pok_wrong${i}_${'x'.repeat(32)}`);
        expectEnvelope(res, 401, 'UNAUTHENTICATED');
      }
      const lookup = jest.spyOn(Database.prototype, 'findApiKeyByPrefix');
      const limited = await session
        .http()
        .get('/v1/stores')
        .set(from)
        .set('Authorization', `Bearer pok_wrong_${'y'.repeat(32)}`);
      const error = expectEnvelope(limited, 429, 'RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(error.details).toMatchObject({ retryAfterSeconds: Number(limited.headers['retry-after']) });
      const valid = await session.http().get('/v1/stores').set(from).set(auth);
      expectEnvelope(valid, 429, 'RATE_LIMITED');
      expect(lookup).not.toHaveBeenCalled();
      // Another address is unaffected, and the refused attempts were counted.
      expect((await session.http().get('/v1/stores').set('X-Forwarded-For', '198.51.100.9').set(auth)).status).toBe(200);
      const metrics = (await session.http().get('/metrics')).text;
      expect(metrics).toMatch(/payorch_auth_failures_total\{[^}]*reason="invalid_key"[^}]*\} [3-9]/);
      expect(metrics).toMatch(/payorch_auth_throttled_total\{[^}]*\} [2-9]/);
    });

    it("a failure on a real key's prefix (wrong secret, revoked key) is written to that tenant's audit log", async () => {
      const t = await session.tenant();
      const prefix = t.apiKey.split('_').slice(0, 2).join('_');
      const from = { 'X-Forwarded-For': '203.0.113.10' };
      expectEnvelope(
        await session
          .http()
          .get('/v1/stores')
          .set(from)
          .set('Authorization', `Bearer ${prefix}_${'w'.repeat(43)}`),
        401,
        'UNAUTHENTICATED',
      );
      await session.admin.revokeApiKey(t.apiKeyId);
      expectEnvelope(
        await session.http().get('/v1/stores').set({ 'X-Forwarded-For': '203.0.113.11' }).set('Authorization', `Bearer ${t.apiKey}`),
        401,
        'UNAUTHENTICATED',
      );
      const rows = await session.owner.auditLog.findMany({ where: { tenantId: t.tenantId, action: 'api_key.auth_failed' }, orderBy: { createdAt: 'asc' } });
      expect(rows.map((r) => [r.actorType, r.actorId, r.resourceId, (r.details as { reason: string }).reason])).toEqual([
        ['anonymous', '203.0.113.10', t.apiKeyId, 'invalid_key'],
        ['anonymous', '203.0.113.11', t.apiKeyId, 'revoked_key'],
      ]);
      // No secret reaches the audit row.
      expect(JSON.stringify(rows)).not.toContain(t.apiKey);
    });

    it('the event WebSocket upgrade counts toward the same throttle', async () => {
      const { port } = session.app.getHttpServer().address() as { port: number };
      const upgrade = (key: string) =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/events/ws`, { headers: { Authorization: `Bearer ${key}`, 'X-Forwarded-For': '203.0.113.8' } });
          ws.on('open', () => {
            ws.terminate();
            resolve(101);
          });
          ws.on('error', () => undefined);
          ws.on('unexpected-response', (_req, res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
        });
      const statuses: number[] = [];
      for (let i = 0; i <= AUTH_FAILURE_LIMIT; i++) statuses.push(await upgrade(`pok_wrong${i}_${'z'.repeat(32)}`));
      expect(statuses).toEqual([...Array<number>(AUTH_FAILURE_LIMIT).fill(401), 429]);
      expect(await upgrade(apiKey)).toBe(429);
    });

    it('with Redis down the throttle fails open: wrong keys get 401 and valid keys 200, never 500', async () => {
      const redis = session.app.get<Redis>(REDIS, { strict: false });
      redis.disconnect();
      try {
        const from = { 'X-Forwarded-For': '203.0.113.9' };
        for (let i = 0; i <= AUTH_FAILURE_LIMIT; i++) {
          expectEnvelope(
            await session
              .http()
              .get('/v1/stores')
              .set(from)
              .set('Authorization', `Bearer pok_down${i}_${'x'.repeat(32)}`),
            401,
            'UNAUTHENTICATED',
          );
        }
        expect((await session.http().get('/v1/stores').set(from).set(auth)).status).toBe(200);
      } finally {
        await redis.connect();
      }
    });
  });

  describe('probes that already pass (keep them passing)', () => {
    it('unknown JSON fields and wrong types → 400 naming the fields', async () => {
      const unknown = await createStore({ name: 'A', timeZone: 'UTC', isAdmin: true });
      expect(expectEnvelope(unknown, 400, 'VALIDATION_FAILED').message).toContain('isAdmin');
      const types = await createStore({ name: 42, timeZone: ['UTC'] });
      expect(
        expectEnvelope(types, 400, 'VALIDATION_FAILED')
          .details.issues!.map((i) => i.field)
          .sort(),
      ).toEqual(['name', 'timeZone']);
    });

    it('huge and non-finite numbers → 400, never 500', async () => {
      const start = (raw: string) =>
        session
          .http()
          .post(`/v1/terminals/${terminalId}/operations`)
          .set(auth)
          .set('Idempotency-Key', idem())
          .set('Content-Type', 'application/json')
          .send(raw);
      expect(expectEnvelope(await start('{"type":"purchase","amount":1e400,"currency":"RUB"}'), 400, 'VALIDATION_FAILED').details.issues![0]!.field).toBe(
        'amount',
      );
      expect(
        expectEnvelope(await start('{"type":"purchase","amount":123456789012345678901234567890,"currency":"RUB"}'), 400, 'VALIDATION_FAILED').details
          .issues![0]!.field,
      ).toBe('amount');
    });

    it("another tenant's id → 404, a malformed id → 400", async () => {
      expectEnvelope(await session.http().get(`/v1/stores/${storeId}`).set(authB), 404, 'NOT_FOUND');
      expectEnvelope(await session.http().get(`/v1/terminals/${terminalId}`).set(authB), 404, 'NOT_FOUND');
      expectEnvelope(await session.http().get('/v1/stores/not-a-uuid').set(auth), 400, 'VALIDATION_FAILED');
    });
  });
});

import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';

import { WebSocket } from 'ws';

import { publishEvent } from '@payorch/db';
import { waitFor } from '@payorch/testing';

import { EventHub } from '../../apps/api-gateway/src/events/event-hub';
import { EventsService } from '../../apps/api-gateway/src/events/events.service';
import { GatewaySession, idem } from '../e2e/support/gateway-session';

interface Caller {
  tenantId: string;
  apiKey: string;
}

interface SseStream {
  status: number;
  headers: IncomingMessage['headers'];
  text: () => string;
  ended: () => boolean;
  close: () => void;
}

/**
 * One tenant with a valid API key trying to degrade the service for the others (noisy neighbour): what it can hold
 * open or spend is bounded per tenant (docs/security.md, "Per-tenant limits").
 */
describe('tenant resource exhaustion (docs/security.md: per-tenant limits)', () => {
  const session = new GatewaySession();
  const MAX_STREAMS = 3;
  const PER_KEY = 20;
  const PER_TENANT = 30;
  const MAX_KEYS = 4;
  const HEARTBEAT_SECONDS = 60;
  const CATCHUP = 2;
  const opened: Array<{ close: () => void }> = [];
  let service: EventsService;
  let hub: EventHub;
  let port: number;

  beforeAll(async () => {
    await session.start({
      EVENTS_MAX_STREAMS_PER_TENANT: String(MAX_STREAMS),
      RATE_LIMIT_PER_MINUTE: String(PER_KEY),
      RATE_LIMIT_PER_TENANT_PER_MINUTE: String(PER_TENANT),
      API_KEYS_MAX_PER_TENANT: String(MAX_KEYS),
      EVENTS_HEARTBEAT_MS: String(HEARTBEAT_SECONDS * 1000),
      EVENTS_CATCHUP_LIMIT: String(CATCHUP),
    });
    service = session.app.get(EventsService);
    hub = session.app.get(EventHub);
    port = (session.app.getHttpServer().address() as AddressInfo).port;
  });

  afterEach(async () => {
    for (const stream of opened.splice(0)) stream.close();
    // Every stream of the test is gone on the server too before the next test counts its own.
    await waitFor(() => hub.size === 0, { what: 'every event stream of the test closed on the gateway' });
    jest.restoreAllMocks();
  });

  afterAll(() => session.stop());

  /** Opens `GET /v1/events/stream`; resolves with the answer's head, the body keeps accumulating in text(). */
  function openSse(caller: Caller, headers: Record<string, string> = {}): Promise<SseStream> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/v1/events/stream',
          headers: { Accept: 'text/event-stream', Authorization: `Bearer ${caller.apiKey}`, ...headers },
        },
        (res) => {
          let body = '';
          let ended = false;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => (ended = true));
          res.on('close', () => (ended = true));
          res.on('error', () => undefined);
          const stream = { status: res.statusCode ?? 0, headers: res.headers, text: () => body, ended: () => ended, close: () => req.destroy() };
          opened.push(stream);
          resolve(stream);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  const live = (stream: SseStream) => waitFor(() => stream.text().includes('\n: live\n'), { what: 'the stream to be live' });
  const errorOf = (stream: SseStream) => JSON.parse(stream.text()) as { error: { code: string; message: string; details: unknown; requestId: string } };
  const finished = (stream: SseStream) => waitFor(() => stream.ended(), { what: 'the refusal to be read' });

  /** Opens `GET /v1/events/ws`: the open socket, or the refusal's status, headers and envelope. */
  function openWs(
    caller: Caller,
  ): Promise<{ ws: WebSocket } | { status: number; headers: IncomingMessage['headers']; body: { error: { code: string; details: unknown } } }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/events/ws`, { headers: { Authorization: `Bearer ${caller.apiKey}` } });
      ws.once('open', () => {
        opened.push({ close: () => ws.terminate() });
        resolve({ ws });
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(body) }));
      });
      ws.on('error', reject);
    });
  }

  /** A sample of /metrics: the metric's line that has the label. */
  const metric = async (name: string, label: string) => {
    const text = (await session.http().get('/metrics')).text;
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  };

  describe('live event streams', () => {
    it('one tenant holds at most EVENTS_MAX_STREAMS_PER_TENANT streams, SSE and WebSocket together; one more is 429 TOO_MANY_STREAMS in the envelope; other tenants are not affected', async () => {
      const a = await session.tenant();
      const b = await session.tenant();
      const refusedBefore = await metric('payorch_event_streams_refused_total', 'transport="sse"');
      const first = await openSse(a);
      const second = await openSse(a);
      await Promise.all([live(first), live(second)]);
      const ws = await openWs(a);
      expect('ws' in ws).toBe(true);
      await waitFor(() => service.openStreams(a.tenantId) === MAX_STREAMS, { what: 'three streams open' });

      const refused = await openSse(a, { 'X-Request-Id': 'too-many-streams-1' });
      await finished(refused);
      expect(refused.status).toBe(429);
      expect(refused.headers['content-type']).toMatch(/^application\/json/);
      expect(refused.headers['retry-after']).toBe(String(HEARTBEAT_SECONDS));
      expect(errorOf(refused)).toEqual({
        error: {
          code: 'TOO_MANY_STREAMS',
          message: `this tenant already holds ${MAX_STREAMS} live event streams on this gateway (the most it may); close one first`,
          details: { limit: MAX_STREAMS, retryAfterSeconds: HEARTBEAT_SECONDS },
          requestId: 'too-many-streams-1',
        },
      });
      const refusedWs = await openWs(a);
      expect(refusedWs).toMatchObject({
        status: 429,
        headers: { 'retry-after': String(HEARTBEAT_SECONDS) },
        body: { error: { code: 'TOO_MANY_STREAMS', details: { limit: MAX_STREAMS, retryAfterSeconds: HEARTBEAT_SECONDS } } },
      });
      expect(service.openStreams(a.tenantId)).toBe(MAX_STREAMS);
      expect(await metric('payorch_event_streams_refused_total', 'transport="sse"')).toBe(refusedBefore + 1);
      // The first streams of this gateway: A's.
      expect(await metric('payorch_event_streams_open', 'transport="sse"')).toBe(2);
      expect(await metric('payorch_event_streams_open', 'transport="websocket"')).toBe(1);

      // Another tenant's streams are its own: A holding all of its streams takes nothing from B.
      const ofB = await openSse(b);
      expect(ofB.status).toBe(200);
      await live(ofB);
      // The streams A still holds are unharmed.
      expect(first.ended()).toBe(false);
      expect(second.ended()).toBe(false);
    });

    it('a stream its client closes frees its slot (SSE and WebSocket)', async () => {
      const a = await session.tenant();
      const sse1 = await openSse(a);
      const sse2 = await openSse(a);
      await Promise.all([live(sse1), live(sse2)]);
      const ws = await openWs(a);
      if (!('ws' in ws)) throw new Error(`websocket refused: ${ws.status}`);
      await waitFor(() => service.openStreams(a.tenantId) === MAX_STREAMS, { what: 'three streams open' });
      const full = await openSse(a);
      await finished(full);
      expect(full.status).toBe(429);

      ws.ws.terminate();
      await waitFor(() => service.openStreams(a.tenantId) === MAX_STREAMS - 1, { what: 'the closed WebSocket to free its slot' });
      const sse3 = await openSse(a);
      expect(sse3.status).toBe(200);
      await live(sse3);

      sse1.close();
      await waitFor(() => service.openStreams(a.tenantId) === MAX_STREAMS - 1, { what: 'the closed SSE stream to free its slot' });
      const again = await openWs(a);
      expect('ws' in again).toBe(true);
      await waitFor(() => service.openStreams(a.tenantId) === MAX_STREAMS, { what: 'three streams open again' });
    });

    it('a stream the gateway ends (catch-up limit reached) frees its slot', async () => {
      const a = await session.tenant();
      const emit = (n: number) =>
        session.appDb.withTenant(a.tenantId, (tx) =>
          publishEvent(tx, a.tenantId, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n } }),
        );
      const anchor = await emit(0);
      for (let n = 1; n <= CATCHUP + 1; n++) await emit(n);
      // More times than the tenant has slots: each ended stream gave its slot back.
      for (let i = 0; i <= MAX_STREAMS; i++) {
        const stream = await openSse(a, { 'Last-Event-ID': anchor.id });
        expect(stream.status).toBe(200);
        await waitFor(() => stream.ended(), { what: 'the gateway to end the stream at the catch-up limit' });
        expect(stream.text()).toContain(': catch-up limit reached');
      }
      await waitFor(() => service.openStreams(a.tenantId) === 0, { what: 'every slot free' });
    });

    it('a client that goes away before its stream is opened leaves nothing behind (no stream, timer or slot)', async () => {
      const a = await session.tenant();
      const sse = jest.spyOn(service, 'sse');
      const admit = jest.spyOn(service, 'admit');
      // More than the tenant's slots, enough that some close before the handler runs, within the key's budget (2 requests each).
      const ATTEMPTS = 8;
      /**
       * Sends the request and is gone at once (a reset: the gateway's end of the connection is closed, not half-open):
       * the gateway authenticates it (a database read) after the connection closed.
       */
      const hitAndRun = (request: string) =>
        new Promise<void>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () => {
            socket.write(request, () => {
              socket.resetAndDestroy();
              resolve();
            });
          });
          socket.on('error', reject);
        });
      for (let i = 0; i < ATTEMPTS; i++) {
        await hitAndRun(`GET /v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${a.apiKey}\r\n\r\n`);
        await hitAndRun(
          `GET /v1/events/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${a.apiKey}\r\n\r\n`,
        );
      }
      await waitFor(() => sse.mock.calls.length === ATTEMPTS, { what: 'every request to reach the stream handler' });
      await Promise.allSettled(sse.mock.results.map((r) => r.value as Promise<void>));
      // The upgrades: each took its slot after the socket had closed (nothing more of it runs after admit).
      await waitFor(() => admit.mock.calls.filter(([, transport]) => transport === 'websocket').length === ATTEMPTS, {
        what: 'every upgrade to be admitted',
      });
      expect(service.openStreams(a.tenantId)).toBe(0);
      // Nothing listens for the tenant's events (a stream kept open for a gone client would, forever).
      expect(hub.size).toBe(0);
      // And the tenant still gets its streams.
      const stream = await openSse(a);
      expect(stream.status).toBe(200);
      await live(stream);
    });
  });

  describe('request budget', () => {
    it("is per tenant as well as per key: a tenant's many keys share RATE_LIMIT_PER_TENANT_PER_MINUTE", async () => {
      const a = await session.tenant();
      const second = await session.admin.createApiKey({ tenantId: a.tenantId, name: 'second', scopes: ['read'] });
      const b = await session.tenant();
      const get = (apiKey: string, requestId = idem()) =>
        session.http().get('/v1/stores').set('Authorization', `Bearer ${apiKey}`).set('X-Request-Id', requestId);

      for (let i = 0; i < PER_KEY; i++) expect((await get(a.apiKey)).status).toBe(200);
      // The first key spent its whole budget; the second has its own, but only what is left of the tenant's.
      for (let i = 0; i < PER_TENANT - PER_KEY; i++) {
        const res = await get(second.apiKey);
        expect(res.status).toBe(200);
        expect(res.headers['x-ratelimit-limit-tenant']).toBe(String(PER_TENANT));
      }
      const limited = await get(second.apiKey, 'tenant-budget-0001');
      expect(limited.status).toBe(429);
      const retryAfter = Number(limited.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(limited.body).toEqual({
        error: {
          code: 'RATE_LIMITED',
          message: `rate limit of ${PER_TENANT} requests per minute for the tenant (all its API keys) exceeded; retry in ${retryAfter}s`,
          details: { limit: PER_TENANT, retryAfterSeconds: retryAfter, scope: 'tenant' },
          requestId: 'tenant-budget-0001',
        },
      });

      // Another tenant is not affected.
      expect((await get(b.apiKey)).status).toBe(200);
    });

    it('event WebSocket upgrades spend the request budget like any request', async () => {
      const a = await session.tenant();
      for (let i = 0; i < PER_KEY; i++) expect((await session.http().get('/v1/stores').set('Authorization', `Bearer ${a.apiKey}`)).status).toBe(200);
      const refused = await openWs(a);
      expect(refused).toMatchObject({
        status: 429,
        body: { error: { code: 'RATE_LIMITED', details: { limit: PER_KEY, scope: 'key' } } },
      });
      if ('ws' in refused) throw new Error('the upgrade was accepted');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    });
  });

  describe('API keys', () => {
    const createKey = (caller: Caller) =>
      session
        .http()
        .post('/v1/api-keys')
        .set('Authorization', `Bearer ${caller.apiKey}`)
        .set('Idempotency-Key', idem())
        .send({ name: 'extra', scopes: ['read'] });

    it('a tenant holds at most API_KEYS_MAX_PER_TENANT working keys; one more is 409 CONFLICT (api_key_limit) until one is revoked', async () => {
      const a = await session.tenant();
      const created: string[] = [];
      // The tenant's first key (made by the operator) counts.
      for (let i = 1; i < MAX_KEYS; i++) {
        const res = await createKey(a);
        expect(res.status).toBe(201);
        created.push(res.body.id as string);
      }
      const refused = await createKey(a);
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'api_key_limit', limit: MAX_KEYS } });

      const revoke = await session.http().post(`/v1/api-keys/${created[0]}/revoke`).set('Authorization', `Bearer ${a.apiKey}`).set('Idempotency-Key', idem());
      expect(revoke.status).toBe(200);
      expect((await createKey(a)).status).toBe(201);
    });

    it('concurrent creations cannot pass the limit together', async () => {
      const a = await session.tenant();
      for (let i = 2; i < MAX_KEYS; i++) expect((await createKey(a)).status).toBe(201);
      const answers = await Promise.all([createKey(a), createKey(a), createKey(a)]);
      expect(answers.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    });
  });
});

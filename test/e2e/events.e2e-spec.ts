import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Redis } from 'ioredis';
import { Client } from 'pg';
import { WebSocket } from 'ws';

import { publishEvent, type PublishedEvent } from '@payorch/db';
import { notifyCommitted, redisEventSink } from '@payorch/operations';
import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { EventHub } from '../../apps/api-gateway/src/events/event-hub';
import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
}

/** A minimal SSE client over node:http (the parsing rules of the EventSource spec that we use). */
class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status = 0;
  ended = false;
  private res: IncomingMessage | undefined;
  private buffer = '';
  private readonly req;

  constructor(port: number, path: string, headers: Record<string, string>, options: { paused?: boolean } = {}) {
    this.req = httpRequest({ host: '127.0.0.1', port, path, headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      this.res = res;
      this.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      if (options.paused) res.pause();
      res.on('data', (chunk: string) => this.push(chunk));
      res.on('end', () => (this.ended = true));
      res.on('close', () => (this.ended = true));
    });
    this.req.on('error', () => (this.ended = true));
    this.req.on('socket', (socket) => socket.on('close', () => (this.ended = true)));
    this.req.end();
  }

  get body(): string {
    return this.buffer;
  }

  async waitFor(predicate: (c: this) => boolean, what: string, ms = 5000): Promise<void> {
    await waitFor(() => predicate(this), { timeoutMs: ms, intervalMs: 10, what }).catch((error: Error) => {
      throw new Error(`${error.message}; got ${JSON.stringify(this.events.map((e) => e.event))}`);
    });
  }

  /** The gateway wrote `: live`: the catch-up is sent and every event committed from now on will be. */
  live(): Promise<void> {
    return this.waitFor((c) => c.comments.includes('live'), 'the stream to be live');
  }

  data(): Array<Record<string, unknown>> {
    return this.events.map((e) => JSON.parse(e.data ?? 'null'));
  }

  resume(): void {
    this.res?.resume();
  }

  close(): void {
    this.req.destroy();
    this.res?.destroy();
  }

  private push(chunk: string): void {
    this.buffer += chunk;
    let idx: number;
    while ((idx = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, idx);
      this.buffer = this.buffer.slice(idx + 2);
      const event: SseEvent = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else {
          const [field, ...rest] = line.split(':');
          const value = rest.join(':').replace(/^ /, '');
          if (field === 'id' || field === 'event' || field === 'data') event[field] = value;
        }
      }
      if (event.data !== undefined) this.events.push(event);
    }
  }
}

describe('live events (SSE + WebSocket), tenant-scoped, with catch-up', () => {
  const session = new GatewaySession();
  let dispatcher: InProcessDispatcher;
  let publisher: Redis;
  let port: number;
  let auth: { Authorization: string };
  let authB: { Authorization: string };
  let tenantId: string;
  let tenantB: string;
  let terminalId: string;
  let sim: JoinprotoTerminalSimulator;
  const clients: SseClient[] = [];

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl) =>
      (dispatcher = new InProcessDispatcher(appUrl, (events) => redisEventSink(publisher, session.config.REDIS_KEY_PREFIX)(events)));
    await session.start({ EVENTS_HEARTBEAT_MS: '200', EVENTS_CLIENT_BUFFER_BYTES: '65536' });
    port = (session.app.getHttpServer().address() as AddressInfo).port;
    publisher = new Redis(session.config.REDIS_URL);
    const a = await session.tenant();
    tenantId = a.tenantId;
    auth = { Authorization: `Bearer ${a.apiKey}` };
    const b = await session.tenant();
    tenantB = b.tenantId;
    authB = { Authorization: `Bearer ${b.apiKey}` };
    const storeId = (await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' })).body.id;
    terminalId = (
      await session
        .http()
        .post('/v1/terminals')
        .set(auth)
        .set('Idempotency-Key', idem())
        .send({ name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } })
    ).body.id;
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    dispatcher.route(terminalId, { port: (await sim.listen(0)).port });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await dispatcher.close();
    await sim.close();
    await publisher.quit();
    await session.stop();
  });

  const sse = (path: string, headers: Record<string, string>, options?: { paused?: boolean }) => {
    const client = new SseClient(port, path, headers, options);
    clients.push(client);
    return client;
  };
  const emit = async (tenant: string, input: Parameters<typeof publishEvent>[2]): Promise<PublishedEvent> => {
    const event = await session.appDb.withTenant(tenant, (tx) => publishEvent(tx, tenant, input));
    await session.appDb.eventsSettled(); // numbered first, as onCommitted would be
    await notifyCommitted(publisher, session.config.REDIS_KEY_PREFIX, [event]);
    return event;
  };

  it('requires events:read', async () => {
    const noScope = await session.tenant(undefined, ['operations:read']);
    const res = await session
      .http()
      .get('/v1/events/stream')
      .set({ Authorization: `Bearer ${noScope.apiKey}` });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', details: { missing: ['events:read'] } });
    expect((await session.http().get('/v1/events/stream')).status).toBe(401);
    expect((await session.http().get('/v1/events/stream?types=nope').set(auth)).status).toBe(400);
  });

  it("streams an operation's progress and result live, in order, with heartbeats; tenant B sees none of it", async () => {
    const a = sse('/v1/events/stream?types=operation.*', auth);
    const b = sse('/v1/events/stream', authB);
    await a.waitFor((c) => c.comments.includes('connected'), 'A connected');
    await b.waitFor((c) => c.comments.includes('connected'), 'B connected');
    await a.live();
    await b.live();
    const paid = await session
      .http()
      .post(`/v1/terminals/${terminalId}/operations?wait=5000`)
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 1500, currency: 'RUB' });
    expect(paid.body.state).toBe('approved');
    await a.waitFor((c) => c.events.some((e) => e.event === 'operation.completed'), 'operation.completed');
    const mine = a.data().filter((d) => (d.data as { operationId?: string }).operationId === paid.body.id);
    expect(mine[0]).toMatchObject({ type: 'operation.created', tenantId, subjectType: 'operation', subjectId: paid.body.id });
    expect(mine.at(-1)).toMatchObject({ type: 'operation.completed', data: { state: 'approved', amount: 1500 } });
    expect(mine.map((d) => d.type)).toContain('operation.progress');
    expect(a.events.every((e) => e.id === (JSON.parse(e.data!) as { id: string }).id)).toBe(true);
    // types filter: a terminal event of A does not reach the operation.* stream; an operation event
    // committed after it does, so by the time that one arrives the terminal event would have too.
    await emit(tenantId, { type: 'terminal.online', subjectType: 'terminal', subjectId: terminalId, data: { terminalId } });
    const after = await emit(tenantId, { type: 'operation.progress', subjectType: 'operation', subjectId: paid.body.id, data: { marker: true } });
    await a.waitFor((c) => c.events.some((e) => e.id === after.id), 'the operation event emitted after the terminal event');
    await a.waitFor((c) => c.comments.some((x) => x.startsWith('heartbeat')), 'a heartbeat');
    expect(a.events.some((e) => e.event === 'terminal.online')).toBe(false);
    expect(b.events).toHaveLength(0);
    // and a message forged on B's channel naming A's tenant is dropped, not delivered to either: B's own
    // event published after it on the same channel arrives, and is all B got
    await publisher.publish(
      `${session.config.REDIS_KEY_PREFIX}:events:${tenantB}`,
      JSON.stringify({ id: paid.body.id, tenantId, type: 'operation.completed', data: {} }),
    );
    const ownB = await emit(tenantB, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n: 'B' } });
    await b.waitFor((c) => c.events.length >= 1, "B's own event");
    expect(b.events.map((e) => e.id)).toEqual([ownB.id]);
    expect(a.events.filter((e) => e.event === 'operation.completed')).toHaveLength(1);
    a.close();
    b.close();
  });

  it('catches up from Last-Event-ID (or ?after=) in order from the database, then continues live without duplicates', async () => {
    const first = await emit(tenantId, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n: 1 } });
    const missed = [];
    for (let n = 2; n <= 4; n++) missed.push(await emit(tenantId, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n } }));
    await emit(tenantB, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n: 'B' } });
    const c = sse('/v1/events/stream?types=agent.online', { ...auth, 'Last-Event-ID': first.id });
    await c.waitFor((x) => x.events.length >= 3, 'the catch-up');
    const live = await emit(tenantId, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n: 5 } });
    await c.waitFor((x) => x.events.length >= 4, 'the live event');
    // No duplicate of the catch-up follows: the next live event comes right after.
    const next = await emit(tenantId, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n: 6 } });
    await c.waitFor((x) => x.events.some((e) => e.id === next.id), 'the next live event');
    expect(c.events.map((e) => e.id)).toEqual([...missed.map((e) => e.id), live.id, next.id]);
    expect(c.data().map((d) => (d.data as { n: number }).n)).toEqual([2, 3, 4, 5, 6]);
    c.close();

    const q = sse(`/v1/events/stream?types=agent.online&after=${missed[1]!.id}`, auth);
    await q.waitFor((x) => x.events.length >= 3, '?after= catch-up');
    expect(q.events.map((e) => e.id)).toEqual([missed[2]!.id, live.id, next.id]);
    q.close();
    // Another tenant's id as Last-Event-ID replays nothing (RLS hides it).
    const other = await emit(tenantB, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n: 'B2' } });
    const x = sse('/v1/events/stream?types=agent.online', { ...auth, 'Last-Event-ID': other.id });
    // Live means the catch-up is over: it replayed nothing; the first event is the next one of A.
    await x.live();
    expect(x.events).toHaveLength(0);
    const fresh = await emit(tenantId, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n: 7 } });
    await x.waitFor((c2) => c2.events.length >= 1, 'the next event of A');
    expect(x.events.map((e) => e.id)).toEqual([fresh.id]);
    x.close();
  });

  it('disconnects a client that does not read instead of buffering without bound', async () => {
    const hub = session.app.get(EventHub);
    const slow = sse('/v1/events/stream?types=relay.denied', auth, { paused: true });
    await slow.waitFor(() => hub.size === 1, 'the slow client to be listening');
    // Enough to fill the loopback socket buffers and then the 64 KiB bound of the gateway.
    const big = 'x'.repeat(64_000);
    let sent = 0;
    while (hub.size > 0 && sent < 400) {
      await emit(tenantId, { type: 'relay.denied', subjectType: 'relay', subjectId: null, data: { pad: big, i: sent++ } });
    }
    expect(hub.size).toBe(0);
    expect(sent).toBeLessThan(400);
    // Once it reads again, the client finds its stream ended (it would reconnect with Last-Event-ID).
    slow.resume();
    await slow.waitFor((c) => c.ended, 'the slow client to see the end', 10_000);
    expect(slow.events.length).toBeLessThan(sent);
  });

  it('WebSocket variant: authenticates at upgrade, streams JSON events of the tenant only', async () => {
    // Streaming after an event of A committed before connecting: nothing committed later can be missed,
    // however long the stream takes to open (a WebSocket has no `: live` marker).
    const start = await emit(tenantId, { type: 'agent.offline', subjectType: 'agent', subjectId: null, data: { who: 'start' } });
    const url = `ws://127.0.0.1:${port}/v1/events/ws?types=agent.offline&after=${start.id}`;
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url, { headers: { Authorization: 'Bearer pok_nope' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => undefined);
    });
    expect(refused).toBe(401);
    const ws = new WebSocket(url, { headers: auth });
    const messages: Array<Record<string, unknown>> = [];
    ws.on('message', (m) => messages.push(JSON.parse(m.toString())));
    let closed: string | undefined;
    ws.on('close', (code, reason) => (closed = `${code} ${reason.toString()}`));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    // B's event is committed (and published) before A's: had it leaked, it would arrive first.
    await emit(tenantB, { type: 'agent.offline', subjectType: 'agent', subjectId: null, data: { who: 'B' } });
    const mine = await emit(tenantId, { type: 'agent.offline', subjectType: 'agent', subjectId: null, data: { who: 'A' } });
    await waitFor(() => messages.some((m) => m.id === mine.id), {
      timeoutMs: 15_000,
      what: () => `A's event over the WebSocket (${closed === undefined ? 'still open' : `closed: ${closed}`}; ${messages.length} messages)`,
    });
    expect(messages).toEqual([
      { id: mine.id, type: 'agent.offline', tenantId, createdAt: mine.createdAt, subjectType: 'agent', subjectId: null, data: { who: 'A' } },
    ]);
    ws.close();
  });

  it('cuts a WebSocket client that stops answering pings after two unanswered ones, and keeps one that answers', async () => {
    const url = `ws://127.0.0.1:${port}/v1/events/ws?types=agent.offline`;
    const open = (autoPong: boolean) => {
      const ws = new WebSocket(url, { headers: auth, autoPong });
      let closedAt: number | undefined;
      ws.on('close', () => (closedAt = Date.now()));
      ws.on('error', () => undefined);
      return { ws, closed: () => closedAt };
    };
    const silent = open(false);
    const answering = open(true);
    await Promise.all([silent, answering].map((c) => new Promise((resolve) => c.ws.once('open', resolve))));
    let pings = 0;
    silent.ws.on('ping', () => (pings += 1));
    // Heartbeat 200 ms here: cut at the third tick, having had two pings to answer.
    await waitFor(() => silent.closed() !== undefined, { timeoutMs: 10_000, what: 'the silent client cut' });
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(answering.closed()).toBeUndefined();
    answering.ws.close();
  });

  it("serves a tenant's live streams with one read per event for all of them, each with its own types (issue 19)", async () => {
    const all = Array.from({ length: 6 }, () => sse('/v1/events/stream', auth));
    const typed = Array.from({ length: 2 }, () => sse('/v1/events/stream?types=relay.*', auth));
    await Promise.all([...all, ...typed].map((c) => c.live()));

    // The hub's heartbeats ring every stream too (200 ms here): counted, so the bound holds on a slow machine.
    const tick = jest.spyOn(session.app.get(EventHub) as unknown as { tick(): void }, 'tick');
    const query = jest.spyOn(Client.prototype, 'query');
    const pageReads = () =>
      query.mock.calls.filter(([q]) => /FROM "(public"\.")?DomainEvent"[\s\S]*"seq" >/.test(typeof q === 'string' ? q : ((q as { text?: string }).text ?? '')))
        .length;
    let reads: number;
    let rings: number;
    try {
      const agentEvent = await emit(tenantId, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { shared: 1 } });
      const relayEvent = await emit(tenantId, { type: 'relay.denied', subjectType: 'relay', subjectId: null, data: { shared: 2 } });
      for (const c of all) await c.waitFor((x) => x.events.some((e) => e.id === relayEvent.id), 'both events on an unfiltered stream');
      for (const c of typed) await c.waitFor((x) => x.events.some((e) => e.id === relayEvent.id), 'the relay event on a typed stream');
      reads = pageReads();
      rings = 2 + tick.mock.calls.length;
      for (const c of all) expect(c.events.map((e) => e.id).slice(-2)).toEqual([agentEvent.id, relayEvent.id]);
      for (const c of typed) expect(c.events.map((e) => e.id)).toEqual([relayEvent.id]);
    } finally {
      query.mockRestore();
      tick.mockRestore();
      for (const c of [...all, ...typed]) c.close();
    }
    // Eight streams: at most a read per ring (two events, the heartbeats), where each stream read for itself (8 per ring);
    // plus at most two reads of the rounds the streams' joins rang, which may still have been running when counting began.
    expect(reads).toBeLessThanOrEqual(rings + 2);
  });

  describe('catch-up follows commit order, not insert order', () => {
    it('replays an event whose transaction committed after a later-inserted event the client already got (SSE and WebSocket)', async () => {
      const hub = session.app.get(EventHub);
      // The clients of the tests above have gone (their listeners leave asynchronously).
      await waitFor(() => hub.size === 0, { timeoutMs: 5000, intervalMs: 10, what: 'the earlier clients to leave the hub' });
      let commitA!: () => void;
      const gate = new Promise<void>((resolve) => (commitA = resolve));
      let insertedA!: () => void;
      const inserted = new Promise<void>((resolve) => (insertedA = resolve));
      // T1: inserts A and stays open (a long transaction).
      const t1 = session.appDb.withTenant(tenantId, async (tx) => {
        const event = await publishEvent(tx, tenantId, { type: 'terminal.updated', subjectType: 'terminal', subjectId: null, data: { n: 'A' } });
        insertedA();
        await gate;
        return event;
      });
      await inserted;
      const first = sse('/v1/events/stream?types=terminal.updated', auth);
      await first.waitFor(() => hub.size === 1, 'the subscriber to listen');
      // T2 inserts B after A and commits first: the subscriber gets B live, then goes away.
      const b = await emit(tenantId, { type: 'terminal.updated', subjectType: 'terminal', subjectId: null, data: { n: 'B' } });
      await first.waitFor((c) => c.events.length >= 1, 'B live');
      expect(first.events.map((e) => e.id)).toEqual([b.id]);
      first.close();
      await first.waitFor(() => hub.size === 0, 'the subscriber to leave');
      // T1 commits A now; A was inserted (createdAt) before B.
      commitA();
      const a = await t1;
      await session.appDb.eventsSettled(); // numbered first, as onCommitted would be
      await notifyCommitted(publisher, session.config.REDIS_KEY_PREFIX, [a]);
      expect(Date.parse(a.createdAt)).toBeLessThan(Date.parse(b.createdAt));

      const again = sse('/v1/events/stream?types=terminal.updated', { ...auth, 'Last-Event-ID': b.id });
      await again.waitFor((c) => c.events.length >= 1, 'A on reconnect');
      const c = await emit(tenantId, { type: 'terminal.updated', subjectType: 'terminal', subjectId: null, data: { n: 'C' } });
      await again.waitFor((x) => x.events.length >= 2, 'C live');
      // A once, then live C: nothing skipped, B not sent again.
      expect(again.events.map((e) => e.id)).toEqual([a.id, c.id]);
      again.close();

      const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/events/ws?types=terminal.updated&after=${b.id}`, { headers: auth });
      const messages: Array<{ id: string }> = [];
      ws.on('message', (m) => messages.push(JSON.parse(m.toString()) as { id: string }));
      await waitFor(() => messages.length >= 2, { timeoutMs: 5000, intervalMs: 10, what: 'A and C over the WebSocket' });
      expect(messages.map((m) => m.id)).toEqual([a.id, c.id]);
      ws.close();
    });
  });
});

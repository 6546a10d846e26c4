import { request as httpRequest, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

import { WebSocket } from 'ws';

import { waitFor } from '@payorch/testing';

import { GatewaySession, idem } from '../e2e/support/gateway-session';

/** An SSE stream of the gateway: what it received, and whether the gateway ended it. */
function sse(port: number, apiKey: string) {
  const stream = { body: '', ended: false, status: 0, req: undefined as ClientRequest | undefined };
  stream.req = httpRequest(
    { host: '127.0.0.1', port, path: '/v1/events/stream', headers: { Accept: 'text/event-stream', Authorization: `Bearer ${apiKey}` } },
    (res) => {
      stream.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (stream.body += chunk));
      res.on('end', () => (stream.ended = true));
    },
  );
  stream.req.on('error', () => (stream.ended = true));
  stream.req.end();
  return stream;
}

/** A WebSocket event stream: its messages, and the close code it got. */
async function ws(port: number, apiKey: string) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/events/ws`, { headers: { Authorization: `Bearer ${apiKey}` } });
  const stream = { socket, messages: [] as Array<{ type: string; subjectId: string }>, closed: undefined as number | undefined };
  socket.on('message', (data) => stream.messages.push(JSON.parse(String(data)) as { type: string; subjectId: string }));
  socket.on('close', (code) => (stream.closed = code));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return stream;
}

/**
 * A live event stream outlives the request that authenticated it: it must end once its key no longer authenticates
 * (revoked through the API or the admin CLI, expired, or its tenant disabled), not keep receiving the tenant's events
 * for as long as the connection lasts — the ops console left open on a revoked key stayed live (credentials review;
 * apps/api-gateway/src/events/key-watch.ts).
 */
describe('live event streams end with their API key', () => {
  const session = new GatewaySession();
  let port: number;

  beforeAll(async () => {
    // A long heartbeat: a revocation must end the stream at once, not at the next heartbeat's check.
    await session.start({ EVENTS_HEARTBEAT_MS: '60000' });
    port = (session.app.getHttpServer().address() as AddressInfo).port;
  });

  afterAll(() => session.stop());

  /** An event of the tenant: a terminal created (in a store made once per tenant). */
  const stores = new Map<string, string>();
  const createTerminal = async (apiKey: string) => {
    const auth = `Bearer ${apiKey}`;
    let storeId = stores.get(apiKey);
    if (storeId === undefined) {
      const store = await session.http().post('/v1/stores').set('Authorization', auth).set('Idempotency-Key', idem()).send({ name: 'S', timeZone: 'UTC' });
      stores.set(apiKey, (storeId = store.body.id as string));
    }
    return session
      .http()
      .post('/v1/terminals')
      .set('Authorization', auth)
      .set('Idempotency-Key', idem())
      .send({ name: `T ${idem()}`, storeId, protocol: 'ssi_ecr', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } });
  };

  it('a key revoked through the API ends its SSE and WebSocket streams at once; the tenant’s other streams go on', async () => {
    const { apiKey: adminKey } = await session.tenant();
    const viewer = await session.apiKey(adminKey, ['read'], 'viewer');
    const other = await session.apiKey(adminKey, ['read'], 'viewer');
    const revokedSse = sse(port, viewer.apiKey);
    const revokedWs = await ws(port, viewer.apiKey);
    const kept = await ws(port, other.apiKey);
    await waitFor(() => revokedSse.body.includes(': live'), { what: 'the SSE stream live' });
    // A WebSocket stream says nothing when it is live: events are made until one has reached every stream.
    const reachedAll = () => revokedWs.messages.length > 0 && kept.messages.length > 0 && revokedSse.body.includes('\nevent: ');
    for (let i = 0; i < 20 && !reachedAll(); i++) {
      expect((await createTerminal(adminKey)).status).toBe(201);
      await waitFor(reachedAll, { what: 'an event on every stream', timeoutMs: 500 }).catch(() => undefined);
    }
    expect(reachedAll()).toBe(true);

    const revoked = await session.revokeApiKey(adminKey, viewer.id);
    expect(revoked.status).toBe(200);
    await waitFor(() => revokedSse.ended && revokedWs.closed !== undefined, { what: 'the revoked key’s streams to end' });
    expect(revokedWs.closed).toBe(1008);
    expect(revokedSse.body).toContain(': API key revoked, expired or out of scope, or its tenant disabled');
    const receivedBeforeRevocation = revokedWs.messages.length;

    // Events after the revocation reach the other key's stream only.
    const terminal = await createTerminal(adminKey);
    await waitFor(() => kept.messages.some((m) => m.subjectId === terminal.body.id), { what: 'the next event on the kept stream' });
    expect(revokedWs.messages).toHaveLength(receivedBeforeRevocation);
    expect(kept.closed).toBeUndefined();
    kept.socket.close();
  });

  it('a key revoked by the admin CLI, and a tenant disabled by it, end the streams of every key concerned', async () => {
    const { tenantId, apiKey: adminKey } = await session.tenant();
    const viewer = await session.apiKey(adminKey, ['read'], 'viewer');
    const byCli = await ws(port, viewer.apiKey);
    const tenantWide = await ws(port, adminKey);
    await session.admin.revokeApiKey(viewer.id);
    await waitFor(() => byCli.closed !== undefined, { what: 'the CLI-revoked key’s stream to end' });
    expect(byCli.closed).toBe(1008);
    expect(tenantWide.closed).toBeUndefined();
    await session.admin.setTenantStatus(tenantId, 'DISABLED');
    await waitFor(() => tenantWide.closed !== undefined, { what: 'the disabled tenant’s stream to end' });
    expect(tenantWide.closed).toBe(1008);
    await session.admin.setTenantStatus(tenantId, 'ACTIVE');
  });

  it('on a gateway that keeps no lookups (API_KEY_CACHE_MS=0), a key revoked elsewhere (the admin CLI) ends its stream at once', async () => {
    // Until 2026-12-07 such a gateway did not follow the announcements: the stream lived on until the next heartbeat.
    const uncached = new GatewaySession();
    await uncached.start({ EVENTS_HEARTBEAT_MS: '60000', API_KEY_CACHE_MS: '0' });
    try {
      const { apiKey: adminKey } = await uncached.tenant();
      const viewer = await uncached.apiKey(adminKey, ['read'], 'viewer');
      const stream = await ws((uncached.app.getHttpServer().address() as AddressInfo).port, viewer.apiKey);
      await uncached.admin.revokeApiKey(viewer.id);
      await waitFor(() => stream.closed !== undefined, { what: 'the CLI-revoked key’s stream to end' });
      expect(stream.closed).toBe(1008);
    } finally {
      await uncached.stop();
    }
  });

  it('a key that expires while its stream is open ends it at the next check', async () => {
    const quick = new GatewaySession();
    await quick.start({ EVENTS_HEARTBEAT_MS: '200' });
    try {
      const { apiKey, apiKeyId } = await quick.tenant();
      await quick.owner.apiKey.update({ where: { id: apiKeyId }, data: { expiresAt: new Date(Date.now() + 1_000) } });
      const stream = await ws((quick.app.getHttpServer().address() as AddressInfo).port, apiKey);
      await waitFor(() => stream.closed !== undefined, { what: 'the expired key’s stream to end', timeoutMs: 10_000 });
      expect(stream.closed).toBe(1008);
    } finally {
      await quick.stop();
    }
  });
});

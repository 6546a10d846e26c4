import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';

import { busKeys } from '@payorch/command-bus';
import { connectorConfigSchema, gatewayConfigSchema, loadConfig } from '@payorch/config';
import { createPrismaClient, type PrismaClient } from '@payorch/db';
import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { drainAndClose } from '@payorch/health';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, nextEvent, type TestDatabase, testRedisPrefix, testRedisUrl, waitFor, withTimeout } from '@payorch/testing';
import { attachWebSocket } from '@payorch/tunnel';

import { AdminService } from '../../apps/api-gateway/src/admin/admin.service';
import { createGatewayApp } from '../../apps/api-gateway/src/bootstrap';
import { createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import { AgentTunnelServer, SHUTDOWN_CLOSE } from '../../apps/device-connector/src/tunnel/agent-tunnel.server';
import { TcpProxy } from '../faults/support/stack';

/**
 * Issue 18, graceful shutdown (libs/health drainAndClose, what SIGTERM runs in every main.ts): readiness
 * answers 503 first while the app still serves; then the gateway lets an in-flight request complete and
 * ends its live event streams (SSE and WebSocket) with a reconnect hint, and the connector closes agent
 * tunnels with SHUTDOWN_CLOSE and releases their ownership, so the agent reconnects through the load
 * balancer to the other instance, which takes it over. Both finish well inside the grace period.
 */

const MASTER = `k1:${Buffer.alloc(32, 7).toString('base64')}`;
const logger = createLogger({ name: 'drain-test', level: 'silent' });
const GRACE_MS = 8_000;

const statusOf = async (url: string) => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1500) });
    return { status: res.status, body: (await res.json()) as { checks?: Record<string, { ok: boolean }> } };
  } catch {
    return { status: 0, body: {} };
  }
};

describe('graceful shutdown', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let redis: Redis;
  const prefixes: string[] = [];

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    redis = new Redis(testRedisUrl());
  });

  afterAll(async () => {
    for (const prefix of prefixes) await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
    await owner.$disconnect();
    await testDb.drop();
  });

  it('gateway: readiness 503 first, the in-flight request completes, live streams are told to reconnect, closed in bounded time', async () => {
    const prefix = testRedisPrefix('drain-gw');
    prefixes.push(prefix);
    const config = loadConfig('api-gateway', gatewayConfigSchema, {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_URL: testRedisUrl(),
      REDIS_KEY_PREFIX: prefix,
      PAYORCH_MASTER_KEY: MASTER,
    });
    const app = await createGatewayApp(config, { logger });
    await app.listen(0, '127.0.0.1');
    const port = (app.getHttpServer().address() as AddressInfo).port;
    const base = `http://127.0.0.1:${port}`;
    const admin = new AdminService(owner, 'drain-test');
    const tenant = await admin.createTenant('Drain');
    const { apiKey } = await admin.createApiKey({ tenantId: tenant.id, name: 'k', scopes: ['stores:write', 'events:read'] });

    // A live SSE stream and a live WebSocket stream.
    const sse = await fetch(`${base}/v1/events/stream`, { headers: { Authorization: `Bearer ${apiKey}` } });
    const reader = sse.body!.getReader();
    let sseText = '';
    const readSse = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        sseText += Buffer.from(value).toString();
      }
    })();
    await waitFor(() => sseText.includes(': live'), { timeoutMs: 10_000, what: 'the SSE stream live' });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/events/ws`, { headers: { Authorization: `Bearer ${apiKey}` } });
    await nextEvent(ws, 'open');
    const wsClosed = nextEvent<[number, Buffer]>(ws, 'close', { timeoutMs: GRACE_MS });

    // An in-flight request: headers and half the body sent before the shutdown starts.
    const body = JSON.stringify({ name: 'Shop during drain', timeZone: 'UTC' });
    const socket = connect(port, '127.0.0.1');
    await nextEvent(socket, 'connect');
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString()));
    socket.write(
      [
        'POST /v1/stores HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        `Authorization: Bearer ${apiKey}`,
        'Content-Type: application/json',
        `Idempotency-Key: ${randomUUID()}`,
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body.slice(0, 10),
      ].join('\r\n'),
    );

    const closing = drainAndClose(app, { drainDelayMs: 400, graceMs: GRACE_MS, logger, signal: 'SIGTERM' });
    const started = Date.now();
    // Readiness says 503 (with the reason) while the gateway still answers.
    const ready = await statusOf(`${base}/health/ready`);
    expect([ready.status, ready.body.checks?.shutdown]).toEqual([503, { ok: false, reason: 'shutting down: draining before exit' }]);
    expect((await statusOf(`${base}/health/live`)).status).toBe(200);

    socket.write(body.slice(10));
    await waitFor(() => /\r\n\r\n\{.*\}$/s.test(response), { timeoutMs: GRACE_MS, what: 'the in-flight response' });
    expect(response).toMatch(/^HTTP\/1\.1 201 /);
    expect(response).toContain('"name":"Shop during drain"');

    const [code, reason] = await wsClosed;
    expect([code, reason.toString()]).toEqual([1001, 'server shutting down; reconnect']);
    await withTimeout(readSse, { timeoutMs: GRACE_MS, what: 'the SSE stream end' });
    expect(sseText).toContain(': server shutting down; reconnect');

    expect(await closing).toBe('closed');
    expect(Date.now() - started).toBeLessThan(GRACE_MS);
    expect(await owner.store.count({ where: { tenantId: tenant.id, name: 'Shop during drain' } })).toBe(1);
    socket.destroy();
  }, 30_000);

  it('connector: tunnels closed with the reconnect code, ownership handed to the other instance the agent reconnects to', async () => {
    const prefix = testRedisPrefix('drain-conn');
    prefixes.push(prefix);
    const apps: Record<'a' | 'b', INestApplication> = {} as never;
    const ports: Record<'a' | 'b', number> = { a: 0, b: 0 };
    for (const id of ['a', 'b'] as const) {
      const config = loadConfig('device-connector', connectorConfigSchema, {
        DATABASE_APP_URL: testDb.appUrl,
        REDIS_URL: testRedisUrl(),
        REDIS_KEY_PREFIX: prefix,
        PAYORCH_MASTER_KEY: MASTER,
        CONNECTOR_INSTANCE_ID: `drain-${id}`,
      });
      apps[id] = await createConnectorApp(config, logger, { driverFactory: null, operationHandler: null });
      await apps[id].listen(0, '127.0.0.1');
      ports[id] = (apps[id].getHttpServer().address() as AddressInfo).port;
    }
    // The load balancer: sends new connections to A while A is ready, else to B (as a readiness-driven LB does).
    let target: 'a' | 'b' = 'a';
    const lb = new TcpProxy(() => ports[target]);
    const lbPort = await lb.listen();

    const tenant = await owner.tenant.create({ data: { name: 'T' } });
    const store = await owner.store.create({ data: { tenantId: tenant.id, name: 'S', timeZone: 'UTC' } });
    const enrollment = issueToken(TOKEN_KINDS.enrollment);
    const agent = await owner.agent.create({
      data: {
        tenantId: tenant.id,
        storeId: store.id,
        name: 'till',
        enrollmentTokenHash: enrollment.hash,
        enrollmentTokenPrefix: enrollment.prefix,
        enrollmentExpiresAt: new Date(Date.now() + 60_000),
      },
    });
    const enrolled = await fetch(`http://127.0.0.1:${lbPort}/agent/enroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: enrollment.token, version: '0.1.0' }),
    });
    const { credential } = (await enrolled.json()) as { credential: string };

    // A minimal agent: a tunnel (HELLO) over the LB; when the connector closes it, it dials again at once.
    const closes: Array<{ code: number; reason: string }> = [];
    let stopped = false;
    const sockets: WebSocket[] = [];
    const dial = () => {
      const ws = new WebSocket(`ws://127.0.0.1:${lbPort}/agent`, { headers: { Authorization: `Bearer ${credential}`, 'X-Payorch-Agent-Version': '0.1.0' } });
      sockets.push(ws);
      attachWebSocket(ws, { role: 'agent', software: 'payorch-agent/0.1.0' });
      ws.on('error', () => undefined);
      ws.on('close', (code, reason) => {
        closes.push({ code, reason: reason.toString() });
        if (!stopped) setTimeout(dial, 50);
      });
    };
    dial();
    const ownerKey = busKeys(prefix).agentOwner(agent.id);
    await waitFor(async () => (await redis.get(ownerKey)) === 'drain-a', { timeoutMs: 10_000, what: 'A owning the agent' });

    const closing = drainAndClose(apps.a, { drainDelayMs: 400, graceMs: GRACE_MS, logger, signal: 'SIGTERM' });
    const started = Date.now();
    await waitFor(async () => (await statusOf(`http://127.0.0.1:${ports.a}/health/ready`)).status === 503, { timeoutMs: 2_000, what: 'A not ready' });
    target = 'b';

    await waitFor(() => closes.length > 0, { timeoutMs: GRACE_MS, what: 'the tunnel closed by A' });
    expect(closes[0]).toEqual({ code: SHUTDOWN_CLOSE.code, reason: SHUTDOWN_CLOSE.reason });
    expect(SHUTDOWN_CLOSE.code).toBe(1001);
    await waitFor(async () => (await redis.get(ownerKey)) === 'drain-b', { timeoutMs: 10_000, what: 'B owning the agent after the reconnect' });
    expect(await closing).toBe('closed');
    expect(Date.now() - started).toBeLessThan(GRACE_MS);
    expect(apps.b.get(AgentTunnelServer).connectedAgents).toEqual([agent.id]);

    stopped = true;
    for (const ws of sockets) ws.terminate();
    await lb.close();
    await apps.b.close();
  }, 40_000);
});

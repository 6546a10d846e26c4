import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Server, Socket } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';

import { databaseAgentResolver, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { createTestDatabase, deleteRedisPrefix, type TestDatabase, testRedisPrefix, testRedisUrl } from '@payorch/testing';

import { LinkBridge } from '../../../apps/agent/src/bridge/link-bridge';
import { TunnelClient } from '../../../apps/agent/src/bridge/tunnel-client';
import { type ConnectorAppOptions, createConnectorApp } from '../../../apps/device-connector/src/bootstrap';
import { TerminalHub } from '../../../apps/device-connector/src/terminals/terminal-hub';
import { AgentTunnelServer } from '../../../apps/device-connector/src/tunnel/agent-tunnel.server';

export const silent = createLogger({ name: 'test', level: 'silent' });

/**
 * An in-process agent as the CLI runs it (TunnelClient + LinkBridge), with a quick reconnect backoff for tests
 * and benches: dials `connectorUrl` with `credential` until `stop()`.
 */
export function startInProcessAgent(connectorUrl: string, credential: string) {
  const bridge = new LinkBridge({ logger: silent, acceptTimeoutMs: 10_000 });
  const client = new TunnelClient({
    connector: connectorUrl,
    credential,
    logger: silent,
    baseDelayMs: 50,
    maxDelayMs: 400,
    onSocket: (ws) => bridge.attach(ws),
  });
  void client.start();
  return {
    bridge,
    client,
    stop: () => {
      client.stop();
      void bridge.close();
    },
  };
}

export interface RunningConnector {
  app: INestApplication;
  instanceId: string;
  port: number;
  url: string;
  hub: TerminalHub;
  tunnels: AgentTunnelServer;
}

export interface EnrolledAgent {
  agentId: string;
  tenantId: string;
  storeId: string;
  credential: string;
}

/**
 * One database and one Redis prefix shared by several in-process connector instances (as behind a
 * load balancer), plus helpers for tenants, agents, terminals and in-process agents.
 */
export class TunnelHarness {
  testDb!: TestDatabase;
  owner!: PrismaClient;
  appDb!: Database;
  redis!: Redis;
  readonly prefix = testRedisPrefix('tun');
  readonly masterKey = `k1:${randomBytes(32).toString('base64')}`;
  private readonly connectors = new Set<RunningConnector>();
  private readonly agents = new Set<{ stop(): void }>();
  private readonly dispatchers = new Set<RedisTerminalCommandDispatcher>();

  async start(): Promise<this> {
    this.testDb = await createTestDatabase();
    this.owner = createPrismaClient(this.testDb.adminUrl, { max: 2 });
    this.appDb = Database.connect(this.testDb.appUrl, 3);
    this.redis = new Redis(testRedisUrl());
    return this;
  }

  async stop(): Promise<void> {
    for (const agent of this.agents) agent.stop();
    await Promise.allSettled([...this.dispatchers].map((d) => d.close()));
    await Promise.allSettled([...this.connectors].map((c) => c.app.close()));
    await deleteRedisPrefix(this.redis, this.prefix);
    await this.redis.quit();
    await this.appDb.close();
    await this.owner.$disconnect();
    await this.testDb.drop();
  }

  async connector(instanceId: string, env: Record<string, string> = {}, options: ConnectorAppOptions = {}, port = 0): Promise<RunningConnector> {
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: this.testDb.appUrl,
      REDIS_URL: testRedisUrl(),
      REDIS_KEY_PREFIX: this.prefix,
      PAYORCH_MASTER_KEY: this.masterKey,
      CONNECTOR_INSTANCE_ID: instanceId,
      CONNECTOR_OWNERSHIP_TTL_MS: '3000',
      // The simulated processing hosts listen on loopback, which only the operator can allow.
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8, ::1',
      LOG_LEVEL: 'silent',
      ...env,
    });
    const app = await createConnectorApp(config, silent, { driverFactory: null, ...options });
    await app.listen(port, '127.0.0.1');
    const bound = (app.getHttpServer().address() as AddressInfo).port;
    const running: RunningConnector = {
      app,
      instanceId,
      port: bound,
      url: `http://127.0.0.1:${bound}`,
      hub: app.get(TerminalHub),
      tunnels: app.get(AgentTunnelServer),
    };
    this.connectors.add(running);
    return running;
  }

  async stopConnector(connector: RunningConnector): Promise<void> {
    this.connectors.delete(connector);
    await connector.app.close();
  }

  dispatcher(): RedisTerminalCommandDispatcher {
    const dispatcher = new RedisTerminalCommandDispatcher({
      redis: this.redis,
      prefix: this.prefix,
      resolveAgent: databaseAgentResolver(this.appDb),
      blockMs: 200,
    });
    this.dispatchers.add(dispatcher);
    return dispatcher;
  }

  /** A tenant with a store and an agent waiting for its enrollment: its one-time token (valid for a minute). */
  async pendingAgent(tenantId?: string): Promise<{ agentId: string; tenantId: string; storeId: string; token: string }> {
    const tenant = tenantId ?? (await this.owner.tenant.create({ data: { name: `T-${randomBytes(3).toString('hex')}` } })).id;
    const store = await this.owner.store.create({ data: { tenantId: tenant, name: 'Shop', timeZone: 'UTC' } });
    const enrollment = issueToken(TOKEN_KINDS.enrollment);
    const agent = await this.owner.agent.create({
      data: {
        tenantId: tenant,
        storeId: store.id,
        name: 'till',
        enrollmentTokenHash: enrollment.hash,
        enrollmentTokenPrefix: enrollment.prefix,
        enrollmentExpiresAt: new Date(Date.now() + 60_000),
      },
    });
    return { agentId: agent.id, tenantId: tenant, storeId: store.id, token: enrollment.token };
  }

  /** A tenant with a store and an agent enrolled through `connectorUrl`'s POST /agent/enroll. */
  async enrolledAgent(connectorUrl: string, tenantId?: string): Promise<EnrolledAgent> {
    const { token, ...agent } = await this.pendingAgent(tenantId);
    const res = await fetch(`${connectorUrl}/agent/enroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token, version: '0.1.0' }),
    });
    const body = (await res.json()) as { credential: string };
    return { ...agent, credential: body.credential };
  }

  async terminal(agent: EnrolledAgent, connection: Record<string, unknown>, protocol: 'JOINPROTO' | 'JPAY' | 'SSI_ECR' = 'JOINPROTO'): Promise<string> {
    const row = await this.owner.terminal.create({
      data: {
        tenantId: agent.tenantId,
        storeId: agent.storeId,
        agentId: agent.agentId,
        name: `T${randomBytes(2).toString('hex')}`,
        protocol,
        connection: connection as never,
      },
    });
    return row.id;
  }

  /** An in-process agent (the CLI's TunnelClient + LinkBridge), stopped with the harness. */
  runAgent(connectorUrl: string, credential: string) {
    const agent = startInProcessAgent(connectorUrl, credential);
    this.agents.add(agent);
    return agent;
  }

  terminalStatus(id: string) {
    return this.owner.terminal.findUniqueOrThrow({ where: { id }, select: { status: true, lastSeenAt: true, info: true } });
  }

  events(tenantId: string, type: string) {
    return this.owner.domainEvent.findMany({ where: { tenantId, type }, orderBy: { createdAt: 'asc' } });
  }
}

/** A terminal stand-in that echoes every byte (tcp, the terminal listens). */
export async function echoTerminal(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => count,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A tiny TCP load balancer: each new connection goes to the first backend that accepts it (a
 * connector instance that is down refuses, so agents land on the other one).
 */
export async function failoverProxy(backends: () => number[]): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    client.pause();
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    const tryBackend = (list: number[]) => {
      const port = list[0];
      if (port === undefined) return client.destroy();
      const upstream = new Socket();
      upstream.once('error', () => {
        upstream.destroy();
        tryBackend(list.slice(1));
      });
      upstream.connect(port, '127.0.0.1', () => {
        upstream.removeAllListeners('error');
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        sockets.add(upstream);
        upstream.on('close', () => {
          sockets.delete(upstream);
          client.destroy();
        });
        client.on('close', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    tryBackend(backends());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

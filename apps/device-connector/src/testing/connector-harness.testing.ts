import { randomBytes } from 'node:crypto';
import { type AddressInfo, connect } from 'node:net';

import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { WebSocket } from 'ws';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { Database } from '@payorch/db';
import { issueToken, TOKEN_KINDS } from '@payorch/domain';
import { createLogger } from '@payorch/logging';
import { insertOperation } from '@payorch/operations';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';
import { attachWebSocket, type Multiplexer, toDuplex } from '@payorch/tunnel';

import { type ConnectorAppOptions, createConnectorApp } from '../bootstrap';

export interface ConnectorHarnessOptions {
  /** Connections of `db`, a pool of the application role for the code under test; none unless given. */
  poolSize?: number;
}

/** Where a fixture row belongs. */
export interface TenantStore {
  tenantId: string;
  storeId: string;
}

/**
 * TEST TOOL (int tests; production code never imports `testing/`): a test file's own database (cloned from the
 * migrated template) with a client of the owner role (`admin`: fixture rows and checks, past row-level security),
 * optionally a pool of the application role (`db`) and a device connector on it (`connector()`). `start()` in
 * beforeAll, `stop()` in afterAll: it closes whatever was started, and what `onStop` added, after the connector.
 */
export class ConnectorHarness {
  testDb!: TestDatabase;
  admin!: Client;
  db!: Database;
  app!: INestApplication;
  /** `http://127.0.0.1:<port>` of the connector. */
  url!: string;
  private readonly closers: Array<() => Promise<unknown>> = [];

  constructor(private readonly options: ConnectorHarnessOptions = {}) {}

  async start(): Promise<this> {
    this.testDb = await createTestDatabase();
    this.admin = new Client({ connectionString: this.testDb.adminUrl });
    await this.admin.connect();
    if (this.options.poolSize) this.db = Database.connect(this.testDb.appUrl, this.options.poolSize);
    return this;
  }

  /**
   * A connector on the test database (silent, a fresh master key, loopback allowed for the terminals' links, no
   * drivers unless `options` give a factory: the links are never dialled), listening on a free loopback port (`url`).
   */
  async connector(instanceId: string, redisKeyPrefix: string, options: ConnectorAppOptions = {}): Promise<INestApplication> {
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: this.testDb.appUrl,
      REDIS_KEY_PREFIX: redisKeyPrefix,
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      CONNECTOR_INSTANCE_ID: instanceId,
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: 'silent',
    });
    this.app = await createConnectorApp(config, createLogger({ name: 'test', level: 'silent' }), { driverFactory: null, ...options });
    await this.app.listen(0, '127.0.0.1');
    this.url = `http://127.0.0.1:${(this.app.getHttpServer().address() as AddressInfo).port}`;
    return this.app;
  }

  /** Runs `close` at `stop()`, after the connector closed and before the database goes. */
  onStop(close: () => Promise<unknown>): void {
    this.closers.push(close);
  }

  async stop(): Promise<void> {
    await this.app?.close();
    for (const close of this.closers) await close();
    await this.db?.close();
    await this.admin?.end();
    await this.testDb?.drop();
  }

  /** A tenant with one store (UTC). */
  async tenantWithStore(): Promise<TenantStore> {
    const tenantId = (
      await this.admin.query<{ id: string }>(`INSERT INTO "Tenant" (id, name, "updatedAt") VALUES (gen_random_uuid(), 'T', now()) RETURNING id`)
    ).rows[0]!.id;
    const storeId = (
      await this.admin.query<{ id: string }>(
        `INSERT INTO "Store" (id, "tenantId", name, "timeZone", "updatedAt") VALUES (gen_random_uuid(), $1, 'S', 'UTC', now()) RETURNING id`,
        [tenantId],
      )
    ).rows[0]!.id;
    return { tenantId, storeId };
  }

  /**
   * An agent ("till") of the store, ACTIVE unless said; enrolled (its credential's hash and lookup prefix) when
   * `credential` is given, its presence held by the tunnel `presenceSession` when given (as its set-up leaves it).
   */
  async agent(
    { tenantId, storeId }: TenantStore,
    {
      status = 'ACTIVE',
      credential,
      presenceSession,
    }: { status?: 'ACTIVE' | 'REVOKED'; credential?: { hash: string; prefix: string }; presenceSession?: string } = {},
  ): Promise<string> {
    return this.insert('Agent', {
      tenantId,
      storeId,
      name: 'till',
      status,
      ...(credential ? { credentialHash: credential.hash, credentialPrefix: credential.prefix } : {}),
      ...(presenceSession === undefined ? {} : { presenceSession }),
    });
  }

  /** A Joinproto terminal "T" of the agent at 127.0.0.1:7001 (never dialled), in `status` when given. */
  async terminal({ tenantId, storeId }: TenantStore, agentId: string, status?: 'UNKNOWN' | 'ONLINE'): Promise<string> {
    return this.insert('Terminal', {
      tenantId,
      storeId,
      agentId,
      name: 'T',
      protocol: 'JOINPROTO',
      connection: { kind: 'tcp', host: '127.0.0.1', port: 7001 },
      ...(status ? { status } : {}),
    });
  }

  /**
   * A tenant, a store, an enrolled agent (its credential's `token` for `dialAgent`) and its Joinproto terminal at
   * 127.0.0.1:`port` (a simulator), its info read just now.
   */
  async joinprotoShop(port: number): Promise<TenantStore & { agentId: string; terminalId: string; token: string }> {
    const at = await this.tenantWithStore();
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const agentId = await this.agent(at, { credential });
    const terminalId = await this.insert('Terminal', {
      tenantId: at.tenantId,
      storeId: at.storeId,
      agentId,
      name: 'POS',
      protocol: 'JOINPROTO',
      connection: { kind: 'tcp', host: '127.0.0.1', port },
      infoReadAt: new Date(),
    });
    return { ...at, agentId, terminalId, token: credential.token };
  }

  /** A PENDING purchase of `amount` RUB on the shop's terminal, inserted as the gateway does; its id. */
  async purchase(at: TenantStore & { terminalId: string }, amount: number): Promise<string> {
    const { row } = await this.db.withTenant(at.tenantId, (tx) =>
      insertOperation(tx, {
        tenantId: at.tenantId,
        terminalId: at.terminalId,
        storeId: at.storeId,
        type: 'purchase',
        amount,
        currency: 'RUB',
        idempotencyKey: `harness-${randomBytes(8).toString('hex')}`,
        requestHash: 'h',
      }),
    );
    return row.id;
  }

  private async insert(table: 'Agent' | 'Terminal', values: Record<string, unknown>): Promise<string> {
    const columns = Object.keys(values);
    const { rows } = await this.admin.query<{ id: string }>(
      `INSERT INTO "${table}" (id, ${columns.map((c) => `"${c}"`).join(', ')}, "updatedAt")
       VALUES (gen_random_uuid(), ${columns.map((_, i) => `$${i + 1}`).join(', ')}, now()) RETURNING id`,
      Object.values(values),
    );
    return rows[0]!.id;
  }
}

/**
 * An agent's tunnel to the connector at `url` (`http://…`) with this credential, as the agent CLI opens it, without
 * heartbeats; it accepts every link the connector opens (they are never dialled).
 */
export function dialAgent(url: string, token: string): { ws: WebSocket; mux: Multiplexer } {
  const ws = openAgentSocket(url, token);
  return { ws, mux: tunnelOver(ws) };
}

/**
 * As the agent does: every link the connector opens on `mux` is bridged to the terminal at its address on loopback
 * (`port` for a link that names none), both ways, each end closing the other.
 */
export function bridgeLinksToLoopback(mux: Multiplexer, port: number): void {
  mux.setOpenHandler((request) => {
    const socket = connect(request.link.kind === 'tcp-connect' ? request.link.port : port, '127.0.0.1');
    socket.once('error', () => request.reject('REFUSED', 'the simulator refused'));
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      const link = toDuplex(request.accept());
      const end = () => {
        socket.destroy();
        link.destroy();
      };
      for (const stream of [socket, link]) {
        stream.on('error', end);
        stream.once('close', end);
      }
      socket.pipe(link);
      link.pipe(socket);
    });
  });
}

/** The WebSocket of `dialAgent` alone: upgraded (so registered as the agent's connection), no tunnel handshake yet. */
export function openAgentSocket(url: string, token: string): WebSocket {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/agent`, { headers: { Authorization: `Bearer ${token}`, 'X-Payorch-Agent-Version': '0.1.0' } });
  ws.on('error', () => undefined);
  return ws;
}

/** The agent's side of the tunnel over `ws` (its HELLO goes once the socket is open), as `dialAgent` makes it. */
export function tunnelOver(ws: WebSocket): Multiplexer {
  const mux = attachWebSocket(ws, { role: 'agent', software: 'payorch-agent/0.1.0', heartbeat: false });
  mux.setOpenHandler((request) => void request.accept());
  return mux;
}

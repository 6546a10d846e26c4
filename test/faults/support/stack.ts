import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { createPrismaClient, type PrismaClient } from '@payorch/db';
import {
  createTestDatabase,
  deleteRedisPrefix,
  freePort,
  REPO_ROOT,
  type TestDatabase,
  testRedisPrefix,
  testRedisUrl,
  tsEntryArgs,
  waitFor,
} from '@payorch/testing';
import { Redis } from 'ioredis';

import { AdminService } from '../../../apps/api-gateway/src/admin/admin.service';

/**
 * Issue 15: the whole payorch stack as **real child processes** on loopback, for process-level faults
 * (kill -9, restart) — gateway, device connector, settlement worker, each spawned as `node -r
 * @swc-node/register apps/<app>/src/main.ts` (what scripts/start.mjs runs, without the run-ts wrapper so a
 * SIGKILL hits the service itself), and the agent CLI connected to the connector through a TCP proxy the
 * test controls (cut / stall / resume). Terminal simulators run in the test process.
 */

// ---------------------------------------------------------------------------------------------------
// Every child of this process is SIGKILLed when it exits, whatever the tests did (jest exit included).
const allChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  allChildren.add(child);
  child.once('exit', () => allChildren.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of allChildren) c.kill('SIGKILL');
  });
}

/** GET url → HTTP status, 0 when nothing answers (refused, reset, timeout). */
export async function httpStatus(url: string, timeoutMs = 1_500): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

export interface ServiceSpec {
  name: string;
  /** TypeScript entry, relative to the repository root (run with the TypeScript loader; ignored with `command`). */
  entry: string;
  /**
   * A command to run instead of the TypeScript entry, from the repository root, e.g. a Compose service's
   * `['node', 'dist/apps/api-gateway/main.js']` (`node` = this Node binary); `args` are appended.
   */
  command?: string[];
  args?: string[];
  env: Record<string, string>;
  /** Only `env` (and PATH), not this process's environment, as a container would get it. */
  cleanEnv?: boolean;
  /** Working directory (default: the repository root). */
  cwd?: string;
  /** Readiness URL polled after start (none: started = spawned, e.g. the agent). */
  readyUrl?: string;
}

/** One service process: start, kill (default SIGKILL, awaited), restart with the same env. */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  private readonly output: string[] = [];
  private readonly lineListeners: Array<(line: string) => void> = [];
  /** Number of times it was started. */
  starts = 0;

  constructor(readonly spec: ServiceSpec) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The last lines it printed (stdout + stderr), for failure messages. */
  tail(lines = 40): string {
    return this.output.slice(-lines).join('\n');
  }

  /** Calls `listener` with every line it prints from now on (stdout + stderr, all of them, not only the tail). */
  onLine(listener: (line: string) => void): this {
    this.lineListeners.push(listener);
    return this;
  }

  /** Spawns it and, with a readyUrl, polls it until 200 within `timeoutMs`; fails early if it exits. */
  async start(timeoutMs = 60_000, args: string[] = this.spec.args ?? []): Promise<void> {
    if (this.child) throw new Error(`${this.spec.name} is already running`);
    const [bin, ...commandArgs] = this.spec.command ?? [];
    const [file, argv] =
      bin === undefined ? [process.execPath, tsEntryArgs(this.spec.entry, ...args)] : [bin === 'node' ? process.execPath : bin, [...commandArgs, ...args]];
    const child = spawn(file, argv, {
      cwd: this.spec.cwd ?? REPO_ROOT,
      env: this.spec.cleanEnv ? { PATH: process.env.PATH ?? '', ...this.spec.env } : { ...process.env, ...this.spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(child);
    this.child = child;
    this.starts += 1;
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      exited = `${this.spec.name} exited (${signal ?? code})`;
      if (this.child === child) this.child = undefined;
    });
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream?.on('data', (d: Buffer) => {
        const lines = (rest + d.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const listener of this.lineListeners) lines.forEach((line) => listener(line));
        this.output.push(...lines.map((l) => `[${this.spec.name}#${this.starts}] ${l}`));
        if (this.output.length > 400) this.output.splice(0, this.output.length - 400);
      });
    }
    const readyUrl = this.spec.readyUrl;
    if (!readyUrl) return;
    // Readiness, not a fixed delay: /health/ready answers 200; an exit while starting fails at once.
    await waitFor(
      async () => {
        if (exited) throw new Error(`${exited} while starting:\n${this.tail()}`);
        return (await httpStatus(readyUrl)) === 200;
      },
      { timeoutMs, intervalMs: 100, what: `${this.spec.name} ready (${readyUrl})` },
    ).catch((error: Error) => {
      throw exited ? error : new Error(`${error.message}:\n${this.tail()}`);
    });
  }

  /** Sends `signal` (default SIGKILL: no shutdown hook runs) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 15_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      exited,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    await exited;
    this.child = undefined;
  }

  async restart(timeoutMs?: number): Promise<void> {
    await this.kill();
    await this.start(timeoutMs);
  }
}

// ---------------------------------------------------------------------------------------------------

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Client → target bytes are held from a chunk holdFirst() matched on (never forwarded). */
  holding: boolean;
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target()`: cut() destroys every connection (a network drop),
 * stall() stops forwarding both ways without closing anything (a black-holed link; connections that
 * arrive meanwhile wait too), resume() forwards again, buffered bytes included.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<Pair>();
  private stalled = false;
  private holdMatch: ((chunk: Buffer) => boolean) | undefined;
  /** Connections accepted since start (e.g. how often the agent dialled). */
  accepted = 0;
  /** Connections whose client → target bytes are held (holdFirst). */
  held = 0;

  constructor(private readonly target: () => number) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get connections(): number {
    return this.pairs.size;
  }

  async listen(port = 0): Promise<number> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return this.port;
  }

  cut(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
  }

  stall(): void {
    this.stalled = true;
    for (const { client, upstream } of this.pairs) {
      client.pause();
      upstream.pause();
    }
  }

  resume(): void {
    this.stalled = false;
    for (const { client, upstream } of this.pairs) {
      client.resume();
      upstream.resume();
    }
  }

  /**
   * The first chunk a client sends that `match` accepts, and everything after it on that connection, is held
   * and never reaches the target (e.g. a gateway's XADD of a command: the test then kills the gateway, so the
   * command is never sent); `held` counts such connections. Other connections and directions flow on.
   * `undefined` disarms a match that has not happened.
   */
  holdFirst(match: ((chunk: Buffer) => boolean) | undefined): void {
    this.holdMatch = match;
  }

  async close(): Promise<void> {
    this.cut();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.accepted += 1;
    client.pause();
    const upstream = new Socket();
    const pair: Pair = { client, upstream, holding: false };
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (!pair.holding && this.holdMatch?.(chunk)) {
        this.holdMatch = undefined;
        pair.holding = true;
        this.held += 1;
      }
      if (!pair.holding) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    upstream.connect(this.target(), '127.0.0.1', () => {
      if (this.stalled) upstream.pause();
      else client.resume();
    });
  }
}

// ---------------------------------------------------------------------------------------------------

export type AppName = 'gateway' | 'connector' | 'worker';

export interface StackOptions {
  /** Default: the shared Redis (TEST_REDIS_URL or 127.0.0.1:6379). */
  redisUrl?: string;
  /** Default: a fresh database from createTestDatabase(). */
  database?: { adminUrl: string; appUrl: string };
  /** Extra env of the settlement worker (e.g. a shorter RECOVERY_INTERVAL_MS). */
  workerEnv?: Record<string, string>;
  /** Extra env of the device connector (e.g. a shorter PENDING_HOLD_INTERVAL_MS). */
  connectorEnv?: Record<string, string>;
  /** Route the gateway's Redis connections through `redisProxy` (to hold its command XADD: holdFirst()). */
  proxyGatewayRedis?: boolean;
}

/** Samples every app's /health/ready every `everyMs` in the background. */
export class HealthWatch {
  readonly samples: Record<AppName, { at: number; status: number }[]> = { gateway: [], connector: [], worker: [] };
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly urls: Record<AppName, string>,
    private readonly everyMs = 200,
  ) {}

  start(): this {
    const tick = async () => {
      const at = Date.now();
      const statuses = await Promise.all((Object.keys(this.urls) as AppName[]).map(async (app) => [app, await httpStatus(this.urls[app], 1_000)] as const));
      for (const [app, status] of statuses) this.samples[app].push({ at, status });
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.everyMs);
    };
    void tick();
    return this;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Statuses of `app` sampled at or after `since`. */
  since(app: AppName, since: number): number[] {
    return this.samples[app].filter((s) => s.at >= since).map((s) => s.status);
  }
}

/**
 * The process stack: one database (or the one given), one Redis prefix, one master key, spare ports;
 * gateway + connector + worker processes, and an agent process behind `proxy`. Use `tenant()` for an
 * API key, `enrollAgent()` to enroll and start the agent.
 */
export class ProcessStack {
  testDb: TestDatabase | undefined;
  adminUrl = '';
  appUrl = '';
  readonly prefix = testRedisPrefix('pfault');
  readonly masterKey = `k1:${randomBytes(32).toString('base64')}`;
  readonly ports: Record<AppName, number> = { gateway: 0, connector: 0, worker: 0 };
  proxy!: TcpProxy;
  /** Between the gateway and Redis (StackOptions.proxyGatewayRedis). */
  redisProxy: TcpProxy | undefined;
  gateway!: ServiceProcess;
  connector!: ServiceProcess;
  worker!: ServiceProcess;
  agent: ServiceProcess | undefined;
  owner!: PrismaClient;
  private redis: Redis | undefined;
  private redisUrl = '';
  private readonly agentStateDir = mkdtempSync(path.join(tmpdir(), 'payorch-agent-'));

  constructor(private readonly options: StackOptions = {}) {}

  url(app: AppName): string {
    return `http://127.0.0.1:${this.ports[app]}`;
  }

  readyUrl(app: AppName): string {
    return `${this.url(app)}/health/ready`;
  }

  get services(): Record<AppName | 'agent', ServiceProcess | undefined> {
    return { gateway: this.gateway, connector: this.connector, worker: this.worker, agent: this.agent };
  }

  /** Creates the database (unless given), picks ports, starts gateway, connector and worker in parallel. */
  async start(): Promise<this> {
    if (this.options.database) {
      ({ adminUrl: this.adminUrl, appUrl: this.appUrl } = this.options.database);
    } else {
      this.testDb = await createTestDatabase();
      ({ adminUrl: this.adminUrl, appUrl: this.appUrl } = this.testDb);
    }
    this.redisUrl = this.options.redisUrl ?? testRedisUrl();
    for (const app of Object.keys(this.ports) as AppName[]) this.ports[app] = await freePort();
    const common = {
      DATABASE_APP_URL: this.appUrl,
      REDIS_URL: this.redisUrl,
      REDIS_KEY_PREFIX: this.prefix,
      PAYORCH_MASTER_KEY: this.masterKey,
      LOG_LEVEL: 'warn',
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
    };
    let gatewayRedisUrl = this.redisUrl;
    if (this.options.proxyGatewayRedis) {
      const target = new URL(this.redisUrl);
      this.redisProxy = new TcpProxy(() => Number(target.port || 6379));
      const via = new URL(this.redisUrl);
      via.hostname = '127.0.0.1';
      via.port = String(await this.redisProxy.listen());
      gatewayRedisUrl = via.toString();
    }
    this.gateway = new ServiceProcess({
      name: 'gateway',
      entry: 'apps/api-gateway/src/main.ts',
      env: { ...common, REDIS_URL: gatewayRedisUrl, GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(this.ports.gateway) },
      readyUrl: this.readyUrl('gateway'),
    });
    this.connector = new ServiceProcess({
      name: 'connector',
      entry: 'apps/device-connector/src/main.ts',
      env: {
        ...common,
        CONNECTOR_HOST: '127.0.0.1',
        CONNECTOR_PORT: String(this.ports.connector),
        CONNECTOR_INSTANCE_ID: `pfault-${process.pid}`,
        ...this.options.connectorEnv,
      },
      readyUrl: this.readyUrl('connector'),
    });
    this.worker = new ServiceProcess({
      name: 'worker',
      entry: 'apps/settlement-worker/src/main.ts',
      env: { ...common, WORKER_HEALTH_HOST: '127.0.0.1', WORKER_HEALTH_PORT: String(this.ports.worker), ...this.options.workerEnv },
      readyUrl: this.readyUrl('worker'),
    });
    this.proxy = new TcpProxy(() => this.ports.connector);
    await this.proxy.listen();
    this.owner = createPrismaClient(this.adminUrl, { max: 2 });
    await Promise.all([this.gateway.start(), this.connector.start(), this.worker.start()]);
    return this;
  }

  /** A new tenant with an all-scopes API key (as the admin CLI makes it). */
  async tenant(): Promise<{ tenantId: string; apiKey: string }> {
    const admin = new AdminService(this.owner, 'faults');
    const tenant = await admin.createTenant(`Faults ${randomBytes(3).toString('hex')}`);
    const key = await admin.createApiKey({ tenantId: tenant.id, name: 'faults' });
    return { tenantId: tenant.id, apiKey: key.apiKey };
  }

  /** Enrolls the agent CLI through the proxy with `token` and leaves it running (`run` on restarts). */
  async enrollAgent(token: string): Promise<ServiceProcess> {
    const agent = new ServiceProcess({
      name: 'agent',
      entry: 'apps/agent/src/cli.ts',
      args: ['--state-dir', this.agentStateDir, '--log-level', 'warn', 'run'],
      env: { PAYORCH_AGENT_STATE_DIR: this.agentStateDir },
    });
    this.agent = agent;
    await agent.start(undefined, [
      '--state-dir',
      this.agentStateDir,
      '--log-level',
      'warn',
      '--connector',
      `ws://127.0.0.1:${this.proxy.port}/agent`,
      '--token',
      token,
    ]);
    return agent;
  }

  /** Operations of the database not in a final state (owner connection: every tenant). */
  async nonFinal(): Promise<{ id: string; state: string }[]> {
    return this.owner.terminalOperation.findMany({
      where: { state: { notIn: ['APPROVED', 'DECLINED', 'CANCELED', 'FAILED'] } },
      select: { id: true, state: true },
    });
  }

  /** Last output lines of every process, for failure messages. */
  logs(): string {
    return Object.values(this.services)
      .filter((s): s is ServiceProcess => s !== undefined)
      .map((s) => s.tail(30))
      .join('\n');
  }

  /** Kills every process (SIGKILL), closes the proxy, drops the database and the Redis prefix. */
  async stop(): Promise<void> {
    await Promise.allSettled(Object.values(this.services).map((s) => s?.kill()));
    await this.proxy?.close();
    await this.redisProxy?.close();
    await this.owner?.$disconnect().catch(() => undefined);
    if (this.redisUrl) {
      this.redis = new Redis(this.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
      await this.redis
        .connect()
        .then(() => deleteRedisPrefix(this.redis as Redis, this.prefix))
        .catch(() => undefined);
      this.redis.disconnect();
    }
    await this.testDb?.drop().catch(() => undefined);
    rmSync(this.agentStateDir, { recursive: true, force: true });
  }
}

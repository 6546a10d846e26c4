/**
 * Issue 20: a campaign over 10,000 simulated terminals (quick: 200).
 *  1. Terminal steps per second of a campaign (`load_keys`) against the same number of the same operations
 *     created and executed directly (insertOperation, then the connector runs them, same concurrency, same
 *     terminals), with SQL statements / transactions per step.
 *  2. Redis `used_memory` at 10 %, 50 % and 90 % of the campaign: flat = max / min close to 1.
 *  3. Run first: a campaign over the first KILL_TERMINALS of them (2,000; quick: 100) whose worker is killed
 *     (SIGKILL) at 40 %; a new worker resumes it, and every terminal must have executed that campaign's command
 *     exactly once (the terminals' journals, kept outside the worker, outlive it). It also warms Redis up: 1 and 2
 *     are measured on the new worker, with BullMQ's retention caps (event streams of ~10,000 entries, 1,000 kept
 *     webhook jobs) reached in full mode, as on a Redis in service.
 *
 * Both paths start at the real settlement worker in a child process (bench/campaigns/worker.ts: createWorkerApp,
 * the `campaigns` BullMQ flow, the Redis command bus with `replyWhen: 'queued'`). Then, CAMPAIGN_PATH:
 *  - `driver` (default): this process as the device connector (the bus's CommandConsumer → OperationCommandHandler
 *    → executor, PostgreSQL under RLS) → one in-process simulated terminal per target (a TerminalDriver answering
 *    `load_keys` after LATENCY_MS, journaling operation ids). No agent tunnel and no protocol codec. Direct
 *    operations: the same handler called in-process.
 *  - `tunnel`: the real device connector app in this process (createConnectorApp: its bus consumer, TerminalHub,
 *    the Joinproto driver, DF01 from the terminal's persisted counter) → WebSocket tunnel → the agents' code
 *    (TunnelClient + LinkBridge, PER_STORE terminals each) → TCP → one Joinproto terminal simulator per terminal
 *    (libs/testing joinproto-sim, command 14 LoadKeys answered after LATENCY_MS), agents and simulators in child
 *    processes (bench/campaigns/fleet.ts, TERMINALS_PER_FLEET each: descriptors are per process) whose journals
 *    hold the DF01 of every LoadKeys executed. Direct operations: dispatched over the Redis command bus to that
 *    connector (`replyWhen: 'done'`), as the gateway submits them.
 * Real PostgreSQL (a fresh database) and a redis-server of its own on a spare port (memory measured alone).
 *
 * Run: [CAMPAIGN_PATH=tunnel] node scripts/run-ts.mjs bench/campaigns/campaigns.bench.ts [terminals] [concurrency=32] [latencyMs=10]
 * (terminals: driver 10,000, tunnel TUNNEL_FULL_TERMINALS; quick: driver 200, tunnel 100 over 2 agents).
 */
import 'reflect-metadata';

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

import { bullConnection } from '../../apps/settlement-worker/src/redis-connection';
import { CAMPAIGN_QUEUE, type CampaignJobData, campaignJobId, DEFAULT_POLICY, insertCampaign, type NewCampaignTarget, planWaves } from '@payorch/campaigns';
import { CommandConsumer, databaseAgentResolver, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { issueToken, TOKEN_KINDS, type TerminalCommand, type TerminalCommandReply } from '@payorch/domain';
import type { ExecuteHooks, OperationCommand, OperationOutcome, TerminalDriver } from '@payorch/drivers';
import { createLogger } from '@payorch/logging';
import { insertOperation, OperationCommandHandler } from '@payorch/operations';
import { bullPrefix } from '@payorch/redis';
import { createTestDatabase, OwnedRedis, REPO_ROOT, type TestDatabase, tsEntryArgs } from '@payorch/testing';

import { createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import { loadKeysCampaign } from '../../apps/settlement-worker/src/campaigns/testing/campaign-harness.testing';
import { QUICK, reportRow } from '../support/report';
import { installSqlCounter, perEvent, type SqlCounts, sqlSnapshot } from '../support/sql-counter';

// Before the connector creates its pools: the connector's share of the SQL per step.
installSqlCounter();

const TUNNEL = process.env.CAMPAIGN_PATH === 'tunnel';
/** The tunnel path's full-mode fleet: what the shared 2-core machine runs in ~6 minutes (bench/README.md). */
const TUNNEL_FULL_TERMINALS = 5_000;
const [TERMINALS = TUNNEL ? (QUICK ? 100 : TUNNEL_FULL_TERMINALS) : QUICK ? 200 : 10_000, CONCURRENCY = 32, LATENCY_MS = 10] = process.argv
  .slice(2)
  .map(Number);
/** The kill -9 campaign's terminals: what it checks (exactly once per terminal) does not need the whole fleet. */
const KILL_TERMINALS = Math.min(TERMINALS, QUICK ? 100 : 2_000);
/** Terminals per store and per agent (tunnel: 100 agents × 100 terminals at 10,000): stores bound no step here, the tenant limit does. */
const PER_STORE = TUNNEL && !QUICK ? 100 : 50;
/** Tunnel path: terminals per fleet child process, 3 descriptors each (simulator listener and both ends of its link) under `ulimit -n` 20,000. */
const TERMINALS_PER_FLEET = 5_000;
const PATH_NAME = TUNNEL ? 'tunnel' : 'driver';
/** How often the bench looks at the terminals' progress (tunnel path: an IPC round trip to each fleet child). */
const POLL_MS = TUNNEL ? 20 : 5;
const PREFIX = `bench-campaigns-${randomBytes(3).toString('hex')}`;
const INSTANCE = 'bench-connector';
const KILL_AT = 0.4;

/**
 * A terminal in this process: runs `load_keys` in LATENCY_MS, after storing its protocol reference like a real
 * driver (the executor's beforeSend), and journals every operation it executed. The journals outlive worker
 * kills: they are what "exactly once" is checked against.
 */
class SimulatedTerminal implements TerminalDriver {
  readonly protocol = 'JOINPROTO' as const;
  readonly journal: string[] = [];

  constructor(private readonly onExecuted: () => void) {}

  async execute(command: OperationCommand, hooks: ExecuteHooks): Promise<OperationOutcome> {
    await hooks.beforeSend({ simSeq: this.journal.length + 1 });
    await new Promise((resolve) => setTimeout(resolve, LATENCY_MS));
    this.journal.push(command.operationId);
    this.onExecuted();
    return { state: 'approved', responseCode: '000', responseMessage: 'KEYS LOADED', data: { keys: 'loaded' } };
  }

  async cancel(): Promise<'not_running'> {
    return 'not_running';
  }

  async recover(): Promise<OperationOutcome> {
    return { state: 'unknown', reason: 'the simulated terminal keeps no last-result record' };
  }

  async terminalInfo(): Promise<Record<string, unknown>> {
    return { model: 'bench-sim' };
  }

  async close(): Promise<void> {}
}

/** The worker child process: started, killed (SIGKILL) or stopped; its latest cumulative SQL counts. */
class WorkerProcess {
  private child: ChildProcess | undefined;
  sql: SqlCounts = { statements: 0, transactions: 0 };
  private sqlLines = 0;
  private readonly tail: string[] = [];

  constructor(private readonly env: Record<string, string>) {}

  async start(): Promise<void> {
    const child = spawn(process.execPath, tsEntryArgs('bench/campaigns/worker.ts'), {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.sql = { statements: 0, transactions: 0 };
    child.stderr.on('data', (d: Buffer) => this.keep(d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code, signal) => reject(new Error(`bench worker exited (${signal ?? code}) while starting:\n${this.tail.join('\n')}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line === 'READY') resolve();
        else if (line.startsWith('SQL ')) {
          this.sql = JSON.parse(line.slice(4)) as SqlCounts;
          this.sqlLines += 1;
        } else this.keep(line);
      });
    });
    child.removeAllListeners('exit');
  }

  /** The counts printed after this call (the worker prints them every 200 ms). */
  async freshSql(): Promise<SqlCounts> {
    const seen = this.sqlLines;
    while (this.sqlLines < seen + 2) await new Promise((resolve) => setTimeout(resolve, 50));
    return this.sql;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
    this.child = undefined;
  }

  private keep(text: string): void {
    this.tail.push(text);
    if (this.tail.length > 40) this.tail.shift();
  }
}

interface Fleet {
  tenantId: string;
  terminals: { id: string; storeId: string; agentId: string }[];
  /** One per store; `credential` is the agent's tunnel credential (its hash and prefix are stored). */
  agents: { id: string; storeId: string; credential: string }[];
}

/** The fleet's ids, made here so the tunnel path's simulators can listen before the rows (their ports) exist. */
function planFleet(): Fleet {
  const fleet: Fleet = { tenantId: randomUUID(), terminals: [], agents: [] };
  for (let s = 0; s * PER_STORE < TERMINALS; s++) {
    const agent = { id: randomUUID(), storeId: randomUUID(), credential: '' };
    fleet.agents.push(agent);
    for (let i = 0; i < Math.min(PER_STORE, TERMINALS - s * PER_STORE); i++)
      fleet.terminals.push({ id: randomUUID(), storeId: agent.storeId, agentId: agent.id });
  }
  return fleet;
}

/** The tenant, one store and agent (ACTIVE, with a credential) per PER_STORE terminals, the terminals (JOINPROTO, TCP to `portOf`). */
async function seed(owner: PrismaClient, fleet: Fleet, portOf: (terminalId: string) => number): Promise<void> {
  await owner.tenant.create({ data: { id: fleet.tenantId, name: 'Bench campaigns' } });
  await owner.store.createMany({
    data: fleet.agents.map((a, s) => ({ id: a.storeId, tenantId: fleet.tenantId, name: `Store ${s}`, timeZone: 'Europe/Moscow' })),
  });
  const tokens = fleet.agents.map(() => issueToken(TOKEN_KINDS.agentCredential));
  fleet.agents.forEach((agent, s) => (agent.credential = tokens[s]!.token));
  await owner.agent.createMany({
    data: fleet.agents.map((a, s) => ({
      id: a.id,
      tenantId: fleet.tenantId,
      storeId: a.storeId,
      name: `Till ${s}`,
      status: 'ACTIVE' as const,
      credentialHash: tokens[s]!.hash,
      credentialPrefix: tokens[s]!.prefix,
    })),
  });
  await owner.terminal.createMany({
    data: fleet.terminals.map((t, i) => ({
      id: t.id,
      tenantId: fleet.tenantId,
      storeId: t.storeId,
      agentId: t.agentId,
      name: `T${i}`,
      protocol: 'JOINPROTO' as const,
      connection: { kind: 'tcp', host: '127.0.0.1', port: portOf(t.id) },
    })),
  });
}

/**
 * The connector side as the bench sees it, per path: what the terminals executed, the direct baseline, and the
 * terminals' journals (an entry per `load_keys` executed: the operation id on the driver path, the DF01 on the
 * tunnel path; `journalKey` gives an operation's entry).
 */
interface BenchConnector {
  /** How the command reaches a terminal, for the printout. */
  readonly description: string;
  /** `load_keys` executed by the terminals so far. */
  executed(): Promise<number>;
  /** Runs one created operation the way a directly submitted one runs; throws unless the connector ran it. */
  direct(terminal: Fleet['terminals'][number], operationId: string): Promise<void>;
  journals(terminalIds: string[]): Promise<string[][]>;
  journalKey(operation: { id: string; protocolRefs: unknown }): string | undefined;
  close(): Promise<void>;
}

/** Driver path: this process is the connector (bus consumer → OperationCommandHandler) for in-process SimulatedTerminals. */
async function driverConnector(db: Database, redis: Redis, fleet: Fleet): Promise<BenchConnector> {
  let executed = 0;
  const sims = new Map(fleet.terminals.map((t) => [t.id, new SimulatedTerminal(() => (executed += 1))]));
  const handler = new OperationCommandHandler(db);
  for (const agent of fleet.agents) await redis.set(`${PREFIX}:owner:agent:${agent.id}`, INSTANCE);
  const consumer = new CommandConsumer({
    redis,
    prefix: PREFIX,
    instanceId: INSTANCE,
    handler: async (command: TerminalCommand): Promise<TerminalCommandReply> => {
      const sim = sims.get(command.terminalId);
      if (!sim) return { ok: false, code: 'TERMINAL_OFFLINE', message: 'not a bench terminal' };
      return handler.handle(command, sim);
    },
  });
  await consumer.start();
  return {
    description:
      'worker child process (BullMQ flow, command bus, replyWhen queued) → this process as connector (CommandConsumer → OperationCommandHandler → executor) → in-process simulated terminal (no tunnel, no codec)',
    executed: async () => executed,
    direct: async (terminal, operationId) => {
      const reply = await handler.handle({ kind: 'operation.execute', tenantId: fleet.tenantId, terminalId: terminal.id, operationId }, sims.get(terminal.id)!);
      if (!reply.ok) throw new Error(`direct operation failed: ${reply.code} ${reply.message}`);
    },
    journals: async (terminalIds) => terminalIds.map((id) => [...sims.get(id)!.journal]),
    journalKey: (operation) => operation.id,
    close: () => consumer.stop(),
  };
}

/** A bench/campaigns/fleet.ts child: simulators and agents for a share of the terminals, answering typed IPC messages. */
class FleetProcess {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<string, (message: Record<string, unknown>) => void>();
  readonly booted: Promise<Record<string, unknown>>;

  constructor() {
    this.child = spawn(process.execPath, tsEntryArgs('bench/campaigns/fleet.ts'), { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (message: Record<string, unknown>) => {
      const resolve = this.waiting.get(message.type as string);
      this.waiting.delete(message.type as string);
      resolve?.(message);
    });
    this.booted = this.next('booted');
  }

  /** Sends `{type, ...extra}` and resolves with the child's `answer` message (one question of a type at a time). */
  ask<T>(type: string, answer: string, extra: object = {}): Promise<T> {
    const reply = this.next(answer) as Promise<T>;
    this.child.send({ type, ...extra });
    return reply;
  }

  private next(type: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`bench fleet exited (${signal ?? code}) before '${type}'`));
      this.child.once('exit', onExit);
      this.waiting.set(type, (message) => {
        this.child.removeListener('exit', onExit);
        resolve(message);
      });
    });
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** Tunnel path, before the rows exist: the fleet children with their simulators listening; the terminals' ports. */
async function startFleets(fleet: Fleet, fleets: FleetProcess[]): Promise<Map<string, number>> {
  const ports = new Map<string, number>();
  const agentsPerFleet = Math.max(1, Math.floor(TERMINALS_PER_FLEET / PER_STORE));
  for (let a = 0; a < fleet.agents.length; a += agentsPerFleet) {
    const agentIds = new Set(fleet.agents.slice(a, a + agentsPerFleet).map((agent) => agent.id));
    const terminalIds = fleet.terminals.filter((t) => agentIds.has(t.agentId)).map((t) => t.id);
    const child = new FleetProcess();
    fleets.push(child);
    await child.booted;
    const answer = await child.ask<{ ports: number[] }>('simulators', 'ports', { terminalIds, latencyMs: LATENCY_MS });
    terminalIds.forEach((id, i) => ports.set(id, answer.ports[i]!));
  }
  return ports;
}

/**
 * Tunnel path: the device connector app in this process (its SQL counted with the bench's), the fleet children's
 * agents dialling it; ready once every terminal is ONLINE with its info (the connector probed its link).
 */
async function tunnelConnector(
  owner: PrismaClient,
  db: Database,
  redis: Redis,
  fleet: Fleet,
  fleets: FleetProcess[],
  env: Record<string, string>,
): Promise<BenchConnector> {
  const silent = createLogger({ name: 'bench-connector', level: 'silent' });
  const app = await createConnectorApp(loadConfig('device-connector', connectorConfigSchema, { ...env, CONNECTOR_INSTANCE_ID: INSTANCE }), silent);
  const dispatcher = new RedisTerminalCommandDispatcher({ redis, prefix: PREFIX, resolveAgent: databaseAgentResolver(db) });
  const close = async () => {
    await Promise.allSettled(fleets.map((f) => f.kill()));
    await dispatcher.close();
    await app.close();
  };
  try {
    await app.listen(0, '127.0.0.1');
    const url = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/agent`;
    const agentsPerFleet = Math.max(1, Math.floor(TERMINALS_PER_FLEET / PER_STORE));
    for (const [f, child] of fleets.entries()) {
      const credentials = fleet.agents.slice(f * agentsPerFleet, (f + 1) * agentsPerFleet).map((a) => a.credential);
      await child.ask('agents', 'agents', { url, credentials });
    }
    const started = performance.now();
    const online = async () =>
      (await owner.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM "Terminal" WHERE status = 'ONLINE' AND info IS NOT NULL`)[0]!.n;
    for (let n = await online(); n < fleet.terminals.length; n = await online()) {
      if (performance.now() - started > 120_000 + fleet.terminals.length * 20)
        throw new Error(`only ${n}/${fleet.terminals.length} terminals online through the tunnel`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    process.stdout.write(
      `${fleet.agents.length} agents and ${fleet.terminals.length} terminals online through the tunnel in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
  } catch (error) {
    await close();
    throw error;
  }
  const ask = async <T>(type: string): Promise<T[]> => Promise.all(fleets.map((f) => f.ask<T>(type, type)));
  return {
    description: `worker child process (BullMQ flow, command bus, replyWhen queued) → connector app in this process (bus consumer → TerminalHub → Joinproto driver) → WebSocket tunnel → ${fleet.agents.length} agents (TunnelClient + LinkBridge, ${PER_STORE} terminals each, in ${fleets.length} child process(es)) → TCP → Joinproto terminal simulators (14 LoadKeys)`,
    executed: async () => (await ask<{ count: number }>('executed')).reduce((n, answer) => n + answer.count, 0),
    direct: async (terminal, operationId) => {
      const reply = await dispatcher.dispatch(
        { kind: 'operation.execute', tenantId: fleet.tenantId, terminalId: terminal.id, operationId },
        { agentId: terminal.agentId },
      );
      if (!reply.ok) throw new Error(`direct operation failed: ${reply.code} ${reply.message}`);
    },
    journals: async (terminalIds) => {
      const merged: Record<string, string[]> = Object.assign({}, ...(await ask<{ df01s: Record<string, string[]> }>('journal')).map((answer) => answer.df01s));
      return terminalIds.map((id) => merged[id] ?? []);
    },
    journalKey: (operation) => {
      const df01 = (operation.protocolRefs as { df01?: unknown } | null)?.df01;
      return typeof df01 === 'string' ? df01 : undefined;
    },
    close,
  };
}

/** The gateway's POST /v1/campaigns, minus HTTP: the campaign, waves and targets in one transaction, then `campaign.run`. */
async function startCampaign(db: Database, queue: Queue, tenantId: string, terminals: Fleet['terminals'], name: string): Promise<string> {
  const policy = { ...DEFAULT_POLICY, waveSize: { percent: 10 }, maxConcurrentPerTenant: CONCURRENCY, maxConcurrentPerStore: PER_STORE };
  const waves = planWaves(terminals.length, policy);
  const targets: NewCampaignTarget[] = [];
  let next = 0;
  for (const wave of waves) {
    for (const t of terminals.slice(next, next + wave.size))
      targets.push({ terminalId: t.id, storeId: t.storeId, waveIndex: wave.index, state: 'PENDING' as const });
    next += wave.size;
  }
  const created = await db.withTenant(tenantId, (tx) => insertCampaign(tx, loadKeysCampaign({ tenantId, name, policy, waves, targets })));
  const campaignId = created!.campaign.id;
  const data: CampaignJobData['campaign.run'] = { tenantId, campaignId };
  await queue.add('campaign.run', data, { jobId: campaignJobId(campaignId), removeOnComplete: { count: 1000 }, removeOnFail: false });
  return campaignId;
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

/** Runs `task(i)` for i < n with at most `limit` at once. */
async function pool(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

/**
 * Where a step's time went, from the rows (means over the campaign's targets): the pace of claims within a
 * wave, claim → SENT (dispatch over the bus, connector queue, executor claim), SENT → outcome (the terminal,
 * LATENCY_MS, plus the outcome's transaction), outcome → target ended (the step's row follow and its end
 * transaction), and the pause between a wave's last step and the next wave's first claim.
 */
async function stepTimeline(owner: PrismaClient, campaignId: string) {
  const [row] = await owner.$queryRaw<{ claims_per_s: number; to_sent: number; sent_to_done: number; done_to_target: number; wave_gap: number }[]>`
    WITH steps AS (
      SELECT t."waveIndex" AS wave, o."createdAt" AS claimed, s."createdAt" AS sent, o."completedAt" AS done, t."completedAt" AS ended
      FROM "CampaignTarget" t
      JOIN "TerminalOperation" o ON o."id" = t."operationId"
      JOIN "OperationEvent" s ON s."operationId" = o."id" AND s."toState" = 'SENT'
      WHERE t."campaignId" = ${campaignId}::uuid),
    waves AS (
      SELECT wave, count(*) AS n, min(claimed) AS first_claim, max(claimed) AS last_claim, max(ended) AS last_end FROM steps GROUP BY wave)
    SELECT
      (SELECT sum(n - 1) / NULLIF(sum(extract(epoch FROM last_claim - first_claim)), 0) FROM waves)::float8 AS claims_per_s,
      avg(extract(epoch FROM sent - claimed))::float8 AS to_sent,
      avg(extract(epoch FROM done - sent))::float8 AS sent_to_done,
      avg(extract(epoch FROM ended - done))::float8 AS done_to_target,
      (SELECT avg(extract(epoch FROM b.first_claim - a.last_end)) FROM waves a JOIN waves b ON b.wave = a.wave + 1)::float8 AS wave_gap
    FROM steps`;
  return {
    claimsPerS: row?.claims_per_s ?? 0,
    toSent: row?.to_sent ?? 0,
    sentToDone: row?.sent_to_done ?? 0,
    doneToTarget: row?.done_to_target ?? 0,
    waveGap: row?.wave_gap ?? 0,
  };
}

/** The three key families (ids replaced by `<id>`) holding the most memory, e.g. `hash …:webhooks:<id> ×521 0.75 MiB`. */
async function largestKeyFamilies(redis: Redis): Promise<string> {
  const families = new Map<string, { keys: number; bytes: number }>();
  for (const key of await redis.keys(`${PREFIX}*`)) {
    const family = key
      .slice(PREFIX.length)
      .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>')
      .replace(/-wave-\d+/, '-wave-<n>');
    const entry = families.get(family) ?? { keys: 0, bytes: 0 };
    entry.keys += 1;
    entry.bytes += Number(await redis.memory('USAGE', key));
    families.set(family, entry);
  }
  return [...families]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, 3)
    .map(([family, e]) => `${family} ×${e.keys} ${(e.bytes / 1048576).toFixed(2)} MiB`)
    .join(', ');
}

async function main(): Promise<void> {
  const redisServer = await new OwnedRedis().start();
  let testDb: TestDatabase | undefined;
  let owner: PrismaClient | undefined;
  let db: Database | undefined;
  let connector: BenchConnector | undefined;
  const workers: WorkerProcess[] = [];
  const fleets: FleetProcess[] = [];
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  try {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 8);
    const env = {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_URL: redisServer.url,
      REDIS_KEY_PREFIX: PREFIX,
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: 'warn',
    };
    const fleet = planFleet();
    // Tunnel path: the simulators listen first, their ports go into the terminals' rows.
    const ports = TUNNEL ? await startFleets(fleet, fleets) : new Map<string, number>();
    await seed(owner, fleet, (id) => ports.get(id) ?? 1);
    connector = TUNNEL ? await tunnelConnector(owner, db, redis, fleet, fleets, env) : await driverConnector(db, redis, fleet);

    // Baseline: the same operations created and executed directly, same concurrency, same terminals.
    const sqlDirect0 = sqlSnapshot();
    const directStart = performance.now();
    await pool(fleet.terminals.length, CONCURRENCY, async (i) => {
      const terminal = fleet.terminals[i]!;
      const { row } = await db!.withTenant(fleet.tenantId, (tx) =>
        insertOperation(tx, {
          tenantId: fleet.tenantId,
          terminalId: terminal.id,
          storeId: terminal.storeId,
          type: 'load_keys',
          idempotencyKey: `direct:${terminal.id}`,
          requestHash: 'direct',
        }),
      );
      await connector!.direct(terminal, row.id);
    });
    const directMs = performance.now() - directStart;
    const sqlDirect = perEvent(sqlDirect0, sqlSnapshot(), fleet.terminals.length);

    const workerEnv = {
      ...env,
      WORKER_CONCURRENCY: String(CONCURRENCY),
      SETTLEMENT_SYNC_INTERVAL_MS: '600000',
      WEBHOOK_SWEEP_INTERVAL_MS: '600000',
      WALLET_SWEEP_INTERVAL_MS: '600000',
    };
    const queue = new Queue(CAMPAIGN_QUEUE, { connection: bullConnection(redisServer.url), prefix: bullPrefix(PREFIX) });
    const completed = async (campaignId: string) => (await owner!.campaign.findUniqueOrThrow({ where: { id: campaignId } })).state === 'COMPLETED';
    const untilCompleted = async (campaignId: string) => {
      while (!(await completed(campaignId))) await new Promise((resolve) => setTimeout(resolve, 200));
    };

    // 3 first: a campaign over KILL_TERMINALS whose worker is killed at KILL_AT; a new one resumes it. It also
    // brings Redis to its steady state (BullMQ's event streams and the kept webhook jobs reach their caps in full mode).
    const first = new WorkerProcess(workerEnv);
    workers.push(first);
    await first.start();
    const killFleet = fleet.terminals.slice(0, KILL_TERMINALS);
    const killIds = killFleet.map((t) => t.id);
    const journaledBefore = (await connector.journals(killIds)).map((journal) => journal.length);
    const executedBeforeB = await connector.executed();
    const executedInB = async () => (await connector!.executed()) - executedBeforeB;
    const campaignB = await startCampaign(db, queue, fleet.tenantId, killFleet, 'bench-kill');
    while ((await executedInB()) < KILL_AT * killFleet.length) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const killedAt = performance.now();
    await first.kill('SIGKILL');
    const executedAtKill = await executedInB();
    const second = new WorkerProcess(workerEnv);
    workers.push(second);
    await second.start();
    const restartedMs = performance.now() - killedAt;
    await untilCompleted(campaignB);
    const resumeMs = performance.now() - killedAt;
    // Each terminal's journal entries while campaign B ran (nothing else ran on them): B's own, and any other.
    const opsB = await owner.terminalOperation.findMany({
      where: { requestHash: `campaign:${campaignB}` },
      select: { id: true, terminalId: true, protocolRefs: true },
    });
    const keysOfB = new Set(opsB.map((o) => connector!.journalKey(o)).filter((key) => key !== undefined));
    const during = (await connector.journals(killIds)).map((journal, i) => journal.slice(journaledBefore[i]));
    const runs = during.map((entries) => entries.filter((key) => keysOfB.has(key)).length);
    const repeated = runs.filter((n) => n > 1).length;
    const missing = runs.filter((n) => n === 0).length;
    const strays = during.reduce((n, entries) => n + entries.filter((key) => !keysOfB.has(key)).length, 0);
    const targetsB = await owner.campaignTarget.groupBy({ by: ['state'], where: { campaignId: campaignB }, _count: { _all: true } });
    const secondOps = opsB.length - new Set(opsB.map((o) => o.terminalId)).size;

    // 1 + 2: a campaign over every terminal, on the new worker; Redis memory at 10 / 50 / 90 % of the terminals executed.
    const memory: { at: number; bytes: number }[] = [{ at: 0, bytes: await usedMemory(redis) }];
    const sqlWorker0 = await second.freshSql();
    const sqlConnector0 = sqlSnapshot();
    const executedBeforeA = await connector.executed();
    const campaignStart = performance.now();
    const campaignA = await startCampaign(db, queue, fleet.tenantId, fleet.terminals, 'bench-rollout');
    for (const share of [0.1, 0.5, 0.9]) {
      while ((await connector.executed()) - executedBeforeA < share * fleet.terminals.length) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      memory.push({ at: share, bytes: await usedMemory(redis) });
    }
    await untilCompleted(campaignA);
    const campaignMs = performance.now() - campaignStart;
    const sqlWorker1 = await second.freshSql();
    const sqlConnector1 = sqlSnapshot();
    const steps = fleet.terminals.length;
    const sum = (a: SqlCounts, b: SqlCounts): SqlCounts => ({ statements: a.statements + b.statements, transactions: a.transactions + b.transactions });
    const sqlCampaign = perEvent(sum(sqlWorker0, sqlConnector0), sum(sqlWorker1, sqlConnector1), steps);
    const sqlWorkerOnly = perEvent(sqlWorker0, sqlWorker1, steps);
    const endMemory = await usedMemory(redis);
    const timeline = await stepTimeline(owner, campaignA);
    const growth = await largestKeyFamilies(redis);
    await queue.close();

    const stepsPerS = steps / (campaignMs / 1000);
    const directPerS = steps / (directMs / 1000);
    const bytes = memory.slice(1).map((m) => m.bytes);
    const [minMem, maxMem] = [Math.min(...bytes), Math.max(...bytes)];
    const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;
    const ms = (seconds: number) => `${(seconds * 1000).toFixed(0)} ms`;
    process.stdout.write(
      [
        `terminals=${steps} (${fleet.agents.length} stores/agents), concurrency=${CONCURRENCY} (maxConcurrentPerTenant and WORKER_CONCURRENCY), simulated load_keys latency=${LATENCY_MS} ms, waves of 10 %`,
        `path (${PATH_NAME}): ${connector.description}`,
        `direct operations:   ${directPerS.toFixed(1).padStart(8)} ops/s   (${(directMs / 1000).toFixed(1)} s; ${sqlDirect.statements} statements in ${sqlDirect.transactions} transactions per operation)`,
        `campaign steps:      ${stepsPerS.toFixed(1).padStart(8)} steps/s (${(campaignMs / 1000).toFixed(1)} s; ${sqlCampaign.statements} statements in ${sqlCampaign.transactions} transactions per step, worker's share ${sqlWorkerOnly.statements} / ${sqlWorkerOnly.transactions}; bench completion polls included)`,
        `ratio campaign/direct: ${(stepsPerS / directPerS).toFixed(3)}`,
        `where a step's time goes (means over the campaign): claims ${timeline.claimsPerS.toFixed(1)}/s within a wave (one at a time per tenant), claim → SENT ${ms(timeline.toSent)}, SENT → outcome ${ms(timeline.sentToDone)}, outcome → target ended ${ms(timeline.doneToTarget)}, wave end → next wave's first claim ${ms(timeline.waveGap)}`,
        `Redis used_memory (after the kill test's campaign): before ${mib(memory[0]!.bytes)}, ${memory
          .slice(1)
          .map((m) => `${m.at * 100}% ${mib(m.bytes)}`)
          .join(', ')}, after ${mib(endMemory)}; max/min over 10–90 % ${(maxMem / minMem).toFixed(3)}`,
        `largest Redis key families after the campaign: ${growth}`,
        `worker kill -9 at ${executedAtKill}/${killFleet.length} executed: new worker ready ${(restartedMs / 1000).toFixed(1)} s and campaign finished ${(resumeMs / 1000).toFixed(1)} s after the kill; targets ${JSON.stringify(Object.fromEntries(targetsB.map((g) => [g.state, g._count._all])))}`,
        `terminals that executed the killed campaign's command twice or more: ${repeated}; never: ${missing}; load_keys executed meanwhile that were none of its operations: ${strays}; targets with a second operation: ${secondOps}`,
      ].join('\n') + '\n',
    );
    reportRow({
      bench: `campaign steps (${PATH_NAME} path) vs the same operations submitted directly (${steps} simulated terminals, concurrency ${CONCURRENCY})`,
      measured: stepsPerS,
      baseline: directPerS,
      unit: '/s',
      ratio: stepsPerS / directPerS,
      perEvent: sqlCampaign,
      note: `claims ${timeline.claimsPerS.toFixed(0)}/s, serialised per tenant, bound the pace; direct: ${sqlDirect.statements} statements / ${sqlDirect.transactions} transactions per operation`,
    });
    reportRow({
      bench: `Redis used_memory during the campaign (${PATH_NAME} path), max/min of 10/50/90 % (${steps} terminals)`,
      measured: maxMem,
      baseline: minMem,
      unit: 'bytes',
      ratio: maxMem / minMem,
      goal: { on: 'ratio', op: '<=', value: 1.25 },
      note: `largest: ${growth}`,
    });
    reportRow({
      bench: `terminals whose step ran twice or never after a worker kill -9 at ${KILL_AT * 100} % (${PATH_NAME} path, ${killFleet.length} terminals)`,
      measured: repeated + missing + strays,
      baseline: 0,
      unit: 'terminals',
      ratio: repeated + missing + strays,
      goal: { on: 'measured', op: '<=', value: 0 },
      note: `twice ${repeated}, never ${missing}, other load_keys ${strays} (${TUNNEL ? "simulators' journals by DF01" : 'journals by operation id'}); finished ${(resumeMs / 1000).toFixed(1)} s after the kill (new worker ready after ${(restartedMs / 1000).toFixed(1)} s)`,
    });
  } finally {
    await Promise.allSettled(workers.map((w) => w.kill('SIGKILL')));
    await connector?.close();
    await Promise.allSettled(fleets.map((f) => f.kill()));
    await db?.close();
    await owner?.$disconnect();
    await testDb?.drop();
    redis.disconnect();
    await redisServer.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

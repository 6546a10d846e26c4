/**
 * Issue 20: a campaign over 10,000 simulated terminals (quick: 200).
 *  1. Terminal steps per second of a campaign (`load_keys`) against the same number of the same operations
 *     created and executed directly (insertOperation + the connector's OperationCommandHandler, same
 *     concurrency, same simulated terminals), with SQL statements / transactions per step.
 *  2. Redis `used_memory` at 10 %, 50 % and 90 % of the campaign: flat = max / min close to 1.
 *  3. Run first: a campaign over the first KILL_TERMINALS of them (2,000; quick: 100) whose worker is killed
 *     (SIGKILL) at 40 %; a new worker resumes it, and every terminal must have executed that campaign's command
 *     exactly once (the simulated terminals' journals, kept in this process, outlive the worker). It also warms
 *     Redis up: 1 and 2 are measured on the new worker, with BullMQ's retention caps (event streams of ~10,000
 *     entries, 1,000 kept webhook jobs) reached in full mode, as on a Redis in service.
 *
 * Path measured: the real settlement worker in a child process (bench/campaigns/worker.ts: createWorkerApp, the
 * `campaigns` BullMQ flow, the Redis command bus with `replyWhen: 'queued'`) → this process as the device
 * connector (the bus's CommandConsumer → OperationCommandHandler → executor, PostgreSQL under RLS) → one
 * in-process simulated terminal per target (a TerminalDriver answering `load_keys` after LATENCY_MS, with a
 * journal). No agent tunnel and no protocol codec: those are measured by bench/tunnel and bench/joinproto.
 * Real PostgreSQL (a fresh database) and a redis-server of its own on a spare port (memory measured alone).
 *
 * Run: node scripts/run-ts.mjs bench/campaigns/campaigns.bench.ts [terminals=10000] [concurrency=32] [latencyMs=10]
 */
import 'reflect-metadata';

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

import { bullConnection } from '../../apps/settlement-worker/src/redis-connection';
import { CAMPAIGN_QUEUE, type CampaignJobData, campaignJobId, DEFAULT_POLICY, insertCampaign, type NewCampaignTarget, planWaves } from '@payorch/campaigns';
import { CommandConsumer } from '@payorch/command-bus';
import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import type { ExecuteHooks, OperationCommand, OperationOutcome, TerminalDriver } from '@payorch/drivers';
import { insertOperation, OperationCommandHandler } from '@payorch/operations';
import { bullPrefix } from '@payorch/redis';
import { createTestDatabase, OwnedRedis, REPO_ROOT, type TestDatabase, tsEntryArgs } from '@payorch/testing';

import { QUICK, reportRow } from '../support/report';
import { installSqlCounter, perEvent, type SqlCounts, sqlSnapshot } from '../support/sql-counter';

// Before the connector creates its pools: the connector's share of the SQL per step.
installSqlCounter();

const [TERMINALS = QUICK ? 200 : 10_000, CONCURRENCY = 32, LATENCY_MS = 10] = process.argv.slice(2).map(Number);
/** The kill -9 campaign's terminals: what it checks (exactly once per terminal) does not need the whole fleet. */
const KILL_TERMINALS = Math.min(TERMINALS, QUICK ? 100 : 2_000);
/** Terminals per store (and per agent): stores bound no step here, the tenant limit does. */
const PER_STORE = 50;
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
  terminals: { id: string; storeId: string }[];
  agents: string[];
}

async function seed(owner: PrismaClient): Promise<Fleet> {
  const tenantId = (await owner.tenant.create({ data: { name: 'Bench campaigns' } })).id;
  const terminals: Fleet['terminals'] = [];
  const agents: string[] = [];
  for (let s = 0; s * PER_STORE < TERMINALS; s++) {
    const storeId = (await owner.store.create({ data: { tenantId, name: `Store ${s}`, timeZone: 'Europe/Moscow' } })).id;
    const agentId = (await owner.agent.create({ data: { tenantId, storeId, name: `Till ${s}`, status: 'ACTIVE' } })).id;
    agents.push(agentId);
    const count = Math.min(PER_STORE, TERMINALS - s * PER_STORE);
    const rows = await owner.terminal.createManyAndReturn({
      data: Array.from({ length: count }, (_, i) => ({
        tenantId,
        storeId,
        agentId,
        name: `T${s}-${i}`,
        protocol: 'JOINPROTO' as const,
        connection: { kind: 'tcp', host: '127.0.0.1', port: 1 },
      })),
      select: { id: true },
    });
    terminals.push(...rows.map((r) => ({ id: r.id, storeId })));
  }
  return { tenantId, terminals, agents };
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
  const created = await db.withTenant(tenantId, (tx) =>
    insertCampaign(tx, {
      tenantId,
      name,
      idempotencyKey: name,
      operationType: 'LOAD_KEYS',
      params: {},
      selector: {},
      policy: { ...policy },
      deadline: null,
      waves,
      targets,
    }),
  );
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
  let consumer: CommandConsumer | undefined;
  const workers: WorkerProcess[] = [];
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  try {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 8);
    const fleet = await seed(owner);

    // The connector: this process holds every agent and runs the commands addressed to them.
    let executed = 0;
    const sims = new Map(fleet.terminals.map((t) => [t.id, new SimulatedTerminal(() => (executed += 1))]));
    const handler = new OperationCommandHandler(db);
    for (const agentId of fleet.agents) await redis.set(`${PREFIX}:owner:agent:${agentId}`, INSTANCE);
    consumer = new CommandConsumer({
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
      const reply = await handler.handle(
        { kind: 'operation.execute', tenantId: fleet.tenantId, terminalId: terminal.id, operationId: row.id },
        sims.get(terminal.id)!,
      );
      if (!reply.ok) throw new Error(`direct operation failed: ${reply.code} ${reply.message}`);
    });
    const directMs = performance.now() - directStart;
    const sqlDirect = perEvent(sqlDirect0, sqlSnapshot(), fleet.terminals.length);

    const workerEnv = {
      DATABASE_APP_URL: testDb.appUrl,
      REDIS_URL: redisServer.url,
      REDIS_KEY_PREFIX: PREFIX,
      PAYORCH_MASTER_KEY: `k1:${randomBytes(32).toString('base64')}`,
      LOG_LEVEL: 'warn',
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
    executed = 0;
    const campaignB = await startCampaign(db, queue, fleet.tenantId, killFleet, 'bench-kill');
    while (executed < KILL_AT * killFleet.length) await new Promise((resolve) => setTimeout(resolve, 5));
    const killedAt = performance.now();
    await first.kill('SIGKILL');
    const executedAtKill = executed;
    const second = new WorkerProcess(workerEnv);
    workers.push(second);
    await second.start();
    const restartedMs = performance.now() - killedAt;
    await untilCompleted(campaignB);
    const resumeMs = performance.now() - killedAt;
    const opsB = await owner.terminalOperation.findMany({ where: { requestHash: `campaign:${campaignB}` }, select: { id: true, terminalId: true } });
    const opsOfB = new Set(opsB.map((o) => o.id));
    const runs = killFleet.map((t) => sims.get(t.id)!.journal.filter((id) => opsOfB.has(id)).length);
    const repeated = runs.filter((n) => n > 1).length;
    const missing = runs.filter((n) => n === 0).length;
    const targetsB = await owner.campaignTarget.groupBy({ by: ['state'], where: { campaignId: campaignB }, _count: { _all: true } });
    const secondOps = opsB.length - new Set(opsB.map((o) => o.terminalId)).size;

    // 1 + 2: a campaign over every terminal, on the new worker; Redis memory at 10 / 50 / 90 % of the terminals executed.
    const memory: { at: number; bytes: number }[] = [{ at: 0, bytes: await usedMemory(redis) }];
    const sqlWorker0 = await second.freshSql();
    const sqlConnector0 = sqlSnapshot();
    executed = 0;
    const campaignStart = performance.now();
    const campaignA = await startCampaign(db, queue, fleet.tenantId, fleet.terminals, 'bench-rollout');
    for (const share of [0.1, 0.5, 0.9]) {
      while (executed < share * fleet.terminals.length) await new Promise((resolve) => setTimeout(resolve, 5));
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
        'path: worker child process (BullMQ flow, command bus, replyWhen queued) → this process as connector (CommandConsumer → OperationCommandHandler → executor) → in-process simulated terminal (no tunnel, no codec)',
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
        `terminals that executed the killed campaign's command twice or more: ${repeated}; never: ${missing}; targets with a second operation: ${secondOps}`,
      ].join('\n') + '\n',
    );
    reportRow({
      bench: `campaign steps vs the same operations submitted directly (${steps} simulated terminals, concurrency ${CONCURRENCY})`,
      measured: stepsPerS,
      baseline: directPerS,
      unit: '/s',
      ratio: stepsPerS / directPerS,
      perEvent: sqlCampaign,
      note: `claims ${timeline.claimsPerS.toFixed(0)}/s, serialised per tenant, bound the pace; direct: ${sqlDirect.statements} statements / ${sqlDirect.transactions} transactions per operation`,
    });
    reportRow({
      bench: `Redis used_memory during the campaign, max/min of 10/50/90 % (${steps} terminals)`,
      measured: maxMem,
      baseline: minMem,
      unit: 'bytes',
      ratio: maxMem / minMem,
      goal: { on: 'ratio', op: '<=', value: 1.25 },
      note: `largest: ${growth}`,
    });
    reportRow({
      bench: `terminals whose step ran twice or never after a worker kill -9 at ${KILL_AT * 100} % (${killFleet.length} terminals)`,
      measured: repeated + missing,
      baseline: 0,
      unit: 'terminals',
      ratio: repeated + missing,
      goal: { on: 'measured', op: '<=', value: 0 },
      note: `twice ${repeated}, never ${missing}; finished ${(resumeMs / 1000).toFixed(1)} s after the kill (new worker ready after ${(restartedMs / 1000).toFixed(1)} s)`,
    });
  } finally {
    await Promise.allSettled(workers.map((w) => w.kill('SIGKILL')));
    await consumer?.stop();
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

import { randomUUID } from 'node:crypto';

import { type Job, Queue, Worker } from 'bullmq';

import { AgentOwnership, busKeys, CommandConsumer, RedisTerminalCommandDispatcher } from '@payorch/command-bus';
import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import { bullPrefix, RedisConnections } from '@payorch/redis';
import { OwnedRedisCluster, waitFor } from '@payorch/testing';

const PREFIX = 'cluster';
const QUEUE = 'cluster-fault';
const TENANT = '11111111-1111-4111-8111-111111111111';
const TERMINAL = '22222222-2222-4222-8222-222222222222';

/** A first id (`<base>-<n>`) whose key lands on the master `port`. */
async function idOnMaster(cluster: OwnedRedisCluster, port: number, keyOf: (id: string) => string, base: () => string): Promise<string> {
  for (let n = 0; n < 500; n += 1) {
    const id = base();
    if ((await cluster.masterOf(await cluster.slotOf(keyOf(id)))) === port) return id;
  }
  throw new Error(`no id found whose key is served by ${port}`);
}

/**
 * Issue 18, item 6: the command bus (dispatcher, consumer, ownership) and a BullMQ queue and worker on a
 * Redis Cluster of 3 masters + 3 replicas that the test starts on loopback ports, through @payorch/redis
 * (`redis-cluster://` REDIS_URL → ioredis Cluster clients). Then the master that holds the bus keys (the
 * connector's request stream, the agent's ownership key, the dispatcher's reply stream and BullMQ's
 * `{bull}` slot) is SIGKILLed: its replica is promoted, commands must flow again within seconds, and
 * no command may execute twice.
 */
describe('Redis Cluster (owned: 3 masters + 3 replicas; failover of the bus master)', () => {
  jest.setTimeout(120_000);
  const cluster = new OwnedRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 });
  const executions = new Map<string, number>();
  const redelivered: string[] = [];
  const processed = new Map<string, number>();
  const connections: RedisConnections[] = [];
  let busMaster: number;
  let instanceId: string;
  let agentId: string;
  let consumer: CommandConsumer;
  let ownership: AgentOwnership;
  let dispatcher: RedisTerminalCommandDispatcher;
  let queue: Queue;
  let worker: Worker;

  const connect = (clientName: string, named: ConstructorParameters<typeof RedisConnections>[0]['connections']) => {
    const redis = new RedisConnections({ url: cluster.url, clientName, connections: named, onError: () => undefined });
    connections.push(redis);
    return redis;
  };
  const cancel = (): TerminalCommand & { operationId: string } => ({
    kind: 'operation.cancel',
    tenantId: TENANT,
    terminalId: TERMINAL,
    operationId: randomUUID(),
  });
  const dispatch = (command = cancel(), timeoutMs = 3000): Promise<TerminalCommandReply> => dispatcher.dispatch(command, { timeoutMs });

  beforeAll(async () => {
    await cluster.start();
    // Every bus key this test uses, and BullMQ's slot, on one master: the one the failover kills.
    busMaster = await cluster.masterOf(await cluster.slotOf(`${bullPrefix(PREFIX)}:${QUEUE}:wait`));
    const keys = busKeys(PREFIX);
    let n = 0;
    instanceId = await idOnMaster(cluster, busMaster, keys.requests, () => `c${(n += 1)}`);
    agentId = await idOnMaster(cluster, busMaster, keys.agentOwner, () => randomUUID());

    const connector = connect(`${PREFIX}:device-connector:${instanceId}`, { blocking: {}, command: { enableOfflineQueue: true, maxRetriesPerRequest: 3 } });
    const gateway = connect(`${PREFIX}:api-gateway:g1`, { blocking: {}, command: {} });
    const bull = connect(`${PREFIX}:settlement-worker:w1`, { bull: {} });
    expect(connector.cluster).toBe(true);

    consumer = new CommandConsumer({
      redis: connector.get('command'),
      blocking: connector.get('blocking'),
      prefix: PREFIX,
      instanceId,
      blockMs: 200,
      handler: async (command) => {
        const id = (command as { operationId: string }).operationId;
        executions.set(id, (executions.get(id) ?? 0) + 1);
        return { ok: true, result: id };
      },
      onRedelivered: (requestId) => redelivered.push(requestId),
    });
    await consumer.start();
    // The connector's default CONNECTOR_OWNERSHIP_TTL_MS: the key outlives the failover, so commands are queued through it.
    ownership = new AgentOwnership({ redis: connector.get('command'), prefix: PREFIX, instanceId, ttlMs: 15_000 });
    await ownership.claim(agentId);
    ownership.start();
    // The dispatcher whose reply stream is on the same master (its id is random).
    for (;;) {
      const candidate = new RedisTerminalCommandDispatcher({
        redis: gateway.get('command'),
        blocking: gateway.get('blocking'),
        prefix: PREFIX,
        resolveAgent: async () => ({ agentId }),
        blockMs: 200,
      });
      if ((await cluster.masterOf(await cluster.slotOf(keys.replies(candidate.id)))) === busMaster) {
        dispatcher = candidate;
        break;
      }
      await candidate.close();
    }
    await connector.settled();
    await gateway.settled();

    queue = new Queue(QUEUE, { connection: bull.get('bull'), prefix: bullPrefix(PREFIX) });
    worker = new Worker(
      QUEUE,
      async (job: Job) => {
        processed.set(job.id!, (processed.get(job.id!) ?? 0) + 1);
      },
      { connection: bull.get('bull'), prefix: bullPrefix(PREFIX), concurrency: 4 },
    );
    worker.on('error', () => undefined);
    await worker.waitUntilReady();
  });

  afterAll(async () => {
    ownership?.stop();
    await dispatcher?.close();
    await consumer?.stop();
    await worker?.close(true);
    await queue?.close();
    for (const redis of connections) await redis.close();
    await cluster.stop();
  });

  it('routes commands and runs jobs across the cluster: multi-key commands stay in one slot, keys spread by id', async () => {
    const commands = Array.from({ length: 20 }, cancel);
    const replies = await Promise.all(commands.map((command) => dispatch(command)));
    expect(replies).toEqual(commands.map((c) => ({ ok: true, result: c.operationId })));
    expect(commands.map((c) => executions.get(c.operationId))).toEqual(commands.map(() => 1));

    // Ownership heartbeats over agents whose keys live on every master (one EVAL per key, no cross-slot pipeline).
    // Random ids until every master holds some (12 random ones missed one master in ~2 % of runs), bounded.
    const many: string[] = [];
    const masters = new Set<number>();
    while (many.length < 200 && (masters.size < 3 || many.length < 12)) {
      const id = randomUUID();
      many.push(id);
      masters.add(await cluster.masterOf(await cluster.slotOf(busKeys(PREFIX).agentOwner(id))));
    }
    expect(masters.size).toBe(3);
    const lost: string[] = [];
    const other = new AgentOwnership({ redis: connections[0]!.get('command'), prefix: PREFIX, instanceId, ttlMs: 3000, onLost: (id) => lost.push(id) });
    for (const id of many) await other.claim(id);
    await other.refresh();
    expect(lost).toEqual([]);
    for (const id of many) expect(await other.release(id)).toBe(true);

    const jobs = await queue.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: 'tick', data: {}, opts: { jobId: `before-${i}` } })));
    await waitFor(() => jobs.every((job) => processed.get(job.id!) === 1), { timeoutMs: 10_000, what: 'the jobs processed' });
  });

  it('fails over the master holding the bus: commands flow again within seconds, none executes twice', async () => {
    const replies: Array<{ operationId: string; reply: TerminalCommandReply }> = [];
    const added: string[] = [];
    let loading = true;
    // Steady traffic through the failover: a command every 50 ms and a job every 100 ms.
    const load = (async () => {
      let i = 0;
      const inFlight: Promise<unknown>[] = [];
      while (loading) {
        const command = cancel();
        inFlight.push(dispatch(command).then((reply) => replies.push({ operationId: command.operationId, reply })));
        if (i % 2 === 0) {
          const jobId = `during-${i}`;
          inFlight.push(
            queue.add('tick', {}, { jobId }).then(
              () => added.push(jobId),
              () => undefined,
            ),
          );
        }
        i += 1;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await Promise.all(inFlight);
    })();
    await waitFor(() => replies.filter((r) => r.reply.ok).length >= 5, { timeoutMs: 10_000, what: 'traffic before the failover' });

    const killedAt = Date.now();
    const promoted = await cluster.killMaster(busMaster);
    expect(promoted).not.toBe(busMaster);
    // Commands flow again: a fresh command is answered by the connector.
    await waitFor(async () => (await dispatch(cancel(), 2000)).ok, { timeoutMs: 20_000, intervalMs: 100, what: 'a command answered after the failover' });
    const recoveredMs = Date.now() - killedAt;
    loading = false;
    await load;

    // After the failover: every command answered, once.
    const after = Array.from({ length: 10 }, cancel);
    expect(await Promise.all(after.map((command) => dispatch(command)))).toEqual(after.map((c) => ({ ok: true, result: c.operationId })));
    expect(after.map((c) => executions.get(c.operationId))).toEqual(after.map(() => 1));
    // Nothing executed twice, and every command answered ok ran exactly once.
    expect([...executions.values()].filter((count) => count > 1)).toEqual([]);
    for (const { operationId, reply } of replies) if (reply.ok) expect(executions.get(operationId)).toBe(1);
    // Jobs: every accepted job runs, and new ones run on the promoted master.
    const later = await queue.addBulk(Array.from({ length: 5 }, (_, i) => ({ name: 'tick', data: {}, opts: { jobId: `after-${i}` } })));
    await waitFor(() => [...later.map((job) => job.id!), ...added].every((id) => (processed.get(id) ?? 0) >= 1), {
      timeoutMs: 20_000,
      what: 'every accepted job processed',
    });
    expect(later.map((job) => processed.get(job.id!))).toEqual([1, 1, 1, 1, 1]);
    expect(recoveredMs).toBeLessThan(15_000);
    const failed = replies.filter((r) => !r.reply.ok).map((r) => (r.reply as { code: string }).code);
    process.stdout.write(
      `redis-cluster failover: bus master :${busMaster} → :${promoted}, commands flow again after ${recoveredMs} ms; ` +
        `${replies.length} commands during it (${failed.length} not ok: ${[...new Set(failed)].join(', ') || 'none'}), ` +
        `${redelivered.length} redelivered and dropped, ${added.length} jobs accepted, ` +
        `${[...processed.values()].filter((c) => c > 1).length} jobs run twice\n`,
    );
  });
});

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';

import { OwnedRedis } from './owned-redis';
import { waitFor, withTimeout } from './wait';

export interface OwnedRedisClusterOptions {
  /** Masters (slots are split evenly). Default 3, the smallest cluster Redis creates. */
  masters?: number;
  /** Replicas of each master; with 1, killing a master promotes its replica. Default 1. */
  replicasPerMaster?: number;
  /** cluster-node-timeout: how long a master may be unreachable before its replica takes over. Default 1000 ms. */
  nodeTimeoutMs?: number;
}

/** One node as CLUSTER NODES describes it. */
export interface ClusterNodeInfo {
  port: number;
  role: 'master' | 'replica';
  failed: boolean;
  /** For a replica: the port of its master. */
  masterPort?: number;
  /** Slot ranges served (masters), inclusive. */
  slots: Array<[number, number]>;
}

/** Binds 127.0.0.1:port to see whether it is free. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port whose cluster bus port (port + 10000) is free as well. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 25_000);
    if (taken.has(port) || taken.has(port + 10_000) || taken.has(port - 10_000)) continue;
    if ((await bindable(port)) && (await bindable(port + 10_000))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

/** Parses CLUSTER NODES. */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  const lines = text.trim().split('\n');
  const portOf = new Map<string, number>();
  const rows = lines.map((line) => line.trim().split(' '));
  for (const [id, address] of rows) portOf.set(id!, Number(/:(\d+)@/.exec(address!)?.[1]));
  return rows.map(([id, , flags, master, , , , , ...slots]) => {
    const flagSet = new Set(flags!.split(','));
    const info: ClusterNodeInfo = {
      port: portOf.get(id!)!,
      role: flagSet.has('master') ? 'master' : 'replica',
      failed: flagSet.has('fail') || flagSet.has('fail?'),
      slots: slots
        .filter((slot) => !slot.startsWith('['))
        .map((slot) => {
          const [from, to] = slot.split('-').map(Number);
          return [from!, to ?? from!] as [number, number];
        }),
    };
    if (master && master !== '-') info.masterPort = portOf.get(master);
    return info;
  });
}

/**
 * A Redis Cluster that one test owns: `masters` × (1 + `replicasPerMaster`) `redis-server --cluster-enabled yes`
 * processes on spare loopback ports (each with its bus port + 10000 free), without persistence, joined with
 * `redis-cli --cluster create`. `url` is the `redis-cluster://` REDIS_URL of payorch. killMaster() is a SIGKILL
 * of a master and waits until its replica serves its slots. stop() kills every node and removes the node
 * files. Never touches the shared Redis on 6379.
 */
export class OwnedRedisCluster {
  readonly nodes: OwnedRedis[] = [];
  private dir: string | undefined;
  private readonly masters: number;
  private readonly replicas: number;
  private readonly nodeTimeoutMs: number;

  constructor(options: OwnedRedisClusterOptions = {}) {
    this.masters = options.masters ?? 3;
    this.replicas = options.replicasPerMaster ?? 1;
    this.nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  }

  /** Every node as a seed: `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,…`. */
  get url(): string {
    return `redis-cluster://${this.nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`;
  }

  async start(timeoutMs = 30_000): Promise<this> {
    this.dir = mkdtempSync(join(tmpdir(), 'payorch-redis-cluster-'));
    const taken = new Set<number>();
    const count = this.masters * (1 + this.replicas);
    for (let i = 0; i < count; i += 1) {
      const port = await freeClusterPort(taken);
      const args = [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        String(this.nodeTimeoutMs),
        // A replica may always take over, however long it was cut off (the test decides when masters die).
        '--cluster-replica-validity-factor',
        '0',
        // Replicas get their first copy at once (Redis waits 5 s by default, for more replicas to join the transfer).
        '--repl-diskless-sync-delay',
        '0',
        '--dir',
        this.dir,
      ];
      this.nodes.push(new OwnedRedis(args, port));
    }
    await Promise.all(this.nodes.map((node) => node.start()));
    await withTimeout(this.create(), { timeoutMs, what: 'redis-cli --cluster create' });
    await this.waitHealthy(timeoutMs);
    return this;
  }

  /** The slot of a key (CLUSTER KEYSLOT). */
  async slotOf(key: string): Promise<number> {
    return this.onLiveNode((redis) => redis.cluster('KEYSLOT', key) as Promise<number>);
  }

  /** The cluster as a live node sees it. */
  async topology(): Promise<ClusterNodeInfo[]> {
    return parseClusterNodes(await this.onLiveNode((redis) => redis.cluster('NODES') as Promise<string>));
  }

  /** The port of the live master serving `slot`. */
  async masterOf(slot: number): Promise<number> {
    const master = (await this.topology()).find(
      (node) => node.role === 'master' && !node.failed && node.slots.some(([from, to]) => slot >= from && slot <= to),
    );
    if (!master) throw new Error(`no live master serves slot ${slot}`);
    return master.port;
  }

  /**
   * SIGKILL of the master on `port` (a crash: what it had not yet replicated is lost), then waits until
   * another node serves its slots and every live node reports `cluster_state:ok`. Resolves with the new master's port.
   */
  async killMaster(port: number, timeoutMs = 20_000): Promise<number> {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no node on port ${port}`);
    const before = (await this.topology()).find((n) => n.port === port);
    if (before?.role !== 'master' || before.slots.length === 0) throw new Error(`node ${port} is not a master with slots`);
    const slot = before.slots[0]![0];
    await node.kill();
    let promoted = 0;
    await waitFor(
      async () => {
        promoted = await this.masterOf(slot).catch(() => 0);
        return promoted !== 0 && promoted !== port;
      },
      { timeoutMs, intervalMs: 100, what: `a replica promoted for slot ${slot}` },
    );
    await this.waitHealthy(timeoutMs);
    return promoted;
  }

  /** Kills every node and removes the node files. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }

  private create(): Promise<void> {
    const args = ['--cluster', 'create', ...this.nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', String(this.replicas), '--cluster-yes'];
    return new Promise((resolve, reject) => {
      const child = spawn('redis-cli', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create exited ${code}: ${stderr.trim()}`))));
    });
  }

  /** Every live node: `cluster_state:ok`, one live master per slot range, and every live replica in sync. */
  private async waitHealthy(timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        const live = this.nodes.filter((node) => node.running);
        const states = await Promise.all(live.map((node) => this.on(node.port, (redis) => redis.cluster('INFO') as Promise<string>).catch(() => '')));
        if (!states.every((info) => info.includes('cluster_state:ok'))) return false;
        const topology = await this.topology();
        const masters = topology.filter((n) => n.role === 'master' && !n.failed && n.slots.length > 0);
        if (masters.length !== this.masters) return false;
        // Every live replica in sync with its master (a replica promoted before its first sync comes up empty).
        const replicas = topology.filter((n) => n.role === 'replica' && !n.failed && live.some((node) => node.port === n.port));
        const synced = await Promise.all(
          replicas.map((n) =>
            this.on(n.port, (redis) => redis.info('replication')).then(
              (info) => /master_link_status:up/.test(info) && !/master_sync_in_progress:1/.test(info),
              () => false,
            ),
          ),
        );
        return synced.every(Boolean);
      },
      { timeoutMs, intervalMs: 100, what: 'the Redis Cluster healthy' },
    );
  }

  private async onLiveNode<T>(run: (redis: Redis) => Promise<T>): Promise<T> {
    let lastError: unknown = new Error('no live node');
    for (const node of this.nodes.filter((n) => n.running)) {
      try {
        return await this.on(node.port, run);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  private async on<T>(port: number, run: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      return await run(redis);
    } finally {
      redis.disconnect();
    }
  }
}

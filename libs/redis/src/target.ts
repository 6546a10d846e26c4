import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/**
 * A connection of either kind: a standalone ioredis `Redis` or an ioredis `Cluster`. Both expose the same
 * command API; code that needs one of the two (CLIENT LIST on one node, `nodes()`) checks `isCluster`.
 */
export type RedisClient = Redis | Cluster;

/** A second client like `client` (same nodes and options): its own sockets, e.g. for a blocking reader. */
export const duplicateClient = (client: RedisClient): RedisClient => (client instanceof Cluster ? client.duplicate() : client.duplicate());

/** One Redis server, or a Redis Cluster named by some of its nodes (the others are discovered). */
export type RedisTarget =
  { kind: 'standalone'; url: string } | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; username?: string; password?: string; tls: boolean };

/**
 * `redis-cluster://[user:password@]host:port[,host:port…]` (`rediss-cluster://` with TLS). Seed nodes only:
 * ioredis asks them for the slot map (CLUSTER SLOTS) and connects to every master it lists. Credentials
 * apply to every node.
 */
export const REDIS_CLUSTER_URL = /^(rediss?)-cluster:\/\/(?:([^@/]*)@)?([^@/,\s]+:\d{1,5}(?:,[^@/,\s]+:\d{1,5})*)\/?$/;

/** Parses REDIS_URL: a `redis://` / `rediss://` URL (one server) or a `redis-cluster://` list of seed nodes. */
export function parseRedisTarget(url: string): RedisTarget {
  if (!/^rediss?-cluster:/.test(url)) return { kind: 'standalone', url };
  const match = REDIS_CLUSTER_URL.exec(url);
  if (!match) throw new Error('a Redis Cluster URL is redis-cluster://[user:password@]host:port[,host:port…]');
  const [, scheme, auth, list] = match;
  const nodes = list!.split(',').map((node) => {
    const at = node.lastIndexOf(':');
    return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
  });
  const target: RedisTarget = { kind: 'cluster', nodes, tls: scheme === 'rediss' };
  if (auth) {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon < 0 ? '' : auth.slice(0, colon));
    const password = decodeURIComponent(colon < 0 ? auth : auth.slice(colon + 1));
    if (user) target.username = user;
    if (password) target.password = password;
  }
  return target;
}

/**
 * Cluster behaviour of every payorch Cluster client. A failover (a master lost, its replica promoted after
 * `cluster-node-timeout`) must not fail commands that can wait: ioredis retries a command whose node is
 * gone every `retryDelayOnFailover` ms up to `maxRedirections` times, refreshing the slot map meanwhile,
 * so 300 ms × 20 ≈ 6 s covers a node timeout of up to about 5 s (Redis' default is 15 s: set it lower,
 * docs/runbooks/production.md). The periodic refresh also notices a promotion nobody was redirected by.
 */
export const CLUSTER_DEFAULTS: Readonly<ClusterOptions> = {
  maxRedirections: 20,
  retryDelayOnFailover: 300,
  retryDelayOnClusterDown: 300,
  retryDelayOnMoved: 50,
  slotsRefreshInterval: 2_000,
};

/**
 * A client for `url`: `new Redis(url, options)` for one server, `new Cluster(seeds, …)` for a cluster, with
 * `options` applied to every node connection (`redisOptions`) except `enableOfflineQueue`, which a Cluster
 * takes for itself. Classic pub/sub works on a Cluster (SUBSCRIBE/PSUBSCRIBE on one node; every node
 * forwards every PUBLISH), which is what payorch uses: sharded pub/sub (SSUBSCRIBE) has no patterns.
 */
export function createRedisClient(url: string, options: RedisOptions = {}): RedisClient {
  const target = parseRedisTarget(url);
  if (target.kind === 'standalone') return new Redis(url, options);
  // The offline queue and lazy connecting are the Cluster's, not its node connections'.
  const { enableOfflineQueue, lazyConnect, ...perNode } = options;
  return new Cluster(target.nodes, {
    ...CLUSTER_DEFAULTS,
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
    redisOptions: {
      ...perNode,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      ...(target.tls ? { tls: {} } : {}),
    },
  });
}

/**
 * BullMQ's key prefix. BullMQ's Lua scripts touch many keys of one queue at once, so on a Redis Cluster
 * every key of a queue must hash to one slot: the `{bull}` hash tag puts all queues of a deployment in
 * one slot (BullMQ's own recommendation). Queue traffic is small next to the command bus (one settlement
 * job per terminal and day, webhooks, recoveries), and one slot keeps flows across queues possible.
 * The keys stay under REDIS_KEY_PREFIX (`payorch:{bull}:settlement:wait`), so a SCAN by prefix finds them.
 */
export const bullPrefix = (prefix: string): string => `${prefix}:{bull}`;

import { Cluster, Redis, type RedisOptions } from 'ioredis';

import { createRedisClient, parseRedisTarget, type RedisClient } from './target';

/**
 * The Redis connections a payorch process may hold, one of each at most (docs/architecture.md,
 * "Redis connections"). Each is a different kind of socket, which is why they cannot be merged:
 *  - `command`: ordinary request/reply commands (rate limits, ownership keys, PUBLISH, command-bus
 *    XADD, BullMQ producers in the gateway). Fails fast by default: no offline queue, 2 retries.
 *  - `bull`: BullMQ queues and the non-blocking commands of BullMQ workers (lock renewals, job moves).
 *    `maxRetriesPerRequest: null`, as BullMQ requires for workers. BullMQ itself adds one dedicated
 *    blocking duplicate per Worker (BZPOPMIN holds its socket; BullMQ never shares it).
 *  - `blocking`: the process's one blocking stream reader (command-bus XREAD / XREADGROUP … BLOCK).
 *    Only one blocking command can wait on a socket, so only one reader may use it.
 *  - `subscriber`: pub/sub. A subscribed connection runs no other command; several subscribers in a
 *    process share it (each listens to its own channels and leaves only those on shutdown).
 * With a `redis-cluster://` URL each name is an ioredis `Cluster` instead (one socket per master for that
 * name; the blocking reader blocks only the socket of the master that holds its stream), see target.ts.
 */
export type RedisConnectionName = 'command' | 'bull' | 'blocking' | 'subscriber';

export const REDIS_CONNECTION_NAMES: readonly RedisConnectionName[] = ['command', 'bull', 'blocking', 'subscriber'];

/** Defaults per connection; a process overrides them per name (RedisConnectionsOptions.connections). */
export const REDIS_CONNECTION_DEFAULTS: Readonly<Record<RedisConnectionName, RedisOptions>> = {
  command: { enableOfflineQueue: false, maxRetriesPerRequest: 2 },
  bull: { maxRetriesPerRequest: null },
  blocking: { maxRetriesPerRequest: null },
  subscriber: { maxRetriesPerRequest: null },
};

export interface RedisConnectionsOptions {
  /** REDIS_URL: `redis://…` for one server, `redis-cluster://host:port,…` for a Redis Cluster. */
  url: string;
  /**
   * Prefix of every connection's CLIENT SETNAME: `<clientName>:<name>` (e.g.
   * `payorch:device-connector:c1:subscriber`), so `CLIENT LIST` tells whose socket is whose.
   */
  clientName: string;
  /**
   * The connections this process has, each with overrides of REDIS_CONNECTION_DEFAULTS (`{}` = defaults);
   * an override's `connectionName` replaces `<clientName>:<name>` (a name operators already know).
   */
  connections: Partial<Record<RedisConnectionName, RedisOptions>>;
  /** Connection errors (reconnects are automatic); without a listener ioredis would print them. */
  onError?: (name: RedisConnectionName, error: Error) => void;
}

/** CLIENT SETNAME accepts printable characters without spaces; keep names readable and safe. */
const clientNameOf = (value: string) => value.replace(/[^\w.:{}-]/g, '_');

/**
 * The named Redis connections of one process. A connection is opened on its first `get()` and kept
 * for the life of the process; `close()` ends every opened one. Built before Nest (the Database's
 * commit hook publishes on `command`) and handed to RedisModule.forRoot, which provides each one by
 * name and closes them after everything else on shutdown.
 */
export class RedisConnections {
  private readonly opened = new Map<RedisConnectionName, RedisClient>();
  private closed = false;
  /** Whether REDIS_URL names a Redis Cluster (every connection is then an ioredis `Cluster`). */
  readonly cluster: boolean;

  constructor(private readonly options: RedisConnectionsOptions) {
    this.cluster = parseRedisTarget(options.url).kind === 'cluster';
    for (const name of Object.keys(options.connections)) {
      if (!REDIS_CONNECTION_NAMES.includes(name as RedisConnectionName)) throw new Error(`unknown Redis connection "${name}"`);
    }
  }

  /** The connections this process declared (at most one of each name). */
  get names(): RedisConnectionName[] {
    return REDIS_CONNECTION_NAMES.filter((name) => this.options.connections[name] !== undefined);
  }

  /** CLIENT SETNAME of a connection. */
  clientName(name: RedisConnectionName): string {
    return clientNameOf(this.options.connections[name]?.connectionName ?? `${this.options.clientName}:${name}`);
  }

  /** The connection `name`, opened on first use. A name the process did not declare is a wiring error. */
  get(name: RedisConnectionName): RedisClient {
    const existing = this.opened.get(name);
    // After close() a late user gets the ended connection (its commands reject); nothing is reopened.
    if (existing) return existing;
    if (this.closed) throw new Error(`Redis connection "${name}" requested after the connections were closed`);
    const overrides = this.options.connections[name];
    if (overrides === undefined) {
      throw new Error(`Redis connection "${name}" is not declared by this process (declared: ${this.names.join(', ') || 'none'})`);
    }
    const connection = createRedisClient(this.options.url, { ...REDIS_CONNECTION_DEFAULTS[name], ...overrides, connectionName: this.clientName(name) });
    connection.on('error', (error: Error) => this.options.onError?.(name, error));
    this.opened.set(name, connection);
    return connection;
  }

  /**
   * Resolves once every opened connection is ready or has failed once (Redis down: the process starts
   * degraded and ioredis keeps reconnecting), at most after `timeoutMs`. Lets a process take its first
   * requests on connections that are up: `command` has no offline queue, so a command sent while it is
   * still connecting would be refused.
   */
  async settled(timeoutMs = 5_000): Promise<void> {
    await Promise.all(
      [...this.opened.values()].map(
        (connection) =>
          new Promise<void>((resolve) => {
            if (connection.status === 'ready' || connection.status === 'end') return resolve();
            const done = () => {
              clearTimeout(timer);
              connection.off('ready', done);
              connection.off('error', done);
              connection.off('end', done);
              resolve();
            };
            const timer = setTimeout(done, timeoutMs);
            connection.on('ready', done);
            connection.on('error', done);
            connection.on('end', done);
          }),
      ),
    );
  }

  /**
   * Ends every opened connection and resolves once each has ended (status `end`, its sockets closed, no timer of it
   * left), at most after `timeoutMs` (a server that never answers QUIT): QUIT where it is up (pending replies are read
   * first), else at once (hangUp); one already ended is left alone.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const connections = [...this.opened.values()];
    await Promise.allSettled(
      connections.map(async (connection) => {
        // Already ended: nothing to close. A disconnect() now would arm ioredis's 2 s "destroy the stream" timer on a
        // stream that closed before, which nothing clears: it held the process open for 2 s after close().
        if (connection.status === 'end') return;
        // Wait until ioredis has really let go of every socket and timer, so a closed app leaves nothing running. A
        // Cluster ends once its pool is empty, while node sockets may still be closing (its QUIT resolves before them; a
        // disconnect empties the pool at once) and its pub/sub socket is not in the pool: each is awaited too (bounded:
        // a connection never 'end's twice).
        const parts = [connection, ...(connection instanceof Cluster ? nodeConnectionsOf(connection) : [])].filter((part) => part.status !== 'end');
        const ended = Promise.all(parts.map((part) => new Promise<void>((resolve) => part.once('end', () => resolve()))));
        if (connection.status === 'ready') await connection.quit().catch(() => hangUp(connection));
        else hangUp(connection);
        let bound: NodeJS.Timeout | undefined;
        await Promise.race([ended, new Promise<void>((resolve) => (bound = setTimeout(resolve, timeoutMs).unref()))]);
        clearTimeout(bound);
      }),
    );
  }
}

/**
 * The standalone connections of a Cluster: its pool's node connections, and its pub/sub connection, which ioredis
 * keeps outside the pool (`Cluster#subscriber`, a ClusterSubscriber: private in ioredis's types, ioredis is pinned).
 */
function nodeConnectionsOf(cluster: Cluster): Redis[] {
  const subscriber = (cluster as unknown as { subscriber?: { subscriber?: unknown } }).subscriber?.subscriber;
  return [...cluster.nodes('all'), ...(subscriber instanceof Redis ? [subscriber] : [])];
}

/** A queued command as ioredis keeps it (Redis#offlineQueue / commandQueue / prevCommandQueue: Denques, private in its types). */
interface QueuedCommands {
  toArray?(): Array<{ command?: { promise?: Promise<unknown> } }>;
}

/**
 * The commands still queued on a connection about to be ended (hangUp) are refused with "Connection is closed.": their
 * callers hear it as before, but one that nobody awaits must not become an unhandled rejection of the shutdown (it
 * failed the process, and CI's redis-down fault spec): ioredis itself sends one, the SUBSCRIBE of its autoResubscribe
 * after a reconnect, without a handler, which waits in the queue when Redis went away again before answering it.
 */
function refuseQuietly(connection: RedisClient): void {
  const queues = connection as unknown as { offlineQueue?: QueuedCommands; commandQueue?: QueuedCommands; prevCommandQueue?: QueuedCommands | null };
  for (const queue of [queues.offlineQueue, queues.commandQueue, queues.prevCommandQueue]) {
    for (const item of queue?.toArray?.() ?? []) item.command?.promise?.catch(() => undefined);
  }
}

/**
 * Ends a connection that is not up, now: what it had not sent is refused (ioredis flushes its queues with
 * "Connection is closed"), and it (and each of its sockets) emits `end` at once, in every status. ioredis 6's own
 * `disconnect()` does not:
 *  - without a socket (`reconnecting`: Redis is away and a retry timer waits; a Cluster whose node pool is empty:
 *    `reconnecting`, or `connecting` before its first node) it clears the retry timer but never reaches `end`:
 *    a standalone `Redis` stays `reconnecting` and arms a 2 s timer to destroy its socket that closed long ago
 *    (ioredis #1247); a `Cluster` stays `disconnecting`, as only its pool draining would move it on. Only in `wait`
 *    does `disconnect()` end such a connection at once, and `wait` is what such a connection is (no socket, none
 *    being opened once the retry timer is cleared), so it is put back to `wait` first.
 *  - with a socket still connecting or handshaking (`connecting`, `connect`; a Cluster's node and pub/sub sockets)
 *    it half-closes the socket and waits for the server: a connect that hangs, or a server that does not hang up,
 *    costs `disconnectTimeout` (2 s). Such a socket has no reply worth waiting for, so it is destroyed (`close`, then
 *    `end`, follow at once; a socket that closed before is destroyed already, destroy() is then a no-op).
 */
function hangUp(connection: RedisClient): void {
  if (connection.status === 'end') return;
  refuseQuietly(connection);
  if (connection instanceof Cluster) {
    const parts = nodeConnectionsOf(connection);
    parts.forEach(refuseQuietly);
    if (connection.nodes('all').length === 0) connection.status = 'wait';
    // Disconnects the pool's nodes and the pub/sub connection; those still opening their sockets are cut now.
    connection.disconnect();
    for (const part of parts) part.stream?.destroy();
    return;
  }
  if (connection.status === 'reconnecting') connection.status = 'wait';
  connection.disconnect();
  connection.stream?.destroy();
}

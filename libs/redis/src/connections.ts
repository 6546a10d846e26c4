import type { RedisOptions } from 'ioredis';

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
   * Ends every opened connection: QUIT where it is up (pending replies are read first), else a disconnect; one
   * already ended is left alone.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const connections = [...this.opened.values()];
    await Promise.allSettled(
      connections.map(async (connection) => {
        // Already ended: nothing to close. A disconnect() now would arm ioredis's 2 s "destroy the stream" timer on a
        // stream that closed before, which nothing clears: it held the process open for 2 s after close().
        if (connection.status === 'end') return;
        // Wait until ioredis has really let go of its sockets and timers, so a closed app leaves nothing running
        // (a Cluster's QUIT resolves before its node sockets are closed; bounded: a connection never 'end's twice).
        const ended = new Promise<void>((resolve) => connection.once('end', () => resolve()));
        // Not up (Redis down, reconnecting): disconnect. Up: QUIT, which reads pending replies first.
        if (connection.status !== 'ready') connection.disconnect();
        else await connection.quit().catch(() => connection.disconnect());
        let bound: NodeJS.Timeout | undefined;
        await Promise.race([ended, new Promise<void>((resolve) => (bound = setTimeout(resolve, 5_000).unref()))]);
        clearTimeout(bound);
      }),
    );
  }
}

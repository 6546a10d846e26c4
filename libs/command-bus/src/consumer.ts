import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import { duplicateClient, type RedisClient } from '@payorch/redis';

import { waitAtMost } from './bounded';
import { busKeys, CONSUMER_GROUP } from './keys';
import { parseCommand } from './messages';

export type TerminalCommandHandler = (command: TerminalCommand) => Promise<TerminalCommandReply>;

export interface CommandConsumerOptions {
  /** Used for replies, acks and XGROUP. */
  redis: RedisClient;
  /**
   * The connection XREADGROUP BLOCK waits on: the process's named `blocking` connection
   * (@payorch/redis), owned by the caller and used by this consumer only. Without it the consumer
   * opens its own `redis.duplicate()` in start() and closes it in stop().
   */
  blocking?: RedisClient;
  prefix: string;
  instanceId: string;
  handler: TerminalCommandHandler;
  /** XREADGROUP block time; bounds how long stop() waits. Default 1 s. */
  blockMs?: number;
  /** The request stream of a dead instance disappears after this long. Default 1 h. */
  streamTtlMs?: number;
  onError?: (error: Error, context: string) => void;
  /** Called with the request id of an entry delivered a second time (and dropped unexecuted). */
  onRedelivered?: (requestId: string) => void;
  /** Called after the stream and group were (re)created because Redis lost them (NOGROUP). */
  onRecovered?: (reason: string) => void;
}

/** What readiness needs to know about the read loop (no Redis round trip). */
export interface CommandConsumerStatus {
  running: boolean;
  /** Date.now() of the last XREADGROUP that returned (with or without entries), or of start(). */
  lastReadAt: number;
  blockMs: number;
  /** Set while the group is being recreated after NOGROUP, or while reads fail. */
  problem: string | null;
}

/** NOGROUP, or a blocked read unblocked because the stream was deleted (Redis ≥ 7: "UNBLOCKED … no longer exists"). */
const isNoGroup = (error: unknown): boolean => /NOGROUP|no longer exists/.test(String((error as Error)?.message));

/**
 * Receives the commands addressed to this connector instance (`${prefix}:bus:req:<instanceId>`) and
 * answers each on its dispatcher's reply stream.
 *
 * At most once, by construction: entries are read only with `>` (never re-read from the pending list,
 * never claimed by another consumer), an entry whose deadline has passed (its dispatcher already
 * answered TIMEOUT) is dropped unexecuted, and an entry delivered again before its deadline (replication
 * is asynchronous: a Redis Cluster failover can promote a replica whose group position is behind the
 * reads already served) is recognised by its request id and dropped. If this instance dies while a command runs, the entry stays
 * pending in a stream nobody reads; the operation's DB state machine (PENDING → SENT once) and recovery
 * decide its outcome. Commands run concurrently; per-terminal serialisation is the handler's job.
 *
 * Self-healing (docs/runbooks/faults.md, "Redis restarts"): Redis is a bus, not the truth. After every
 * reconnect of the blocking connection, and on any NOGROUP answer (Redis restarted empty or was
 * flushed), the stream and group are recreated (`XGROUP CREATE … 0 MKSTREAM`, BUSYGROUP tolerated) and
 * reading resumes. The group starts at `0` so that a command a dispatcher appended before the group
 * existed is still read; the deadline check above keeps that at most once. Commands lost with Redis
 * are answered TIMEOUT by their dispatcher; their operation's DB state and recovery decide the rest.
 */
export class CommandConsumer {
  private readonly key: string;
  private blocking: RedisClient | undefined;
  private detachBlocking: (() => void) | undefined;
  private stopped = true;
  private abandoned = false;
  private loop: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private lastExpire = 0;
  private lastForget = 0;
  /** Request ids this instance started, until their deadline: a redelivered entry is dropped, not run again. */
  private readonly started = new Map<string, number>();
  private lastReadAt = 0;
  private problem: string | null = null;
  /** Why the group must be (re)created before the next read: a (re)connect, NOGROUP, a failed read. */
  private recreate: string | null = null;

  constructor(private readonly options: CommandConsumerOptions) {
    this.key = busKeys(options.prefix).requests(options.instanceId);
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.abandoned = false;
    const blocking = this.options.blocking ?? duplicateClient(this.options.redis);
    this.blocking = blocking;
    // Every 'ready' after the connection was first up is a reconnect: Redis may have lost the group.
    let connected = blocking.status === 'ready';
    const onReady = () => {
      if (connected) this.recreate ??= 'reconnect';
      connected = true;
    };
    // Connection errors surface as failed reads (handled in run()); keep ioredis from printing them.
    const onError = () => undefined;
    blocking.on('ready', onReady);
    blocking.on('error', onError);
    this.detachBlocking = () => {
      blocking.off('ready', onReady);
      blocking.off('error', onError);
    };
    await this.ensureGroup();
    this.lastReadAt = Date.now(); // the first read may block for blockMs: not stuck yet
    this.loop = this.run();
  }

  status(): CommandConsumerStatus {
    return { running: !this.stopped && this.loop !== undefined, lastReadAt: this.lastReadAt, blockMs: this.options.blockMs ?? 1000, problem: this.problem };
  }

  /** The group's backlog: `pending` = read but not answered yet, `lag` = not read yet (XINFO GROUPS). */
  async backlog(): Promise<{ pending: number; lag: number }> {
    const groups = (await this.options.redis.xinfo('GROUPS', this.key)) as Array<Array<string | number | null>>;
    for (const flat of groups) {
      const info = new Map<string, string | number | null>();
      for (let i = 0; i + 1 < flat.length; i += 2) info.set(String(flat[i]), flat[i + 1]!);
      if (info.get('name') === CONSUMER_GROUP) return { pending: Number(info.get('pending') ?? 0), lag: Number(info.get('lag') ?? 0) };
    }
    throw new Error('NOGROUP: the consumer group does not exist');
  }

  /** XGROUP CREATE … 0 MKSTREAM; BUSYGROUP (it already exists) is success. */
  private async ensureGroup(): Promise<boolean> {
    try {
      await this.options.redis.xgroup('CREATE', this.key, CONSUMER_GROUP, '0', 'MKSTREAM');
      this.lastExpire = 0;
      return true;
    } catch (error) {
      if (String((error as Error).message).includes('BUSYGROUP')) return false;
      throw error;
    }
  }

  /** Stops reading, waits for the commands already running, then closes the blocking connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A shared blocking connection is not ours to close: wait for the current read (one block time) unless
    // Redis is away; a read still pending then is abandoned (what it returns later is left unread, never run).
    if (this.options.blocking) this.abandoned = !(await waitAtMost(this.loop, 2 * (this.options.blockMs ?? 1000)));
    else await this.loop;
    await Promise.allSettled([...this.inFlight]);
    this.detachBlocking?.();
    if (!this.options.blocking) this.blocking?.disconnect();
  }

  private async run(): Promise<void> {
    const blockMs = this.options.blockMs ?? 1000;
    let failures = 0;
    while (!this.stopped) {
      let batch: Array<[string, Array<[string, string[]]>]> | null;
      try {
        if (this.recreate) {
          const reason = this.recreate;
          if (await this.ensureGroup()) this.options.onRecovered?.(reason);
          this.recreate = null;
        }
        this.maybeExpire();
        batch = (await this.blocking!.xreadgroup(
          'GROUP',
          CONSUMER_GROUP,
          this.options.instanceId,
          'COUNT',
          64,
          'BLOCK',
          blockMs,
          'STREAMS',
          this.key,
          '>',
        )) as Array<[string, Array<[string, string[]]>]> | null;
        if (this.abandoned) break;
        this.lastReadAt = Date.now();
        this.problem = null;
        failures = 0;
      } catch (error) {
        if (this.stopped) break;
        failures += 1;
        if (isNoGroup(error)) {
          // Redis lost the stream and group (restart without persistence, flush): recreate, then read again.
          this.problem = 'consumer group lost (NOGROUP); recreating it';
          this.recreate = 'NOGROUP';
        } else {
          this.problem = `read failed: ${(error as Error).message}`;
          this.recreate ??= 'read error';
        }
        this.options.onError?.(error as Error, isNoGroup(error) ? 'nogroup' : 'read');
        // Capped backoff: a dead Redis is not hammered, a recreated group is read again at once.
        if (!isNoGroup(error) || failures > 1) await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** Math.min(failures, 4), 1000)));
        continue;
      }
      for (const [, entries] of batch ?? []) {
        for (const [entryId, fields] of entries) {
          const job = this.process(entryId, fields).catch((error: Error) => this.options.onError?.(error, 'reply'));
          this.inFlight.add(job);
          void job.finally(() => this.inFlight.delete(job));
        }
      }
    }
  }

  private maybeExpire(): void {
    const now = Date.now();
    if (now - this.lastForget >= 10_000) {
      this.lastForget = now;
      this.forgetStarted(now);
    }
    if (now - this.lastExpire < 60_000) return;
    this.lastExpire = now;
    void this.options.redis.pexpire(this.key, this.options.streamTtlMs ?? 3_600_000).catch(() => undefined);
  }

  private async process(entryId: string, flat: string[]): Promise<void> {
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
    const requestId = fields.get('id');
    const replyTo = fields.get('replyTo');
    const deadline = Number(fields.get('deadline'));
    if (!requestId || !replyTo || !(deadline > Date.now())) {
      // Malformed, or its dispatcher has already given up: never execute late.
      await this.options.redis.multi().xack(this.key, CONSUMER_GROUP, entryId).xdel(this.key, entryId).exec();
      return;
    }
    if (this.started.has(requestId)) {
      // Delivered again: the stream's group position went back (a Redis Cluster failover promoted a replica
      // that had not yet received the read that delivered it). It ran, or runs, already: never twice.
      this.options.onRedelivered?.(requestId);
      await this.options.redis.multi().xack(this.key, CONSUMER_GROUP, entryId).xdel(this.key, entryId).exec();
      return;
    }
    this.started.set(requestId, deadline);
    let reply: TerminalCommandReply;
    try {
      const command = parseCommand(fields.get('command'));
      reply = command ? await this.options.handler(command) : { ok: false, code: 'INTERNAL', message: 'malformed command' };
    } catch (error) {
      reply = { ok: false, code: 'INTERNAL', message: (error as Error).message };
    }
    // One MULTI per stream: the reply stream (its dispatcher's) and the request stream (this instance's) are
    // different keys, in different slots on a Redis Cluster. Sent together, in this order on one connection.
    // Should the ack be lost, the entry stays pending, and pending entries are never read again.
    await Promise.all([
      this.options.redis.multi().xadd(replyTo, 'MAXLEN', '~', 1000, '*', 'id', requestId, 'reply', JSON.stringify(reply)).pexpire(replyTo, 600_000).exec(),
      this.options.redis.multi().xack(this.key, CONSUMER_GROUP, entryId).xdel(this.key, entryId).exec(),
    ]);
  }

  /** Forgets the started requests whose deadline has passed: the deadline check drops those anyway. */
  private forgetStarted(now: number): void {
    for (const [requestId, deadline] of this.started) if (deadline <= now) this.started.delete(requestId);
  }
}

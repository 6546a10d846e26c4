import type { Redis } from 'ioredis';

import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';

import { busKeys, CONSUMER_GROUP } from './keys';
import { parseCommand } from './messages';

export type TerminalCommandHandler = (command: TerminalCommand) => Promise<TerminalCommandReply>;

export interface CommandConsumerOptions {
  /** Used for replies and acks; the consumer opens its own blocking connection with `duplicate()`. */
  redis: Redis;
  prefix: string;
  instanceId: string;
  handler: TerminalCommandHandler;
  /** XREADGROUP block time; bounds how long stop() waits. Default 1 s. */
  blockMs?: number;
  /** The request stream of a dead instance disappears after this long. Default 1 h. */
  streamTtlMs?: number;
  onError?: (error: Error, context: string) => void;
}

/**
 * Receives the commands addressed to this connector instance (`${prefix}:bus:req:<instanceId>`) and
 * answers each on its dispatcher's reply stream.
 *
 * At most once, by construction: entries are read only with `>` (never re-read from the pending list,
 * never claimed by another consumer), and an entry whose deadline has passed (its dispatcher already
 * answered TIMEOUT) is dropped unexecuted. If this instance dies while a command runs, the entry stays
 * pending in a stream nobody reads; the operation's DB state machine (PENDING → SENT once) and recovery
 * decide its outcome. Commands run concurrently; per-terminal serialisation is the handler's job.
 */
export class CommandConsumer {
  private readonly key: string;
  private blocking: Redis | undefined;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private lastExpire = 0;

  constructor(private readonly options: CommandConsumerOptions) {
    this.key = busKeys(options.prefix).requests(options.instanceId);
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.blocking = this.options.redis.duplicate();
    try {
      await this.options.redis.xgroup('CREATE', this.key, CONSUMER_GROUP, '$', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
    }
    this.loop = this.run();
  }

  /** Stops reading, waits for the commands already running, then closes the blocking connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
    this.blocking?.disconnect();
  }

  private async run(): Promise<void> {
    const blockMs = this.options.blockMs ?? 1000;
    while (!this.stopped) {
      let batch: Array<[string, Array<[string, string[]]>]> | null;
      try {
        this.maybeExpire();
        batch = (await this.blocking!.xreadgroup(
          'GROUP', CONSUMER_GROUP, this.options.instanceId, 'COUNT', 64, 'BLOCK', blockMs, 'STREAMS', this.key, '>',
        )) as Array<[string, Array<[string, string[]]>]> | null;
      } catch (error) {
        if (this.stopped) break;
        this.options.onError?.(error as Error, 'read');
        await new Promise((resolve) => setTimeout(resolve, 500));
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
    let reply: TerminalCommandReply;
    try {
      const command = parseCommand(fields.get('command'));
      reply = command ? await this.options.handler(command) : { ok: false, code: 'INTERNAL', message: 'malformed command' };
    } catch (error) {
      reply = { ok: false, code: 'INTERNAL', message: (error as Error).message };
    }
    await this.options.redis
      .multi()
      .xadd(replyTo, 'MAXLEN', '~', 1000, '*', 'id', requestId, 'reply', JSON.stringify(reply))
      .pexpire(replyTo, 600_000)
      .xack(this.key, CONSUMER_GROUP, entryId)
      .xdel(this.key, entryId)
      .exec();
  }
}

import { randomUUID } from 'node:crypto';

import type { Database } from '@payorch/db';
import { type DispatchOptions, isUuid, type TerminalCommand, type TerminalCommandDispatcher, type TerminalCommandReply } from '@payorch/domain';
import { duplicateClient, type RedisClient } from '@payorch/redis';

import { waitAtMost } from './bounded';
import { busKeys } from './keys';
import { offline, parseReply } from './messages';

/** The interface lives with the commands it carries (@payorch/domain); re-exported for this lib's users. */
export type { TerminalCommandDispatcher } from '@payorch/domain';

/** The terminal's agent under the tenant: null = no such terminal (for this tenant). */
export type AgentResolver = (tenantId: string, terminalId: string) => Promise<{ agentId: string | null } | null>;

/** Resolves through PostgreSQL under the command's tenant (RLS): another tenant's terminal is NOT_FOUND. */
export function databaseAgentResolver(db: Database): AgentResolver {
  return async (tenantId, terminalId) => {
    if (!isUuid(tenantId) || !isUuid(terminalId)) return null;
    return db.withTenant(tenantId, (tx) => tx.terminal.findUnique({ where: { id: terminalId }, select: { agentId: true } }));
  };
}

/** Reply deadlines per command kind: a purchase may wait minutes for the card. */
export const DEFAULT_COMMAND_TIMEOUTS_MS: Record<TerminalCommand['kind'], number> = {
  'operation.execute': 300_000,
  'operation.recover': 120_000,
  'operation.cancel': 15_000,
  'terminal.refresh_info': 30_000,
};

/** Default of RedisDispatcherOptions.queuedReplyTimeoutMs. */
export const DEFAULT_QUEUED_REPLY_TIMEOUT_MS = 15_000;

export interface RedisDispatcherOptions {
  /** Ownership lookups, XADD of requests, DEL of the reply stream. */
  redis: RedisClient;
  /**
   * The connection the reply reader blocks on (XREAD BLOCK); the process's named `blocking`
   * connection (@payorch/redis), owned by the caller and used by this reader only. Without it the
   * dispatcher opens its own `redis.duplicate()` on the first dispatch and closes it in close().
   */
  blocking?: RedisClient;
  prefix: string;
  resolveAgent: AgentResolver;
  timeoutsMs?: Partial<Record<TerminalCommand['kind'], number>>;
  /**
   * Reply deadline of an `operation.execute` with `replyWhen: 'queued'`: the connector answers as soon as
   * the operation is in the terminal's queue, so this bounds delivery, not the terminal. Default 15 s.
   */
  queuedReplyTimeoutMs?: number;
  /** XREAD block time of the reply reader; bounds close(). Default 1 s. */
  blockMs?: number;
}

interface Pending {
  resolve: (reply: TerminalCommandReply) => void;
  timer: NodeJS.Timeout;
}

/**
 * The gateway's / worker's side of the command bus (docs/tunnel.md, "Command bus"): looks up the
 * owner instance of the terminal's agent (`${prefix}:owner:agent:<id>`), appends the command to that
 * instance's request stream with a deadline, and waits for the reply on its own reply stream.
 *   - no owner → TERMINAL_OFFLINE at once (nothing queued);
 *   - no reply by the deadline → TIMEOUT; the consumer drops the entry if it reads it later, so a
 *     command is executed at most once. An operation's true outcome is then its DB state.
 */
export class RedisTerminalCommandDispatcher implements TerminalCommandDispatcher {
  readonly id = randomUUID();
  private readonly keys: ReturnType<typeof busKeys>;
  private readonly replyKey: string;
  private readonly pending = new Map<string, Pending>();
  private reader: RedisClient | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: RedisDispatcherOptions) {
    this.keys = busKeys(options.prefix);
    this.replyKey = this.keys.replies(this.id);
  }

  isAvailable(): boolean {
    return !this.closed && this.options.redis.status === 'ready';
  }

  async dispatch(command: TerminalCommand, options: DispatchOptions = {}): Promise<TerminalCommandReply> {
    if (this.closed) return { ok: false, code: 'INTERNAL', message: 'dispatcher closed' };
    const target = options.agentId !== undefined ? { agentId: options.agentId } : await this.options.resolveAgent(command.tenantId, command.terminalId);
    if (!target) return { ok: false, code: 'NOT_FOUND', message: `terminal ${command.terminalId} not found` };
    if (!target.agentId) return offline('the terminal has no agent');
    let owner: string | null;
    try {
      owner = await this.options.redis.get(this.keys.agentOwner(target.agentId));
    } catch (error) {
      // A fail-fast connection (no offline queue) rejects at once while Redis is away: nothing was sent.
      return { ok: false, code: 'INTERNAL', message: `command bus unavailable: ${(error as Error).message}` };
    }
    if (!owner) return offline("the terminal's agent is not connected");
    this.ensureReader();
    const timeoutMs =
      options.timeoutMs ??
      (command.kind === 'operation.execute' && command.replyWhen === 'queued'
        ? (this.options.queuedReplyTimeoutMs ?? DEFAULT_QUEUED_REPLY_TIMEOUT_MS)
        : (this.options.timeoutsMs?.[command.kind] ?? DEFAULT_COMMAND_TIMEOUTS_MS[command.kind]));
    const requestId = randomUUID();
    const reply = new Promise<TerminalCommandReply>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        resolve({ ok: false, code: 'TIMEOUT', message: `no reply from connector ${owner} within ${timeoutMs} ms` });
      }, timeoutMs);
      this.pending.set(requestId, { resolve, timer });
    });
    try {
      await this.options.redis.xadd(
        this.keys.requests(owner),
        'MAXLEN',
        '~',
        10_000,
        '*',
        'id',
        requestId,
        'command',
        JSON.stringify(command),
        'replyTo',
        this.replyKey,
        'deadline',
        String(Date.now() + timeoutMs),
      );
    } catch (error) {
      this.settle(requestId, { ok: false, code: 'INTERNAL', message: `command bus unavailable: ${(error as Error).message}` });
    }
    return reply;
  }

  /** Stops the reply reader; pending dispatches answer INTERNAL. */
  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.pending.keys()]) this.settle(id, { ok: false, code: 'INTERNAL', message: 'dispatcher closed' });
    if (this.options.blocking) {
      // Not ours to close: wait for the current XREAD (one block time) unless Redis is away.
      await waitAtMost(this.loop, 2 * (this.options.blockMs ?? 1000));
    } else {
      await this.loop;
      this.reader?.disconnect();
    }
    await this.options.redis.del(this.replyKey).catch(() => undefined);
  }

  private settle(requestId: string, reply: TerminalCommandReply): void {
    const pending = this.pending.get(requestId);
    if (!pending) return;
    this.pending.delete(requestId);
    clearTimeout(pending.timer);
    pending.resolve(reply);
  }

  private ensureReader(): void {
    if (this.loop) return;
    if (this.options.blocking) {
      this.reader = this.options.blocking;
    } else {
      this.reader = duplicateClient(this.options.redis);
      // Connection errors surface as failed reads; read() retries until Redis answers again.
      this.reader.on('error', () => undefined);
    }
    this.loop = this.read();
  }

  /**
   * Survives Redis restarts: a failed XREAD is retried every 250 ms; a reply stream lost with Redis is
   * read again from `lastId` (XREAD on a missing key blocks like on an empty one, and the ids of new
   * entries are newer). A request lost with Redis is never answered: its timer answers TIMEOUT, and the
   * operation's DB state and recovery decide its outcome.
   */
  private async read(): Promise<void> {
    let lastId = '0-0';
    while (!this.closed) {
      try {
        const batch = (await this.reader!.xread('BLOCK', this.options.blockMs ?? 1000, 'STREAMS', this.replyKey, lastId)) as Array<
          [string, Array<[string, string[]]>]
        > | null;
        for (const [, entries] of batch ?? []) {
          for (const [entryId, flat] of entries) {
            lastId = entryId;
            const fields = new Map<string, string>();
            for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
            const requestId = fields.get('id');
            if (requestId) this.settle(requestId, parseReply(fields.get('reply')));
          }
        }
      } catch {
        if (this.closed) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }
}

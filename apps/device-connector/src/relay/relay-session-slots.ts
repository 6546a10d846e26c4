import { randomUUID } from 'node:crypto';

import { KeyedSlots, withTimeout } from '@payorch/domain';
import { type RedisClient, RedisScript } from '@payorch/redis';

import { SharedLimit } from '../tunnel/shared-limit';

/** Why a 91 was refused for the sessions already held (label `reason` of `payorch_connector_relay_sessions_refused_total`). */
export type SessionCapReason = 'terminal_limit' | 'tenant_limit' | 'connector_limit';

export type SessionSlot = { readonly release: () => void } | { readonly refused: Exclude<SessionCapReason, 'terminal_limit'>; readonly limit: number };

/**
 * Takes a lease on one of the tenant's relay sessions over every connector instance. KEYS[1]: the tenant's leases, a
 * sorted set of `<instance>:<uuid>` scored by expiry (ms, Redis' own clock: instances whose clocks differ share one
 * count). ARGV: the cap, the lease TTL (ms), the lease. Expired leases (a crashed or cut-off instance's) are dropped
 * first, then the rest counted and the lease added in the same step. Returns 1 (taken) or 0 (the tenant holds the cap).
 */
const TAKE = new RedisScript(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1`);

/**
 * Renews the leases this instance holds of one tenant (KEYS[1]): ARGV[1] the TTL, then the leases. A lease Redis lost
 * (a restart, a flush, a failover, or one taken while Redis did not answer) is added again: the session is held, so it
 * counts. Expired leases are dropped. Returns the tenant's leases now.
 */
const REFRESH = new RedisScript(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])`);

/** Longest wait at shutdown for the removal of this instance's leases; past it they expire after their TTL. */
const CLOSE_TIMEOUT_MS = 1_000;

/** The tenant cap over every connector instance, as leases in Redis. */
export interface SharedSessionsOptions {
  /** The connector's `command` connection. */
  redis: RedisClient;
  /** REDIS_KEY_PREFIX: a tenant's leases are the sorted set `<prefix>:relay:sessions:{<tenantId>}`. */
  keyPrefix: string;
  /** This connector instance: its leases are `<instanceId>:<uuid>`. */
  instanceId: string;
  /** How long a lease outlives its last renewal (CONNECTOR_OWNERSHIP_TTL_MS); renewed every third of it. */
  leaseTtlMs: number;
  /** Longest wait of a 91 for Redis' answer; past it this instance's own count decides (SHARED_LIMIT_TIMEOUT_MS). */
  timeoutMs: number;
  /** A 91 whose tenant cap this instance decided alone (Redis not connected, failed, or too slow). */
  onUnshared(error: Error, first: boolean): void;
}

/**
 * The relay sessions of a tenant (all its terminals) and of one connector instance: at most `perTenant` of one tenant
 * and `total` of all tenants at once on this instance, the opens still under way included, and, with `shared`, at
 * most `perTenant` of one tenant over every connector instance. Without them only RELAY_MAX_CONNECTIONS_PER_TERMINAL
 * bounded the sessions, so a tenant bridging T terminals (or forging frames for T terminal ids) held 4·T sessions,
 * each a socket and up to 1 MiB of unread host bytes, in the memory and file descriptors every tenant shares; and with
 * the tenant cap counted per instance, a tenant whose agents were spread over N instances held N times it.
 *
 * `take` takes this instance's places (the tenant's and the connector's) synchronously, before its first await, so
 * concurrent 91s cannot all pass; then the tenant's lease over every instance (`shared`: one Lua script that prunes
 * expired leases, counts and adds). The connector cap stays this instance's own: it protects this instance's memory
 * and sockets. Redis is a cache (STYLE C12): when it is not connected, fails or does not answer within `timeoutMs`, the
 * tenant's places on this instance decide alone (`onUnshared`), as they also bound it while Redis answers (never more
 * than `perTenant` here, even right after Redis lost its leases). A lease is renewed every third of its TTL while its
 * session is held, and added again if Redis lost it (also at once when the connection is ready again); a crashed
 * instance's leases expire after the TTL.
 *
 * Each slot is handed out as an idempotent release (KeyedSlots): a session gives it back once, however it ends, and
 * its lease is removed once (by the release or by `close` at shutdown, whichever comes first); a refused 91 takes
 * nothing.
 */
export class RelaySessionSlots {
  private readonly tenants: KeyedSlots;
  private readonly connector: KeyedSlots;
  private readonly limit: SharedLimit | undefined;
  /** The leases this instance holds, by tenant (renewed by the heartbeat). */
  private readonly leases = new Map<string, Set<string>>();
  /** Removals of leases still under way (awaited by `close`). */
  private readonly removals = new Set<Promise<unknown>>();
  private readonly heartbeat: NodeJS.Timeout | undefined;
  private readonly onReady = () => void this.refresh();

  constructor(
    readonly perTenant: number,
    readonly total: number,
    private readonly onRefused: (reason: SessionCapReason) => void = () => undefined,
    private readonly shared?: SharedSessionsOptions,
  ) {
    this.tenants = new KeyedSlots(perTenant);
    this.connector = new KeyedSlots(total);
    if (!shared || !Number.isFinite(perTenant)) return;
    this.limit = new SharedLimit(shared.redis, { timeoutMs: shared.timeoutMs, what: 'shared relay sessions', onUnshared: shared.onUnshared });
    this.heartbeat = setInterval(this.onReady, Math.max(250, Math.floor(shared.leaseTtlMs / 3)));
    this.heartbeat.unref();
    // After a reconnect, re-assert at once rather than up to a third of the TTL later.
    shared.redis.on('ready', this.onReady);
  }

  /**
   * A slot for one session of `tenantId`, or why none: the tenant's cap on this instance first, then the connector's,
   * then the tenant's over every instance. This instance's places are taken before the first await; never rejects.
   */
  async take(tenantId: string): Promise<SessionSlot> {
    const tenant = this.tenants.take(tenantId);
    if (!tenant) return this.refuse('tenant_limit', this.perTenant);
    const connector = this.connector.take('');
    if (!connector) {
      tenant();
      return this.refuse('connector_limit', this.total);
    }
    const local = () => {
      tenant();
      connector();
    };
    if (!this.limit || !this.shared) return { release: local };
    const lease = `${this.shared.instanceId}:${randomUUID()}`;
    const answer = await this.limit.ask(TAKE, [this.keyOf(tenantId)], [this.perTenant, this.shared.leaseTtlMs, lease]);
    if (answer !== undefined && Number(answer) !== 1) {
      local();
      return this.refuse('tenant_limit', this.perTenant);
    }
    // Taken in Redis, or decided here alone: held either way, so renewed (and added once Redis answers again).
    this.hold(tenantId, lease);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        local();
        this.unhold(tenantId, lease);
      },
    };
  }

  /** Counts a 91 refused for the terminal's own limit (RELAY_MAX_CONNECTIONS_PER_TERMINAL), with the caps' refusals. */
  refusedForTerminal(): void {
    this.onRefused('terminal_limit');
  }

  /** Sessions held now on this connector. */
  get held(): number {
    return this.connector.of('');
  }

  /** Sessions `tenantId` holds now on this connector. */
  of(tenantId: string): number {
    return this.tenants.of(tenantId);
  }

  /**
   * One heartbeat: renews every lease this instance holds (one script per tenant, sent together). Nothing is sent
   * while the connection is not up; a failure is left to the next heartbeat (the leases expire meanwhile at worst).
   */
  async refresh(): Promise<void> {
    const shared = this.shared;
    if (!shared || shared.redis.status !== 'ready') return;
    await Promise.all(
      [...this.leases].map(([tenantId, leases]) => REFRESH.run(shared.redis, [this.keyOf(tenantId)], [shared.leaseTtlMs, ...leases]).catch(() => undefined)),
    );
  }

  /**
   * At shutdown, once every session was closed: stops the heartbeat and removes the leases still held here (each
   * once: a release afterwards removes nothing more), waiting for the removals at most CLOSE_TIMEOUT_MS (Redis down:
   * they expire after their TTL).
   */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.shared?.redis.off('ready', this.onReady);
    for (const [tenantId, leases] of [...this.leases]) for (const lease of [...leases]) this.unhold(tenantId, lease);
    await withTimeout(Promise.allSettled([...this.removals]), CLOSE_TIMEOUT_MS, 'relay session leases removal').catch(() => undefined);
  }

  private hold(tenantId: string, lease: string): void {
    const leases = this.leases.get(tenantId) ?? new Set<string>();
    leases.add(lease);
    this.leases.set(tenantId, leases);
  }

  /** Removes a lease this instance still holds; one removed already (by `close`) is not sent again. */
  private unhold(tenantId: string, lease: string): void {
    const leases = this.leases.get(tenantId);
    if (!leases?.delete(lease)) return;
    if (leases.size === 0) this.leases.delete(tenantId);
    // Sent even while Redis is away (the connection's offline queue holds it); lost, the lease expires after its TTL.
    const removal: Promise<unknown> = this.shared!.redis.zrem(this.keyOf(tenantId), lease)
      .catch(() => undefined)
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }

  /** The tenant's leases (its `{tenantId}` hash tag, as the other per-tenant keys: docs/architecture.md). */
  private keyOf(tenantId: string): string {
    return `${this.shared!.keyPrefix}:relay:sessions:{${tenantId}}`;
  }

  private refuse(reason: Exclude<SessionCapReason, 'terminal_limit'>, limit: number): SessionSlot {
    this.onRefused(reason);
    return { refused: reason, limit };
  }
}

import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import type { ApiKeyLookup, Database } from '@payorch/db';
import { holdsScope, type KeyScope, tokenPrefix } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { apiKeysChangedChannel } from '@payorch/operations';
import { InjectRedis } from '@payorch/redis';

import { keyFailure } from './auth-throttle';
import { DATABASE, GATEWAY_CONFIG, LOGGER, REDIS } from './tokens';

/** Cached lookups per process at most (the oldest is forgotten first). */
export const API_KEY_CACHE_ENTRIES = 10_000;

/**
 * The API-key lookups of this gateway process (`Database.findApiKeyByPrefix`: the key's row by its prefix, with its
 * hash, scopes, revocation and expiry, for a tenant that is active). Issue 19: it was one statement and one round trip
 * per authenticated request, 8 % of PostgreSQL's time in the operations bench.
 *
 * A key that was found is kept for API_KEY_CACHE_MS (0: never kept); the hash, revocation and expiry are checked on
 * every request (`keyFailure`), against the row as read. Only the key's row is kept, never the key itself (its hash,
 * as in PostgreSQL). A prefix that names no key (or a key of a disabled tenant) is never kept: a new key works at once,
 * and guessed prefixes cannot fill the cache.
 *
 * Freshness: whoever revokes a key or changes a tenant's status calls `changed(tenantId)`, which forgets the tenant's
 * lookups in this process at once and announces it on `apiKeysChangedChannel` (as the admin CLI does), on which every
 * gateway forgets them too. Lookups are kept only while this process is subscribed to that channel (after the SUBSCRIBE is confirmed, until
 * the connection drops: then everything is forgotten), so a missed announcement can only come from a message Redis
 * lost; API_KEY_CACHE_MS bounds even that. A lookup that was on its way while a change was announced, or while the
 * subscription was lost and made again (an announcement may have been missed meanwhile), is not kept. Over a Redis
 * Cluster nothing is kept: ioredis moves a cluster's subscription to another node without telling its user, so a
 * lost subscription could not be seen. Every gateway announces its changes, whether it keeps lookups or not.
 */
@Injectable()
export class ApiKeyLookups implements OnModuleInit, OnApplicationShutdown {
  private readonly entries = new Map<string, { key: ApiKeyLookup; until: number }>();
  /**
   * Lookups on their way, by prefix, with the generation they started in: a request for the same prefix in the same
   * generation waits for that one instead of sending its own. After a change of a tenant's keys every live stream and
   * `?wait=` of the tenant checks its key again at once (KeyWatch), and every request of a key whose lookup was just
   * forgotten looks it up: one statement per prefix instead of one per waiter. Shared only while lookups are kept
   * (`keeping`), so it never serves older data than a kept lookup would.
   */
  private readonly inFlight = new Map<string, { generation: number; lookup: Promise<ApiKeyLookup | null> }>();
  /** Told of every change of a tenant's keys or status this process hears of (`onTenantChanged`). */
  private readonly changeListeners = new Set<(tenantId: string) => void>();
  /** Bumped by every change, every lost subscription and every confirmed one: a lookup read before one is not kept. */
  private generation = 0;
  private listening = false;
  /** Lookups may be kept: API_KEY_CACHE_MS > 0, and not over a Redis Cluster (set at init). */
  private caching = false;
  private readonly channel: string;
  private readonly ttlMs: number;

  private readonly onMessage = (channel: string, message: string) => {
    if (channel === this.channel) this.forget(message);
  };
  private readonly onDown = () => {
    if (this.keeping) this.logger.warn('API-key change announcements unavailable: lookups are not kept until they are back');
    this.listening = false;
    this.forget();
  };
  private readonly onReady = () => void this.listen();

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(REDIS) private readonly redis: Redis,
    // The gateway's pub/sub connection (EventHub's too); closed by RedisModule.
    @InjectRedis('subscriber') private readonly subscriber: Redis,
  ) {
    this.channel = apiKeysChangedChannel(config.REDIS_KEY_PREFIX);
    this.ttlMs = config.API_KEY_CACHE_MS;
  }

  /**
   * Follows the announcements whether lookups are kept or not: they also tell live streams and `?wait=`s (KeyWatch) to
   * check their keys at once. Until 2026-12-07 a gateway that kept nothing (API_KEY_CACHE_MS=0, a Redis Cluster) did not
   * subscribe, and a key revoked through another gateway or the admin CLI kept its streams there until the next
   * heartbeat (EVENTS_HEARTBEAT_MS).
   */
  onModuleInit(): void {
    this.caching = this.ttlMs > 0 && !this.subscriber.isCluster;
    if (this.ttlMs > 0 && this.subscriber.isCluster) {
      this.logger.info('API-key lookups are not kept over a Redis Cluster (a moved subscription is not seen); API_KEY_CACHE_MS has no effect');
    }
    this.subscriber.on('message', this.onMessage);
    this.subscriber.on('close', this.onDown);
    this.subscriber.on('ready', this.onReady);
    void this.listen();
  }

  onApplicationShutdown(): void {
    this.subscriber.off('message', this.onMessage);
    this.subscriber.off('close', this.onDown);
    this.subscriber.off('ready', this.onReady);
    this.listening = false;
    this.forget();
  }

  /** Lookups are kept (true) only when caching is on and while the announcements reach this process. */
  get keeping(): boolean {
    return this.caching && this.listening;
  }

  async find(prefix: string): Promise<ApiKeyLookup | null> {
    // A monotonic clock: a step of the wall clock must not lengthen what API_KEY_CACHE_MS bounds.
    const now = performance.now();
    const kept = this.entries.get(prefix);
    if (kept !== undefined) {
      if (kept.until > now) return kept.key;
      this.entries.delete(prefix);
    }
    const generation = this.generation;
    const sharing = this.inFlight.get(prefix);
    if (sharing !== undefined && sharing.generation === generation && this.keeping) return sharing.lookup;
    const lookup = this.db.findApiKeyByPrefix(prefix);
    if (this.keeping) {
      this.inFlight.set(prefix, { generation, lookup });
      const done = () => {
        if (this.inFlight.get(prefix)?.lookup === lookup) this.inFlight.delete(prefix);
      };
      lookup.then(done, done);
    }
    const key = await lookup;
    if (key !== null && this.keeping && generation === this.generation) {
      if (this.entries.size >= API_KEY_CACHE_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(prefix, { key, until: now + this.ttlMs });
    }
    return key;
  }

  /**
   * Whether `token` still authenticates with `scope` now (the checks of a request: its row as found, its hash, revocation,
   * expiry, an active tenant, the scope). For what outlives its request: a live event stream re-checks its key with it.
   */
  async holds(token: string, scope: KeyScope): Promise<boolean> {
    const prefix = tokenPrefix(token, 'pok');
    const key = prefix ? await this.find(prefix) : null;
    return key !== null && keyFailure(token, key, new Date()) === null && holdsScope(key.scopes, scope);
  }

  /**
   * `listener` hears of each change of a tenant's keys or status this process learns of (its own `changed`, another
   * gateway's or the admin CLI's announcement), after the tenant's lookups were forgotten here. Must not throw.
   * Returns the unsubscribe.
   */
  onTenantChanged(listener: (tenantId: string) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /**
   * A tenant's keys or status changed (call it after the change committed): forgotten here at once, then announced to
   * the other gateways. An announcement that cannot be sent is logged; API_KEY_CACHE_MS bounds what it leaves behind.
   */
  async changed(tenantId: string): Promise<void> {
    this.forget(tenantId);
    // Announced even when this gateway keeps nothing (API_KEY_CACHE_MS=0, a cluster): the others may keep lookups.
    await this.redis.publish(this.channel, tenantId).catch((error: unknown) => {
      this.logger.warn({ tenantId, err: (error as Error).message }, 'API-key change not announced (Redis): other gateways forget it after API_KEY_CACHE_MS');
    });
  }

  /** One tenant's lookups, or (no tenant) all of them. */
  private forget(tenantId?: string): void {
    this.generation += 1;
    if (tenantId === undefined) {
      this.entries.clear();
      return;
    }
    for (const [prefix, entry] of this.entries) if (entry.key.tenantId === tenantId) this.entries.delete(prefix);
    for (const listener of [...this.changeListeners]) listener(tenantId);
  }

  private async listen(): Promise<void> {
    try {
      await this.subscriber.subscribe(this.channel);
      // An announcement made while the subscription was down was missed: a lookup read before now is not kept.
      this.generation += 1;
      this.listening = true;
    } catch (error) {
      this.listening = false;
      this.logger.warn({ err: (error as Error).message }, 'API-key change announcements unavailable: lookups are not kept');
    }
  }
}

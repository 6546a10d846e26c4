import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import type { PublishedEvent } from '@payorch/db';
import { isUuid } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { eventsChannel } from '@payorch/operations';
import { InjectRedis } from '@payorch/redis';

import { GATEWAY_CONFIG, LOGGER } from '../common/tokens';

/** One live listener (an SSE response or a WebSocket) of one tenant. */
export interface HubListener {
  /** A live event of the listener's tenant; also called with no event every EVENTS_HEARTBEAT_MS (a re-read in case a message was lost). */
  deliver(event?: PublishedEvent): void;
}

/**
 * Live events of the gateway process on its one Redis pub/sub connection (the named `subscriber`
 * connection, @payorch/redis), multiplexing every SSE and WebSocket client: it subscribes to `${prefix}:events:<tenantId>` while that tenant has at least one
 * listener and hands each message to that tenant's listeners only. A message whose body names another
 * tenant than its channel is dropped (never another tenant's events).
 */
@Injectable()
export class EventHub implements OnApplicationShutdown {
  private readonly listeners = new Map<string, Set<HubListener>>();
  private readonly prefix: string;
  private readonly tickMs: number;
  private ticker: NodeJS.Timeout | undefined;

  private readonly onChannelMessage = (channel: string, message: string) => this.onMessage(channel, message);

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    // Runs no other command; it re-subscribes on reconnect (ioredis autoResubscribe). Closed by RedisModule.
    @InjectRedis('subscriber') private readonly subscriber: Redis,
  ) {
    this.prefix = config.REDIS_KEY_PREFIX;
    this.tickMs = config.EVENTS_HEARTBEAT_MS;
    this.subscriber.on('message', this.onChannelMessage);
  }

  /** Adds a listener; resolves once the tenant's channel is subscribed (so nothing published after is missed). */
  async add(tenantId: string, listener: HubListener): Promise<() => void> {
    let set = this.listeners.get(tenantId);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(tenantId, set);
    }
    set.add(listener);
    this.ticker ??= setInterval(() => this.tick(), this.tickMs).unref();
    await this.subscriber.subscribe(eventsChannel(this.prefix, tenantId));
    return () => this.remove(tenantId, listener);
  }

  /** Listeners connected now (all tenants). */
  get size(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.ticker);
    this.ticker = undefined;
    const channels = [...this.listeners.keys()].map((tenantId) => eventsChannel(this.prefix, tenantId));
    this.listeners.clear();
    this.subscriber.off('message', this.onChannelMessage);
    // The connection is shared (RedisModule closes it after this): leave only this hub's channels, without
    // waiting (queued while Redis is away, and rejected when the connection is closed).
    if (channels.length) this.subscriber.unsubscribe(...channels).catch(() => undefined);
  }

  private remove(tenantId: string, listener: HubListener): void {
    const set = this.listeners.get(tenantId);
    if (!set?.delete(listener) || set.size > 0) return;
    this.listeners.delete(tenantId);
    if (this.listeners.size === 0) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
    this.subscriber.unsubscribe(eventsChannel(this.prefix, tenantId)).catch(() => undefined);
  }

  private tick(): void {
    for (const set of this.listeners.values()) for (const listener of [...set]) listener.deliver();
  }

  private onMessage(channel: string, message: string): void {
    const tenantId = channel.slice(channel.lastIndexOf(':') + 1);
    const set = this.listeners.get(tenantId);
    if (!set || !isUuid(tenantId)) return;
    let event: PublishedEvent;
    try {
      event = JSON.parse(message) as PublishedEvent;
    } catch {
      this.logger.warn({ channel }, 'unparseable live event dropped');
      return;
    }
    if (event.tenantId !== tenantId || typeof event.id !== 'string' || typeof event.type !== 'string') {
      this.logger.warn({ channel }, 'live event of another tenant or malformed: dropped');
      return;
    }
    for (const listener of [...set]) listener.deliver(event);
  }
}

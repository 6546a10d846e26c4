import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import type { PublishedEvent } from '@payorch/db';
import { isUuid } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { eventMessageObject, eventsChannel } from '@payorch/operations';
import { InjectRedis } from '@payorch/redis';

import { GATEWAY_CONFIG, LOGGER } from '../common/tokens';

/** One live listener (an SSE response or a WebSocket) of one tenant. */
export interface HubListener {
  /** A live event of the listener's tenant; also called with no event every EVENTS_HEARTBEAT_MS (a re-read in case a message was lost). */
  deliver(event?: PublishedEvent): void;
}

/**
 * How long a tenant's channel stays subscribed after its last listener left. A tenant whose `?wait` requests
 * follow one another (one till: every request listens from dispatch to outcome) keeps its channel instead of
 * paying a SUBSCRIBE and an UNSUBSCRIBE, each a socket write and a Redis round trip, per request.
 */
export const CHANNEL_LINGER_MS = 10_000;

/** A tenant's channel: its listeners and the one SUBSCRIBE they all wait for. */
interface Channel {
  readonly listeners: Set<HubListener>;
  /** Resolves once Redis confirmed the subscription; undefined after it failed (the next listener sends it again). */
  subscribed: Promise<unknown> | undefined;
  /** Set while the channel has no listener: ends the subscription when it fires. */
  linger: NodeJS.Timeout | undefined;
}

/**
 * Live events of the gateway process on its one Redis pub/sub connection (the named `subscriber`
 * connection, @payorch/redis), multiplexing every SSE and WebSocket client: it subscribes to `${prefix}:events:<tenantId>`
 * once, when the tenant's first listener comes (every later listener waits for that same SUBSCRIBE), keeps it
 * CHANNEL_LINGER_MS after the last one left, and hands each message to that tenant's listeners only. A message
 * whose body names another tenant than its channel is dropped (never another tenant's events).
 */
@Injectable()
export class EventHub implements OnApplicationShutdown {
  private readonly channels = new Map<string, Channel>();
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

  /**
   * Adds a listener; resolves once the tenant's channel is subscribed (so nothing published after is missed).
   * Rejects, without keeping the listener, when the SUBSCRIBE fails.
   */
  async add(tenantId: string, listener: HubListener): Promise<() => void> {
    let channel = this.channels.get(tenantId);
    if (channel === undefined) {
      channel = { listeners: new Set(), subscribed: undefined, linger: undefined };
      this.channels.set(tenantId, channel);
    }
    clearTimeout(channel.linger);
    channel.linger = undefined;
    channel.listeners.add(listener);
    this.ticker ??= setInterval(() => this.tick(), this.tickMs).unref();
    const subscribed = (channel.subscribed ??= this.subscriber.subscribe(eventsChannel(this.prefix, tenantId)));
    try {
      await subscribed;
    } catch (error) {
      // Not kept: the next listener asks again (a reconnected connection re-subscribes by itself, ioredis autoResubscribe).
      if (channel.subscribed === subscribed) channel.subscribed = undefined;
      this.remove(tenantId, listener);
      throw error;
    }
    return () => this.remove(tenantId, listener);
  }

  /** Listeners connected now (all tenants). */
  get size(): number {
    let n = 0;
    for (const channel of this.channels.values()) n += channel.listeners.size;
    return n;
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.ticker);
    this.ticker = undefined;
    for (const channel of this.channels.values()) clearTimeout(channel.linger);
    const channels = [...this.channels.keys()].map((tenantId) => eventsChannel(this.prefix, tenantId));
    this.channels.clear();
    this.subscriber.off('message', this.onChannelMessage);
    // The connection is shared (RedisModule closes it after this): leave only this hub's channels, without
    // waiting (queued while Redis is away, and rejected when the connection is closed).
    if (channels.length) this.subscriber.unsubscribe(...channels).catch(() => undefined);
  }

  private remove(tenantId: string, listener: HubListener): void {
    const channel = this.channels.get(tenantId);
    if (!channel?.listeners.delete(listener) || channel.listeners.size > 0 || channel.linger !== undefined) return;
    channel.linger = setTimeout(() => this.leave(tenantId, channel), CHANNEL_LINGER_MS).unref();
  }

  /** The channel's linger ended without a new listener: unsubscribe (a later listener subscribes again, after it). */
  private leave(tenantId: string, channel: Channel): void {
    if (this.channels.get(tenantId) !== channel || channel.listeners.size > 0) return;
    this.channels.delete(tenantId);
    if (this.channels.size === 0) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
    if (channel.subscribed !== undefined) this.subscriber.unsubscribe(eventsChannel(this.prefix, tenantId)).catch(() => undefined);
  }

  private tick(): void {
    for (const channel of this.channels.values()) for (const listener of [...channel.listeners]) listener.deliver();
  }

  private onMessage(channel: string, message: string): void {
    const tenantId = channel.slice(channel.lastIndexOf(':') + 1);
    const set = this.channels.get(tenantId)?.listeners;
    // A lingering channel (no listener) drops its messages unread.
    if (!set?.size || !isUuid(tenantId)) return;
    const event = eventMessageObject(message) as (PublishedEvent & Record<string, unknown>) | null;
    if (event === null) {
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

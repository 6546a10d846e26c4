import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { WorkerConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { isUuid, QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { eventMessageObject, webhooksChangedChannel } from '@payorch/operations';
import { InjectRedis } from '@payorch/redis';

import { DATABASE, LOGGER, WORKER_CONFIG } from '../tokens';

/**
 * How long a tenant's subscribed event types are trusted without a re-read. Their changes are announced too
 * (webhooksChangedChannel); this bounds how long a lost announcement can keep a new endpoint's events on the sweep.
 */
export const WEBHOOK_INDEX_TTL_MS = 5_000;

interface TenantIndex {
  /** The event types some enabled endpoint of the tenant subscribes to (`*`: all). */
  types: Promise<ReadonlySet<string>>;
  expiresAt: number;
}

/**
 * Turns committed domain events published on `${prefix}:events:<tenantId>` (pattern subscription) into
 * `webhook.fanout` jobs with jobId = event id, so several workers (or a repeated message) enqueue one
 * job — only for events some enabled endpoint of the tenant subscribes to (issue 19: every event of every tenant
 * was a BullMQ job and a fan-out transaction, webhooks or not, the largest part of a worker's CPU per payment). The
 * subscribed types are read per tenant and kept WEBHOOK_INDEX_TTL_MS, forgotten at once when the gateway announces a
 * change; a read that fails lets the event through (the job decides exactly). Pub/sub is at-most-once: what it misses
 * while this worker is down, or what a stale index skipped, the sweep finds (it picks only events that a matching
 * endpoint has no delivery of).
 */
@Injectable()
export class WebhookEventListener implements OnModuleInit, OnApplicationShutdown {
  private readonly pattern: string;
  private readonly changed: string;
  private readonly index = new Map<string, TenantIndex>();
  private readonly onPatternMessage = (pattern: string, channel: string, message: string) => {
    if (pattern === this.pattern) void this.onMessage(channel, message);
  };
  private readonly onChannelMessage = (channel: string, message: string) => {
    if (channel === this.changed) this.index.delete(message);
  };

  constructor(
    @Inject(WORKER_CONFIG) config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(DATABASE) private readonly db: Database,
    @InjectQueue(QUEUES.webhooks) private readonly queue: Queue,
    // The process's shared pub/sub connection (re-subscribes on reconnect); closed by RedisModule.
    @InjectRedis('subscriber') private readonly subscriber: Redis,
  ) {
    this.pattern = `${config.REDIS_KEY_PREFIX}:events:*`;
    this.changed = webhooksChangedChannel(config.REDIS_KEY_PREFIX);
  }

  async onModuleInit(): Promise<void> {
    this.subscriber.on('pmessage', this.onPatternMessage);
    this.subscriber.on('message', this.onChannelMessage);
    await Promise.all([this.subscriber.psubscribe(this.pattern), this.subscriber.subscribe(this.changed)]);
  }

  onApplicationShutdown(): void {
    this.subscriber.off('pmessage', this.onPatternMessage);
    this.subscriber.off('message', this.onChannelMessage);
    // Not awaited: queued while Redis is away, and rejected when RedisModule closes the connection.
    this.subscriber.punsubscribe(this.pattern).catch(() => undefined);
    this.subscriber.unsubscribe(this.changed).catch(() => undefined);
  }

  private async onMessage(channel: string, message: string): Promise<void> {
    const tenantId = channel.slice(channel.lastIndexOf(':') + 1);
    const event = eventMessageObject(message);
    if (event === null) return;
    if (!isUuid(tenantId) || event.tenantId !== tenantId || typeof event.id !== 'string' || !isUuid(event.id) || typeof event.type !== 'string') return;
    if (!(await this.subscribed(tenantId, event.type))) return;
    try {
      await this.queue.add(
        'webhook.fanout',
        { tenantId, eventId: event.id },
        { jobId: event.id, attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { count: 1000 } },
      );
    } catch (error) {
      this.logger.warn({ eventId: event.id, err: (error as Error).message }, 'could not enqueue webhook fan-out; the sweep will');
    }
  }

  /** Whether some enabled endpoint of the tenant subscribes to the type, as of at most WEBHOOK_INDEX_TTL_MS ago (true when unknown). */
  private async subscribed(tenantId: string, type: string): Promise<boolean> {
    const now = Date.now();
    let entry = this.index.get(tenantId);
    if (entry === undefined || entry.expiresAt <= now) {
      const fresh: TenantIndex = { types: this.readTypes(tenantId), expiresAt: now + WEBHOOK_INDEX_TTL_MS };
      this.index.set(tenantId, (entry = fresh));
      fresh.types.catch(() => {
        if (this.index.get(tenantId) === fresh) this.index.delete(tenantId);
      });
    }
    try {
      const types = await entry.types;
      return types.has('*') || types.has(type);
    } catch {
      return true;
    }
  }

  private async readTypes(tenantId: string): Promise<ReadonlySet<string>> {
    const endpoints = await this.db.withTenant(tenantId, (tx) => tx.webhookEndpoint.findMany({ where: { enabled: true }, select: { eventTypes: true } }));
    return new Set(endpoints.flatMap((endpoint) => endpoint.eventTypes));
  }
}

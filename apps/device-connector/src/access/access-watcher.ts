import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';

import type { ConnectorConfig } from '@payorch/config';
import type { Logger } from '@payorch/logging';
import { accessChannel } from '@payorch/operations';
import { InjectRedis } from '@payorch/redis';

import { TerminalHub } from '../terminals/terminal-hub';
import { CONNECTOR_CONFIG, LOGGER } from '../tokens';
import { agentsToRecheck } from './access-check';

/** Every agent held here is re-checked against PostgreSQL this often, whatever Redis delivered. */
export const ACCESS_RECHECK_INTERVAL_MS = 30_000;

/**
 * Live revocation (docs/tunnel.md §12.4). Revoking, deleting or re-enrolling an agent and creating,
 * changing, disabling or deleting a terminal commit a domain event with the change; the Database's
 * `onCommitted` hook publishes it after the commit on `${prefix}:events:<tenantId>` (the tenants'
 * live channels) and, being one of ACCESS_EVENT_TYPES, on `${prefix}:access:<tenantId>` too. This instance
 * listens on the access channels only (PSUBSCRIBE: a payment's events never reach it) and asks the
 * TerminalHub to re-check each agent named that it holds.
 *
 * Redis pub/sub is at most once (a restart or a dropped connection loses messages), so PostgreSQL
 * decides, not the message: after every (re)subscription every held agent is re-checked, and again
 * every ACCESS_RECHECK_INTERVAL_MS.
 */
@Injectable()
export class AccessWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly pattern: string;
  private timer: NodeJS.Timeout | undefined;
  private subscribed: Promise<void> = Promise.resolve();
  private readonly onReady = () => (this.subscribed = this.subscribe());
  private readonly onPatternMessage = (pattern: string, channel: string, message: string) => {
    if (pattern === this.pattern) this.onMessage(channel, message);
  };

  constructor(
    @Inject(CONNECTOR_CONFIG) config: ConnectorConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly hub: TerminalHub,
    // The process's `subscriber` connection (a subscriber runs no other command; closed by RedisModule).
    // It has autoResubscribe off: this watcher subscribes itself on every 'ready', so the re-check
    // always follows a subscription that is active.
    @InjectRedis('subscriber') private readonly subscriber: Redis,
  ) {
    this.pattern = accessChannel(config.REDIS_KEY_PREFIX, '*');
  }

  async onApplicationBootstrap(): Promise<void> {
    this.subscriber.on('ready', this.onReady);
    this.subscriber.on('pmessage', this.onPatternMessage);
    // Already connected: subscribe now (later 'ready's are reconnects). Otherwise the first 'ready' does
    // it; wait for it, unless Redis is not there yet (then the watcher subscribes when it is).
    if (this.subscriber.status === 'ready') this.onReady();
    else await this.firstReadyOrError();
    await this.subscribed;
    this.timer = setInterval(() => void this.hub.reconcileAll(), ACCESS_RECHECK_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.subscriber.off('ready', this.onReady);
    this.subscriber.off('pmessage', this.onPatternMessage);
    // Not awaited: queued while Redis is away, and rejected when RedisModule closes the connection.
    this.subscriber.punsubscribe(this.pattern).catch(() => undefined);
  }

  private firstReadyOrError(): Promise<void> {
    return new Promise((resolve) => {
      const done = (error?: Error) => {
        this.subscriber.off('ready', done);
        this.subscriber.off('error', done);
        if (error) this.logger.warn({ err: error.message }, 'access watcher not subscribed yet; it retries');
        resolve();
      };
      this.subscriber.on('ready', done);
      this.subscriber.on('error', done);
    });
  }

  private async subscribe(): Promise<void> {
    try {
      await this.subscriber.psubscribe(this.pattern);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'access watcher could not subscribe');
      return;
    }
    // Whatever was published while the subscription was down is lost: PostgreSQL decides for every agent held here.
    await this.hub.reconcileAll();
  }

  private onMessage(channel: string, message: string): void {
    const named = agentsToRecheck(channel, message);
    if (!named) return;
    if (named.wholeTenant) {
      void this.hub.reconcileAll(named.tenantId);
      return;
    }
    for (const agentId of named.agentIds) {
      void this.hub.reconcile(agentId).catch((error: Error) => this.logger.warn({ agentId, err: error.message }, 'access re-check failed'));
    }
  }
}

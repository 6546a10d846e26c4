import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';

import { AgentOwnership, CommandConsumer, type CommandConsumerStatus, type TerminalCommandHandler } from '@payorch/command-bus';
import type { ConnectorConfig } from '@payorch/config';
import type { Logger } from '@payorch/logging';
import { InjectRedis } from '@payorch/redis';

import { CONNECTOR_CONFIG, INSTANCE_ID, LOGGER, REDIS } from '../tokens';

/**
 * This instance's end of the command bus (@payorch/command-bus): the ownership keys of the agents
 * connected here (heartbeat-refreshed) and the consumer of this instance's request stream.
 */
@Injectable()
export class CommandBusService implements OnModuleInit, OnApplicationShutdown {
  readonly ownership: AgentOwnership;
  private consumer: CommandConsumer | undefined;
  private readonly lostListeners: Array<(agentId: string) => void> = [];

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(CONNECTOR_CONFIG) private readonly config: ConnectorConfig,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    @Inject(LOGGER) private readonly logger: Logger,
    // XREADGROUP BLOCK waits here: the process's one `blocking` connection (closed by RedisModule).
    @InjectRedis('blocking') private readonly blocking: Redis,
  ) {
    this.ownership = new AgentOwnership({
      redis,
      prefix: config.REDIS_KEY_PREFIX,
      instanceId,
      ttlMs: config.CONNECTOR_OWNERSHIP_TTL_MS,
      onLost: (agentId) => {
        this.logger.warn({ agentId }, 'agent ownership taken by another instance');
        for (const listener of this.lostListeners) listener(agentId);
      },
      onReasserted: (agentIds) => this.logger.warn({ agents: agentIds.length }, 'agent ownership keys re-asserted (Redis lost them)'),
    });
  }

  onModuleInit(): void {
    this.ownership.start();
  }

  onOwnershipLost(listener: (agentId: string) => void): void {
    this.lostListeners.push(listener);
  }

  /** Starts consuming this instance's request stream with `handler`. */
  async consume(handler: TerminalCommandHandler): Promise<void> {
    this.consumer = new CommandConsumer({
      redis: this.redis,
      blocking: this.blocking,
      prefix: this.config.REDIS_KEY_PREFIX,
      instanceId: this.instanceId,
      handler,
      onError: (error, context) => this.logger.warn({ err: error.message, context }, 'command bus error'),
      onRecovered: (reason) => this.logger.warn({ reason }, 'command bus stream and consumer group recreated'),
    });
    await this.consumer.start();
  }

  /** The consumer's read loop (readiness); null before consume(). */
  consumerStatus(): CommandConsumerStatus | null {
    return this.consumer?.status() ?? null;
  }

  /** Pending (read, unanswered) and lag (unread) of this instance's request stream; null before consume(). */
  async backlog(): Promise<{ pending: number; lag: number } | null> {
    return this.consumer ? this.consumer.backlog() : null;
  }

  /** Stops reading new commands (those already read are answered); idempotent. */
  async stopConsuming(): Promise<void> {
    await this.consumer?.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    this.ownership.stop();
    await this.consumer?.stop();
  }
}

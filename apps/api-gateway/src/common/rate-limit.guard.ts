import { type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { Response } from 'express';
import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import { ApiError } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { RedisThrottlerStorage } from './redis-throttler.storage';
import type { PayorchRequest } from './request-context';
import { LOGGER } from './tokens';

const WINDOW_MS = 60_000;

/**
 * The per-API-key limit for `ThrottlerModule.forRootAsync`: RATE_LIMIT_PER_MINUTE requests in a one-minute
 * window that opens at the key's first request, counted in Redis (`<prefix>:ratelimit:…`, the `command`
 * connection) so every gateway instance shares it. `blockDuration: 0`: a key over its limit is refused
 * until its window ends, never longer.
 */
export function rateLimitOptions(config: GatewayConfig, redis: Redis): ThrottlerModuleOptions {
  return {
    throttlers: [{ name: 'default', ttl: WINDOW_MS, limit: config.RATE_LIMIT_PER_MINUTE, blockDuration: 0 }],
    storage: new RedisThrottlerStorage(redis, `${config.REDIS_KEY_PREFIX}:ratelimit`),
  };
}

/**
 * @nestjs/throttler's guard, per API key. Runs after ApiKeyGuard; unauthenticated routes (health, metrics,
 * docs) are not limited here (failed authentications have their own throttle, AuthThrottle). Every limited
 * answer has `X-RateLimit-Limit` / `X-RateLimit-Remaining` (and the throttler's `X-RateLimit-Reset`); over the
 * limit it is 429 `RATE_LIMITED` with `Retry-After` = seconds until the window ends. A Redis error fails open
 * (logged): an outage of the counter store must not turn every request into a refusal or a 500.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    super(options, storage, reflector);
  }

  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    return !context.switchToHttp().getRequest<PayorchRequest>().apiKey;
  }

  /** Each key has its own budget (another key of the same tenant is not affected). */
  protected override async getTracker(req: Record<string, unknown>): Promise<string> {
    return (req as unknown as PayorchRequest).apiKey!.id;
  }

  /** One budget per key across every route (the default key is per route handler). */
  protected override generateKey(_context: ExecutionContext, tracker: string): string {
    return tracker;
  }

  protected override async handleRequest(request: ThrottlerRequest): Promise<boolean> {
    try {
      return await super.handleRequest(request);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      const { requestId } = request.context.switchToHttp().getRequest<PayorchRequest>();
      this.log.warn({ err: (error as Error).message, requestId }, 'rate limiter unavailable (Redis); failing open');
      return true;
    }
  }

  protected override async throwThrottlingException(context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const res = context.switchToHttp().getResponse<Response>();
    res.setHeader('X-RateLimit-Limit', String(detail.limit));
    res.setHeader('X-RateLimit-Remaining', '0');
    // Retry-After is already set by ThrottlerGuard (timeToBlockExpire: the rest of the window).
    const retryIn = detail.timeToBlockExpire;
    throw new ApiError('RATE_LIMITED', `rate limit of ${detail.limit} requests per minute exceeded; retry in ${retryIn}s`, {
      limit: detail.limit,
      retryAfterSeconds: retryIn,
    });
  }
}

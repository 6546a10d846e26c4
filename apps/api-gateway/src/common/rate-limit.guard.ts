import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import { ApiError } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import type { PayorchRequest } from './request-context';
import { GATEWAY_CONFIG, LOGGER, REDIS } from './tokens';

const WINDOW_SECONDS = 60;

/**
 * Fixed one-minute window per API key, counted in Redis so every gateway instance shares it.
 * Runs after ApiKeyGuard; unauthenticated routes are not limited here. A Redis error fails open
 * (logged): an outage of the counter store must not turn every request into a 500.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<PayorchRequest>();
    if (!req.apiKey) return true;
    const res = context.switchToHttp().getResponse<Response>();
    const window = Math.floor(Date.now() / 1000 / WINDOW_SECONDS);
    const key = `${this.config.REDIS_KEY_PREFIX}:ratelimit:${req.apiKey.id}:${window}`;
    let count: number;
    try {
      [[, count]] = (await this.redis.multi().incr(key).expire(key, WINDOW_SECONDS + 1).exec()) as [[Error | null, number]];
    } catch (error) {
      this.logger.warn({ err: (error as Error).message, requestId: req.requestId }, 'rate limiter unavailable (Redis); failing open');
      return true;
    }
    const limit = this.config.RATE_LIMIT_PER_MINUTE;
    const resetIn = WINDOW_SECONDS - (Math.floor(Date.now() / 1000) % WINDOW_SECONDS);
    res.setHeader('X-RateLimit-Limit', String(limit));
    res.setHeader('X-RateLimit-Remaining', String(Math.max(0, limit - count)));
    if (count > limit) {
      res.setHeader('Retry-After', String(resetIn));
      throw new ApiError('RATE_LIMITED', `rate limit of ${limit} requests per minute exceeded; retry in ${resetIn}s`, {
        limit,
        retryAfterSeconds: resetIn,
      });
    }
    return true;
  }
}

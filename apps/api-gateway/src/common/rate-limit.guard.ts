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
import { GATEWAY_CONFIG, LOGGER } from './tokens';

const WINDOW_MS = 60_000;

/** The per-API-key budget (named `default`, so its Redis keys are the ones it always had). */
const KEY_THROTTLER = 'default';
/** The per-tenant budget: every key of the tenant together. */
const TENANT_THROTTLER = 'tenant';

export type RateLimitScope = 'key' | 'tenant';

/** The tenant of an authenticated request (ApiKeyGuard set it; requests without a key are skipped before this). */
const tenantOf = (req: Record<string, unknown>) => (req as unknown as PayorchRequest).tenant!.tenantId;

/**
 * The limits for `ThrottlerModule.forRootAsync`, both counted in Redis (`<prefix>:ratelimit:…`, the `command`
 * connection) so every gateway instance shares them, in one-minute windows that open at the first request:
 * RATE_LIMIT_PER_MINUTE per API key, and RATE_LIMIT_PER_TENANT_PER_MINUTE per tenant, all its keys together (a tenant
 * that makes more keys gets no more requests). `blockDuration: 0`: over a limit, refused until its window ends, never longer.
 */
export function rateLimitOptions(config: GatewayConfig, redis: Redis): ThrottlerModuleOptions {
  return {
    throttlers: [
      { name: KEY_THROTTLER, ttl: WINDOW_MS, limit: config.RATE_LIMIT_PER_MINUTE, blockDuration: 0 },
      { name: TENANT_THROTTLER, ttl: WINDOW_MS, limit: config.RATE_LIMIT_PER_TENANT_PER_MINUTE, blockDuration: 0, getTracker: tenantOf },
    ],
    storage: new RedisThrottlerStorage(redis, `${config.REDIS_KEY_PREFIX}:ratelimit`),
  };
}

/** The 429 of a spent budget (the guard's and RequestBudget's). */
function rateLimited(scope: RateLimitScope, limit: number, retryAfterSeconds: number): ApiError {
  const what =
    scope === 'tenant' ? `rate limit of ${limit} requests per minute for the tenant (all its API keys)` : `rate limit of ${limit} requests per minute`;
  return new ApiError('RATE_LIMITED', `${what} exceeded; retry in ${retryAfterSeconds}s`, { limit, retryAfterSeconds, scope });
}

/**
 * @nestjs/throttler's guard, per API key and per tenant. Runs after ApiKeyGuard; unauthenticated routes (health,
 * metrics, docs) are not limited here (failed authentications have their own throttle, AuthThrottle). Every limited
 * answer has `X-RateLimit-Limit` / `X-RateLimit-Remaining` / `X-RateLimit-Reset` for the key and the same with a
 * `-tenant` suffix for the tenant; over either limit it is 429 `RATE_LIMITED` (`details.scope`: `key` or `tenant`)
 * with `Retry-After` = seconds until that window ends. A Redis error fails open (logged): an outage of the counter
 * store must not turn every request into a refusal or a 500.
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

  /** Each key has its own budget (another key of the same tenant is not affected by it); the tenant's is tenantOf. */
  protected override async getTracker(req: Record<string, unknown>): Promise<string> {
    return (req as unknown as PayorchRequest).apiKey!.id;
  }

  /** One budget per key (per tenant) across every route (the default key is per route handler). */
  protected override generateKey(_context: ExecutionContext, tracker: string): string {
    return tracker;
  }

  /** Requests whose counting failed (Redis): their other budget is not asked either, and they are logged once. */
  private readonly failedOpen = new WeakSet<object>();

  protected override async handleRequest(request: ThrottlerRequest): Promise<boolean> {
    const req = request.context.switchToHttp().getRequest<PayorchRequest>();
    if (this.failedOpen.has(req)) return true;
    try {
      return await super.handleRequest(request);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      this.failedOpen.add(req);
      this.log.warn({ err: (error as Error).message, requestId: req.requestId }, 'rate limiter unavailable (Redis); failing open');
      return true;
    }
  }

  protected override async throwThrottlingException(context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const req = context.switchToHttp().getRequest<PayorchRequest>();
    const res = context.switchToHttp().getResponse<Response>();
    const scope: RateLimitScope = detail.tracker === req.apiKey?.id ? 'key' : 'tenant';
    const suffix = scope === 'tenant' ? '-tenant' : '';
    res.setHeader(`X-RateLimit-Limit${suffix}`, String(detail.limit));
    res.setHeader(`X-RateLimit-Remaining${suffix}`, '0');
    // ThrottlerGuard set `Retry-After` for the key's budget, `Retry-After-tenant` for the tenant's: the standard header either way.
    const retryIn = detail.timeToBlockExpire;
    res.setHeader('Retry-After', String(retryIn));
    throw rateLimited(scope, detail.limit, retryIn);
  }
}

/**
 * The same two budgets, the same Redis counters, for a request that does not pass through the guard: the event
 * WebSocket upgrade (events-ws.server.ts), answered outside Nest. Fails open like the guard.
 */
@Injectable()
export class RequestBudget {
  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /** Spends one request of the key's budget, then of its tenant's: null, or the 429 to answer (its details say when to retry). */
  async spend(key: { id: string; tenantId: string }, requestId: string): Promise<ApiError | null> {
    const budgets: Array<[RateLimitScope, string, string, number]> = [
      ['key', KEY_THROTTLER, key.id, this.config.RATE_LIMIT_PER_MINUTE],
      ['tenant', TENANT_THROTTLER, key.tenantId, this.config.RATE_LIMIT_PER_TENANT_PER_MINUTE],
    ];
    try {
      for (const [scope, name, tracker, limit] of budgets) {
        const record = await this.storage.increment(tracker, WINDOW_MS, limit, 0, name);
        if (record.isBlocked) return rateLimited(scope, limit, record.timeToBlockExpire);
      }
      return null;
    } catch (error) {
      this.log.warn({ err: (error as Error).message, requestId }, 'rate limiter unavailable (Redis); failing open');
      return null;
    }
  }
}

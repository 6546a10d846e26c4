import type { IncomingMessage } from 'node:http';

import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import ipaddr from 'ipaddr.js';

import type { GatewayConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { verifyToken } from '@payorch/domain';
import { authMetrics, type Logger, type Registry } from '@payorch/logging';

import { DATABASE, GATEWAY_CONFIG, LOGGER, METRICS_REGISTRY, REDIS } from './tokens';

export type AuthFailureReason = 'invalid_key' | 'revoked_key' | 'expired_key';

/** Why a presented key does not authenticate (null: it does). Same 401 to the caller whatever the reason. */
export function keyFailure(token: string, key: { hash: string; revokedAt: Date | null; expiresAt: Date | null } | null, now: Date): AuthFailureReason | null {
  if (!key || !verifyToken(token, key.hash)) return 'invalid_key';
  if (key.revokedAt) return 'revoked_key';
  if (key.expiresAt && key.expiresAt <= now) return 'expired_key';
  return null;
}

/**
 * The address a request comes from: the socket's peer, or with TRUST_PROXY the right-most `X-Forwarded-For` entry,
 * the one our proxy appended (nginx `$proxy_add_x_forwarded_for`, deploy/nginx/nginx.conf). Every entry left of it is
 * whatever the client sent: the left-most one (what Express's `req.ip` gives with `trust proxy: true`) let a client
 * name a new address with each guess and never reach AUTH_FAILURE_LIMIT. Works on a raw IncomingMessage too
 * (WebSocket upgrades). IPv4-mapped IPv6 is folded to IPv4 so both forms share a counter.
 */
export function sourceAddress(req: IncomingMessage, trustProxy: boolean): string {
  const forwarded = trustProxy ? req.headers['x-forwarded-for'] : undefined;
  const last = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded)?.split(',').at(-1)?.trim();
  const address = last || req.socket.remoteAddress || 'unknown';
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '').slice(0, 64);
}

/**
 * What an address's failures are counted under: an IPv4 address, or the /64 of an IPv6 address. One host (or one
 * customer line) holds a whole /64 and may take any address in it (privacy addresses, or simply one per request), so
 * counting each IPv6 address alone gave it 2^64 budgets. Anything that is not an IP address is counted as itself.
 */
export function throttleSubject(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const ip = ipaddr.process(address);
  if (ip.kind() === 'ipv4') return ip.toString();
  const network = (ip as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${network.join(':')}::/64`;
}

/**
 * Failed API-key authentication per source address (an IPv6 address's /64, throttleSubject), counted in Redis
 * (shared by every gateway instance): AUTH_FAILURE_LIMIT failures within AUTH_FAILURE_WINDOW_SECONDS (the window
 * opens at the first failure) block the address until the window ends; a blocked request is refused before its key
 * is looked up.
 * Redis errors fail open (logged): an outage must not lock every client out nor turn into a 500.
 *
 * Every failure is a structured warning (requestId, source address) and counts in
 * `payorch_auth_failures_total`; when the presented prefix names a real key, the failure is also written
 * to that tenant's AuditLog (`api_key.auth_failed`, actor `anonymous` = the source address). A key
 * nobody owns has no tenant to audit under (AuditLog is tenant-owned, under RLS).
 */
@Injectable()
export class AuthThrottle {
  private readonly metrics: ReturnType<typeof authMetrics>;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(DATABASE) private readonly db: Database,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.metrics = authMetrics(registry);
  }

  addressOf(req: IncomingMessage): string {
    return sourceAddress(req, this.config.TRUST_PROXY);
  }

  /**
   * Seconds until `address` may try again (0: not blocked). One GET per request; the window's end is read only for an
   * address that is blocked (it was a MULTI / GET / PTTL / EXEC on every request).
   */
  async retryAfter(address: string, requestId: string): Promise<number> {
    try {
      const count = await this.redis.get(this.key(address));
      if (Number(count ?? 0) < this.config.AUTH_FAILURE_LIMIT) return 0;
      const ttl = await this.redis.pttl(this.key(address));
      this.metrics.throttled.inc();
      this.logger.warn({ requestId, sourceAddress: address }, 'request refused: too many failed authentications from this address');
      return ttl > 0 ? Math.ceil(ttl / 1000) : this.config.AUTH_FAILURE_WINDOW_SECONDS;
    } catch (error) {
      this.logger.warn({ err: (error as Error).message, requestId }, 'auth throttle unavailable (Redis); failing open');
      return 0;
    }
  }

  /** Records one failed authentication: structured warning, metric, Redis counter. Never throws. */
  async failed(address: string, requestId: string, reason: AuthFailureReason, key?: { id: string; tenantId: string }): Promise<void> {
    this.metrics.failures.inc({ reason });
    this.logger.warn({ requestId, sourceAddress: address, reason, tenantId: key?.tenantId, apiKeyId: key?.id }, 'API key authentication failed');
    if (key) {
      // The presented prefix named a real key of a tenant (a wrong secret, or a revoked / expired key in use):
      // the tenant's own audit trail records it. Bounded by the throttle; never fails the request.
      await this.db
        .withTenant(key.tenantId, (tx) =>
          tx.auditLog.create({
            data: {
              tenantId: key.tenantId,
              actorType: 'anonymous',
              actorId: address,
              requestId,
              action: 'api_key.auth_failed',
              resourceType: 'api_key',
              resourceId: key.id,
              details: { reason, sourceAddress: address },
            },
          }),
        )
        .catch((error: Error) => this.logger.warn({ err: error.message, requestId }, 'could not audit the failed authentication'));
    }
    try {
      const key = this.key(address);
      await this.redis.multi().set(key, '0', 'EX', this.config.AUTH_FAILURE_WINDOW_SECONDS, 'NX').incr(key).exec();
    } catch (error) {
      this.logger.warn({ err: (error as Error).message, requestId }, 'auth throttle unavailable (Redis); failure not counted');
    }
  }

  /** The address's counter: its /64 for IPv6 (throttleSubject); logs and audit rows keep the full address. */
  private key(address: string): string {
    return `${this.config.REDIS_KEY_PREFIX}:authfail:${throttleSubject(address)}`;
  }
}

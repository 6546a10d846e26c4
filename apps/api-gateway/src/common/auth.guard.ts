import { applyDecorators, type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';

import type { Database } from '@payorch/db';
import { ApiError, holdsScope, type KeyScope, tokenPrefix } from '@payorch/domain';

import { ApiKeyLookups } from './api-key-lookups';
import { AuthThrottle, keyFailure } from './auth-throttle';
import { ApiPublic, ApiScopes } from './openapi';
import type { PayorchRequest } from './request-context';
import { DATABASE } from './tokens';

export const SCOPES_KEY = 'payorch:scopes';
export const SETTINGS_KEY = 'payorch:settings';
const PUBLIC_KEY = 'payorch:public';

/**
 * Route needs an API key with every listed scope: a fine scope (`stores:write`) is also covered by a
 * role scope that includes it (`read`, `operate`, `admin`; libs/domain/src/scopes.ts, docs/security.md).
 */
export const RequireScopes = (...scopes: KeyScope[]) => applyDecorators(SetMetadata(SCOPES_KEY, scopes), ApiScopes(scopes)); // ApiScopes: the operation's `x-scopes`
/**
 * On a controller whose writes change settings (assist merchants, settlement schedules): of the roles,
 * only `admin` covers its `…:write` scope, although `operate` covers the same fine scope elsewhere.
 */
export const SettingsRoutes = () => SetMetadata(SETTINGS_KEY, true);
/** Route needs no API key (health, metrics, docs). */
export const Public = () => applyDecorators(SetMetadata(PUBLIC_KEY, true), ApiPublic()); // ApiPublic: no security in the document

const LAST_USED_RESOLUTION_MS = 60_000;

/** The 401 message of a key that does not authenticate: the same whatever the reason, so a caller learns nothing of it. */
export const KEY_REFUSED = 'invalid, revoked or expired API key';

/**
 * `Authorization: Bearer pok_…`. Resolves the key through the security-definer lookup (ApiKeyLookups: kept for
 * API_KEY_CACHE_MS, forgotten when the tenant's keys or status change), checks
 * hash, revocation, expiry and scopes, and attaches the TenantContext. A revoked, expired or
 * unknown key is 401 with the same message, so a caller learns nothing about which it was.
 * Failures are counted per source address (AuthThrottle); a blocked address gets 429 before its key is
 * looked up.
 */
/** The API key of an `Authorization: Bearer <key>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
}

@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly lastTouched = new Map<string, number>();

  constructor(
    private readonly reflector: Reflector,
    @Inject(DATABASE) private readonly db: Database,
    private readonly throttle: AuthThrottle,
    private readonly keys: ApiKeyLookups,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const req = context.switchToHttp().getRequest<PayorchRequest>();
    const address = this.throttle.addressOf(req);
    const retryAfter = await this.throttle.retryAfter(address, req.requestId);
    if (retryAfter > 0) {
      context.switchToHttp().getResponse<Response>().setHeader('Retry-After', String(retryAfter));
      throw new ApiError('RATE_LIMITED', `too many failed authentications from this address; retry in ${retryAfter}s`, { retryAfterSeconds: retryAfter });
    }
    const token = bearerToken(req.header('authorization'));
    if (!token) throw new ApiError('UNAUTHENTICATED', 'missing "Authorization: Bearer <api key>" header');
    const prefix = tokenPrefix(token, 'pok');
    const key = prefix ? await this.keys.find(prefix) : null;
    const now = new Date();
    const failure = keyFailure(token, key, now);
    if (failure || !key) {
      await this.throttle.failed(address, req.requestId, failure ?? 'invalid_key', key ? { id: key.id, tenantId: key.tenantId } : undefined);
      throw new ApiError('UNAUTHENTICATED', KEY_REFUSED);
    }
    const needed = this.reflector.getAllAndOverride<KeyScope[]>(SCOPES_KEY, targets) ?? [];
    const settings = this.reflector.getAllAndOverride<boolean>(SETTINGS_KEY, targets) ?? false;
    const missing = needed.filter((s) => !holdsScope(key.scopes, s, { settings }));
    if (missing.length) {
      throw new ApiError('FORBIDDEN', `API key lacks scope(s): ${missing.join(', ')}`, { missing });
    }
    req.apiKey = { id: key.id, scopes: key.scopes };
    req.tenant = { tenantId: key.tenantId, actor: { type: 'api_key', id: key.id }, requestId: req.requestId };
    await this.touch(key.id, key.tenantId, now);
    return true;
  }

  /**
   * Records last use at most once a minute per key per process. Only the keys written within the last minute are
   * remembered, oldest first (one written again moves to the end): the others would be written on their next use
   * anyway, so the map cannot grow with every key ever used (a tenant making and revoking keys without end).
   */
  private async touch(id: string, tenantId: string, now: Date): Promise<void> {
    const at = now.getTime();
    const last = this.lastTouched.get(id);
    if (last !== undefined && at - last < LAST_USED_RESOLUTION_MS) return;
    this.lastTouched.delete(id);
    for (const [key, touched] of this.lastTouched) {
      if (at - touched < LAST_USED_RESOLUTION_MS) break;
      this.lastTouched.delete(key);
    }
    this.lastTouched.set(id, at);
    await this.db.withTenant(tenantId, (tx) => tx.apiKey.update({ where: { id }, data: { lastUsedAt: now } }));
  }
}

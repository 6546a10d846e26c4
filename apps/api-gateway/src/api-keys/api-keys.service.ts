import { Inject, Injectable } from '@nestjs/common';

import type { GatewayConfig } from '@payorch/config';
import type { Database, TransactionClient } from '@payorch/db';
import { ApiError, issueToken, notFound, type TenantContext, TOKEN_KINDS, ungrantableScopes } from '@payorch/domain';

import { ApiKeyLookups } from '../common/api-key-lookups';
import { audit } from '../common/audit';
import { KEYSET_ORDER, keysetPage, type Page, type PaginationQuery } from '../common/pagination';
import { DATABASE, GATEWAY_CONFIG } from '../common/tokens';
import { type ApiKeyResponse, type ApiKeyWithSecret, type CreateApiKeyDto, toApiKeyResponse } from './dto/api-key.dto';

/**
 * The tenant's own API keys (docs/security.md "Key management"). Only `admin` keys reach this service
 * (`@RequireScopes('admin')`); the checks below hold whoever calls it.
 */
@Injectable()
export class ApiKeysService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly lookups: ApiKeyLookups,
  ) {}

  /**
   * A new key, shown once: only its prefix and hash are stored. A key never grants scopes it does not hold. A tenant
   * holds at most API_KEYS_MAX_PER_TENANT working keys (409 CONFLICT `api_key_limit`): each key is a request budget
   * of its own and an entry of every gateway's key lookups (docs/security.md, "Per-tenant limits").
   */
  create(ctx: TenantContext, callerScopes: readonly string[], dto: CreateApiKeyDto): Promise<ApiKeyWithSecret> {
    const ungrantable = ungrantableScopes(callerScopes, dto.scopes);
    if (ungrantable.length) {
      throw new ApiError('FORBIDDEN', `this API key cannot grant scope(s) it does not hold: ${ungrantable.join(', ')}`, { ungrantable });
    }
    const issued = issueToken(TOKEN_KINDS.apiKey);
    const expiresAt = dto.expiresInDays ? new Date(Date.now() + dto.expiresInDays * 86_400_000) : null;
    return this.db.withTenant(ctx, async (tx) => {
      // Serialised with the tenant's other creations and revocations, so concurrent creations cannot pass the limit together.
      await lockTenantKeys(tx, ctx.tenantId);
      const now = new Date();
      const working = await tx.apiKey.count({ where: { tenantId: ctx.tenantId, revokedAt: null, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] } });
      const limit = this.config.API_KEYS_MAX_PER_TENANT;
      if (working >= limit) {
        throw new ApiError('CONFLICT', `this tenant already has ${limit} working API keys (the most it may): revoke one before creating another`, {
          reason: 'api_key_limit',
          limit,
        });
      }
      const row = await tx.apiKey.create({
        data: { tenantId: ctx.tenantId, name: dto.name, prefix: issued.prefix, hash: issued.hash, scopes: dto.scopes, expiresAt },
      });
      await audit(tx, ctx, { action: 'api_key.create', resourceType: 'api_key', resourceId: row.id, details: { scopes: dto.scopes, prefix: row.prefix } });
      return { ...toApiKeyResponse(row), apiKey: issued.token };
    });
  }

  list(ctx: TenantContext, query: PaginationQuery): Promise<Page<ApiKeyResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const load = (ids: string[]) => tx.apiKey.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      return keysetPage(tx, 'ApiKey', {}, query, load, toApiKeyResponse);
    });
  }

  get(ctx: TenantContext, id: string): Promise<ApiKeyResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      const row = await tx.apiKey.findUnique({ where: { id } });
      if (!row) throw notFound('api_key', id);
      return toApiKeyResponse(row);
    });
  }

  /**
   * Revokes a key at once (the next request with it is 401: every request looks the key up). Revoking
   * again answers the same revocation. The tenant's last working `admin` key cannot be revoked, by
   * itself or another key (409 CONFLICT): that would leave key management to the operator's CLI.
   */
  async revoke(ctx: TenantContext, id: string): Promise<ApiKeyResponse> {
    const revoked = await this.db.withTenant(ctx, async (tx) => {
      // Serialises concurrent revocations of a tenant's keys, so two admins cannot revoke each other's last admin key.
      await lockTenantKeys(tx, ctx.tenantId);
      const row = await tx.apiKey.findUnique({ where: { id } });
      if (!row) throw notFound('api_key', id);
      if (row.revokedAt) return toApiKeyResponse(row);
      const now = new Date();
      if (row.scopes.includes('admin') && (!row.expiresAt || row.expiresAt > now)) {
        const otherAdmins = await tx.apiKey.count({
          where: { id: { not: id }, revokedAt: null, scopes: { has: 'admin' }, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
        });
        if (otherAdmins === 0) {
          throw new ApiError('CONFLICT', "this is the tenant's last working admin key: create another admin key before revoking it", {
            reason: 'last_admin_key',
          });
        }
      }
      const updated = await tx.apiKey.update({ where: { id }, data: { revokedAt: now } });
      await audit(tx, ctx, { action: 'api_key.revoke', resourceType: 'api_key', resourceId: id, details: { prefix: row.prefix } });
      return toApiKeyResponse(updated);
    });
    // Committed: every gateway forgets the tenant's kept lookups (a repeat announces again, harmlessly).
    await this.lookups.changed(ctx.tenantId);
    return revoked;
  }
}

/** The tenant's key changes one at a time (transaction-scoped advisory lock). */
async function lockTenantKeys(tx: TransactionClient, tenantId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`api_keys:${tenantId}`}, 0))`;
}

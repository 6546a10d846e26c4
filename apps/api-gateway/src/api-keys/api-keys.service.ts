import { Inject, Injectable } from '@nestjs/common';

import type { Database } from '@payorch/db';
import { ApiError, issueToken, notFound, type TenantContext, TOKEN_KINDS, ungrantableScopes } from '@payorch/domain';

import { ApiKeyLookups } from '../common/api-key-lookups';
import { audit } from '../common/audit';
import { KEYSET_ORDER, keysetPage, type Page, type PaginationQuery } from '../common/pagination';
import { DATABASE } from '../common/tokens';
import { type ApiKeyResponse, type ApiKeyWithSecret, type CreateApiKeyDto, toApiKeyResponse } from './dto/api-key.dto';

/**
 * The tenant's own API keys (docs/security.md "Key management"). Only `admin` keys reach this service
 * (`@RequireScopes('admin')`); the checks below hold whoever calls it.
 */
@Injectable()
export class ApiKeysService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    private readonly lookups: ApiKeyLookups,
  ) {}

  /** A new key, shown once: only its prefix and hash are stored. A key never grants scopes it does not hold. */
  create(ctx: TenantContext, callerScopes: readonly string[], dto: CreateApiKeyDto): Promise<ApiKeyWithSecret> {
    const ungrantable = ungrantableScopes(callerScopes, dto.scopes);
    if (ungrantable.length) {
      throw new ApiError('FORBIDDEN', `this API key cannot grant scope(s) it does not hold: ${ungrantable.join(', ')}`, { ungrantable });
    }
    const issued = issueToken(TOKEN_KINDS.apiKey);
    const expiresAt = dto.expiresInDays ? new Date(Date.now() + dto.expiresInDays * 86_400_000) : null;
    return this.db.withTenant(ctx, async (tx) => {
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
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`api_keys:${ctx.tenantId}`}, 0))`;
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

import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';

import type { Database, TransactionClient } from '@payorch/db';
import { notFound, type SecretBox, type TenantContext } from '@payorch/domain';
import { openMerchantSecrets, sealMerchantSecrets, type AssistMerchantSecrets } from '@payorch/wallet-payments';

import { audit } from '../common/audit';
import { DestinationGuard } from '../common/destination.guard';
import { KEYSET_ORDER, keysetPage, type Page, type PaginationQuery } from '../common/pagination';
import { mapPrismaError } from '../common/prisma-errors';
import { DATABASE, SECRET_BOX } from '../common/tokens';
import { type AssistMerchantResponse, type CreateAssistMerchantDto, SECRET_FIELDS, type UpdateAssistMerchantDto } from './dto/assist-merchant.dto';

interface MerchantRow {
  createdAt: Date;
  id: string;
  merchantId: string;
  name: string;
  secretsEncrypted: string;
  serverUrl: string;
  tenantId: string;
  updatedAt: Date;
}

/** A merchant row with its secrets opened, for the wallet payments service. Never leaves the server. */
export interface OpenedAssistMerchant {
  readonly id: string;
  readonly merchantId: string;
  readonly serverUrl: string;
  readonly secrets: AssistMerchantSecrets;
}

/**
 * Per-tenant Assist merchant settings. Login, Password, SALT and the RSA key are sealed together
 * (SecretBox, AAD bound to tenant and row) and never returned: answers say `hasPassword` etc.
 */
@Injectable()
export class AssistMerchantsService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(SECRET_BOX) private readonly secrets: SecretBox,
    private readonly destinations: DestinationGuard,
  ) {}

  async create(ctx: TenantContext, dto: CreateAssistMerchantDto): Promise<AssistMerchantResponse> {
    // Plain http is limited to loopback by the DTO; the policy decides whether loopback is reachable at all.
    await this.destinations.assertUrl('serverUrl', dto.serverUrl, { allowHttp: true });
    const id = randomUUID();
    const secrets: AssistMerchantSecrets = {
      login: dto.login,
      password: dto.password,
      salt: dto.salt,
      privateKeyPem: dto.privateKeyPem ?? null,
      assistPublicKeyPem: dto.assistPublicKeyPem ?? null,
    };
    return this.db
      .withTenant(ctx, async (tx) => {
        const row = await tx.assistMerchant.create({
          data: {
            id,
            tenantId: ctx.tenantId,
            name: dto.name,
            merchantId: dto.merchantId,
            serverUrl: dto.serverUrl,
            secretsEncrypted: sealMerchantSecrets(this.secrets, ctx.tenantId, id, secrets),
          },
        });
        await audit(tx, ctx, { action: 'assist_merchant.create', resourceType: 'assist_merchant', resourceId: id });
        return this.toResponse(row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'assist merchant' }));
  }

  list(ctx: TenantContext, query: PaginationQuery): Promise<Page<AssistMerchantResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const load = (ids: string[]) => tx.assistMerchant.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      return keysetPage(tx, 'AssistMerchant', {}, query, load, (row) => this.toResponse(row));
    });
  }

  get(ctx: TenantContext, id: string): Promise<AssistMerchantResponse> {
    return this.db.withTenant(ctx, async (tx) => this.toResponse(await this.require(tx, id)));
  }

  async update(ctx: TenantContext, id: string, dto: UpdateAssistMerchantDto): Promise<AssistMerchantResponse> {
    if (dto.serverUrl !== undefined) await this.destinations.assertUrl('serverUrl', dto.serverUrl, { allowHttp: true });
    return this.db
      .withTenant(ctx, async (tx) => {
        const current = await this.require(tx, id);
        const secretChange = SECRET_FIELDS.some((f) => dto[f] !== undefined);
        let secretsEncrypted: string | undefined;
        if (secretChange) {
          const opened = openMerchantSecrets(this.secrets, ctx.tenantId, id, current.secretsEncrypted);
          secretsEncrypted = sealMerchantSecrets(this.secrets, ctx.tenantId, id, {
            login: dto.login ?? opened.login,
            password: dto.password ?? opened.password,
            salt: dto.salt ?? opened.salt,
            privateKeyPem: dto.privateKeyPem === undefined ? opened.privateKeyPem : dto.privateKeyPem,
            assistPublicKeyPem: dto.assistPublicKeyPem === undefined ? opened.assistPublicKeyPem : dto.assistPublicKeyPem,
          });
        }
        const row = await tx.assistMerchant.update({
          where: { id },
          data: { name: dto.name, merchantId: dto.merchantId, serverUrl: dto.serverUrl, secretsEncrypted },
        });
        // Field names only: never values.
        await audit(tx, ctx, {
          action: 'assist_merchant.update',
          resourceType: 'assist_merchant',
          resourceId: id,
          details: { fields: Object.keys(dto).sort() },
        });
        return this.toResponse(row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'assist merchant', id }));
  }

  remove(ctx: TenantContext, id: string): Promise<void> {
    return this.db
      .withTenant(ctx, async (tx) => {
        await tx.assistMerchant.delete({ where: { id } });
        await audit(tx, ctx, { action: 'assist_merchant.delete', resourceType: 'assist_merchant', resourceId: id });
      })
      .catch((e) => mapPrismaError(e, { resource: 'assist merchant', id }));
  }

  /** The merchant with its secrets opened, inside the caller's tenant transaction; 404 for another tenant's id. */
  async open(tx: TransactionClient, ctx: TenantContext, id: string): Promise<OpenedAssistMerchant> {
    const row = await this.require(tx, id);
    return {
      id: row.id,
      merchantId: row.merchantId,
      serverUrl: row.serverUrl,
      secrets: openMerchantSecrets(this.secrets, ctx.tenantId, row.id, row.secretsEncrypted),
    };
  }

  private async require(tx: TransactionClient, id: string): Promise<MerchantRow> {
    const row = await tx.assistMerchant.findUnique({ where: { id } });
    if (!row) throw notFound('assist merchant', id);
    return row;
  }

  private toResponse(row: MerchantRow): AssistMerchantResponse {
    const opened = openMerchantSecrets(this.secrets, row.tenantId, row.id, row.secretsEncrypted);
    return {
      createdAt: row.createdAt.toISOString(),
      hasAssistPublicKey: opened.assistPublicKeyPem !== null,
      hasPassword: opened.password.length > 0,
      hasPrivateKey: opened.privateKeyPem !== null,
      hasSalt: opened.salt.length > 0,
      id: row.id,
      login: opened.login,
      merchantId: row.merchantId,
      name: row.name,
      serverUrl: row.serverUrl,
      updatedAt: row.updatedAt.toISOString(),
    };
  }
}

import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';

import { type Database, Prisma, type TransactionClient } from '@payorch/db';
import { ApiError, notFound, type SecretBox, type TenantContext } from '@payorch/domain';
import type { Logger, Registry } from '@payorch/logging';
import { openMerchantSecrets, sealMerchantSecrets, type AssistMerchantSecrets } from '@payorch/wallet-payments';

import { audit } from '../common/audit';
import { DestinationGuard } from '../common/destination.guard';
import { KEYSET_ORDER, keysetPage, type Page, type PaginationQuery } from '../common/pagination';
import { mapPrismaError } from '../common/prisma-errors';
import { DATABASE, LOGGER, METRICS_REGISTRY, SECRET_BOX } from '../common/tokens';
import { type AssistMerchantResponse, type CreateAssistMerchantDto, SECRET_FIELDS, type UpdateAssistMerchantDto } from './dto/assist-merchant.dto';

interface MerchantRow {
  createdAt: Date;
  duplicateOfId: string | null;
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

/** The 409 for a second row of one Assist account (Assist's OrderNumber namespace is the account, not the row). */
function duplicateAccount(existingId: string | null): ApiError {
  return new ApiError(
    'ASSIST_MERCHANT_DUPLICATE',
    `this tenant already has Assist merchant settings${existingId ? ` ${existingId}` : ''} for the same Assist account (server and Merchant_ID): ` +
      'Assist order numbers are unique per account, so an account has one settings row; change that one instead',
    { existingId },
  );
}

const isUniqueViolation = (e: unknown) => e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002';

/**
 * Per-tenant Assist merchant settings. Login, Password, SALT and the RSA key are sealed together
 * (SecretBox, AAD bound to tenant and row) and never returned: answers say `hasPassword` etc.
 * One row per Assist account (server origin + Merchant_ID, `payorch_assist_account`): a second one is
 * 409 ASSIST_MERCHANT_DUPLICATE, on create and on a PATCH that moves a row onto a taken account.
 */
@Injectable()
export class AssistMerchantsService {
  private readonly shared: Counter;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(SECRET_BOX) private readonly secrets: SecretBox,
    private readonly destinations: DestinationGuard,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.shared = new Counter({
      name: 'payorch_assist_accounts_shared_total',
      help: 'Assist merchant settings created or moved onto an Assist account that settings of another tenant already name (alert on any: an account must be registered with one tenant, docs/wallet-payments.md §7).',
      registers: [registry],
    });
  }

  async create(ctx: TenantContext, dto: CreateAssistMerchantDto): Promise<AssistMerchantResponse> {
    // Plain http is limited to loopback by the DTO; the policy decides whether loopback is reachable at all.
    await this.destinations.assertUrl('serverUrl', dto.serverUrl, { tenant: ctx, channel: 'assist' }, { allowHttp: true });
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
        const holder = await this.holderOf(tx, dto.serverUrl, dto.merchantId, id);
        if (holder !== null) throw duplicateAccount(holder);
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
        return { response: this.toResponse(row), shared: await sharedElsewhere(tx, row) };
      })
      .then(({ response, shared }) => this.answer(ctx, response, shared))
      .catch((e) => this.mapError(ctx, e, dto, id));
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
    if (dto.serverUrl !== undefined) await this.destinations.assertUrl('serverUrl', dto.serverUrl, { tenant: ctx, channel: 'assist' }, { allowHttp: true });
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
        // A PATCH naming the server or Merchant_ID moves the row to that account: it must be free (a row the migration
        // marked as a duplicate gets an account of its own this way, and takes payments again).
        const moves = dto.serverUrl !== undefined || dto.merchantId !== undefined;
        const account = { serverUrl: dto.serverUrl ?? current.serverUrl, merchantId: dto.merchantId ?? current.merchantId };
        if (moves) {
          const holder = await this.holderOf(tx, account.serverUrl, account.merchantId, id);
          if (holder !== null) throw duplicateAccount(holder);
        }
        const row = await tx.assistMerchant.update({
          where: { id },
          data: { name: dto.name, merchantId: dto.merchantId, serverUrl: dto.serverUrl, secretsEncrypted, ...(moves ? { duplicateOfId: null } : {}) },
        });
        // Field names only: never values.
        await audit(tx, ctx, {
          action: 'assist_merchant.update',
          resourceType: 'assist_merchant',
          resourceId: id,
          details: { fields: Object.keys(dto).sort() },
        });
        return { response: this.toResponse(row), shared: moves && (await sharedElsewhere(tx, row)) };
      })
      .then(({ response, shared }) => this.answer(ctx, response, shared))
      .catch((e) => this.mapError(ctx, e, dto.serverUrl !== undefined || dto.merchantId !== undefined ? dto : undefined, id));
  }

  remove(ctx: TenantContext, id: string): Promise<void> {
    return this.db
      .withTenant(ctx, async (tx) => {
        await tx.assistMerchant.delete({ where: { id } });
        await audit(tx, ctx, { action: 'assist_merchant.delete', resourceType: 'assist_merchant', resourceId: id });
      })
      .catch((e) => mapPrismaError(e, { resource: 'assist merchant', id }));
  }

  /**
   * The merchant with its secrets opened, inside the caller's tenant transaction; 404 for another tenant's id.
   * `forNewPayment`: 409 ASSIST_MERCHANT_DUPLICATE for a row the migration kept only for its existing payments.
   */
  async open(tx: TransactionClient, ctx: TenantContext, id: string, options: { forNewPayment?: boolean } = {}): Promise<OpenedAssistMerchant> {
    const row = await this.require(tx, id);
    if (options.forNewPayment && row.duplicateOfId !== null) throw duplicateAccount(row.duplicateOfId);
    return {
      id: row.id,
      merchantId: row.merchantId,
      serverUrl: row.serverUrl,
      secrets: openMerchantSecrets(this.secrets, ctx.tenantId, row.id, row.secretsEncrypted),
    };
  }

  /**
   * Settings written onto an account another tenant's settings name: answered as usual (refusing them would tell the
   * tenant that another tenant of the platform holds that account), and raised to the operator.
   */
  private answer(ctx: TenantContext, response: AssistMerchantResponse, shared: boolean): AssistMerchantResponse {
    if (shared) {
      this.shared.inc();
      this.logger.error(
        { alert: 'assist_account_shared', tenantId: ctx.tenantId, assistMerchantId: response.id, requestId: ctx.requestId },
        "Assist merchant settings name an Assist account another tenant's settings name: an order number both tenants use is then neither's (ORDER_NOT_PROVEN); give one tenant an account of its own",
      );
    }
    return response;
  }

  /** The tenant's row (other than `except`) that holds the Assist account of this server URL and Merchant_ID, if any. */
  private async holderOf(tx: TransactionClient, serverUrl: string, merchantId: string, except: string): Promise<string | null> {
    const rows = await tx.$queryRaw<Array<{ id: string }>>`
      SELECT "id" FROM "AssistMerchant"
      WHERE "duplicateOfId" IS NULL AND "id" <> ${except}::uuid
        AND payorch_assist_account("serverUrl", "merchantId") = payorch_assist_account(${serverUrl}, ${merchantId})
      LIMIT 1`;
    return rows[0]?.id ?? null;
  }

  /** A unique violation of the account index (a concurrent create or move won) is the same 409; the rest as usual. */
  private async mapError(ctx: TenantContext, error: unknown, account: { serverUrl?: string; merchantId?: string } | undefined, id: string): Promise<never> {
    if (account && isUniqueViolation(error)) {
      const holder = await this.db.withTenant(ctx, async (tx) => {
        const current = await tx.assistMerchant.findUnique({ where: { id } });
        const serverUrl = account.serverUrl ?? current?.serverUrl;
        const merchantId = account.merchantId ?? current?.merchantId;
        return serverUrl && merchantId ? this.holderOf(tx, serverUrl, merchantId, id) : null;
      });
      throw duplicateAccount(holder);
    }
    return mapPrismaError(error, { resource: 'assist merchant', id });
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

/** Whether settings of another tenant name `row`'s Assist account (payorch_assist_account_elsewhere: yes or no, nothing else). */
async function sharedElsewhere(tx: TransactionClient, row: { serverUrl: string; merchantId: string }): Promise<boolean> {
  const [answer] = await tx.$queryRaw<Array<{ shared: boolean }>>`SELECT payorch_assist_account_elsewhere(${row.serverUrl}, ${row.merchantId}) AS "shared"`;
  return answer?.shared === true;
}

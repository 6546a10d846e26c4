import { randomBytes, randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';

import type { GatewayConfig } from '@payorch/config';
import type { Database, TransactionClient } from '@payorch/db';
import { ApiError, notFound, type SecretBox, type TenantContext } from '@payorch/domain';
import { webhookSecretAad, webhooksChangedChannel } from '@payorch/operations';

import { audit } from '../common/audit';
import { DestinationGuard } from '../common/destination.guard';
import { KEYSET_ORDER, keysetPage, type Page, type PaginationQuery } from '../common/pagination';
import { mapPrismaError } from '../common/prisma-errors';
import { DATABASE, GATEWAY_CONFIG, REDIS, SECRET_BOX } from '../common/tokens';
import {
  type CreateWebhookDto,
  type DeliveryResponse,
  type ListDeliveriesQuery,
  toDeliveryResponse,
  toWebhookResponse,
  type UpdateWebhookDto,
  type WebhookResponse,
  type WebhookWithSecret,
} from './dto/webhook.dto';
import { WebhooksQueue } from './webhooks.queue';

const newSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

@Injectable()
export class WebhooksService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(SECRET_BOX) private readonly secrets: SecretBox,
    private readonly queue: WebhooksQueue,
    private readonly destinations: DestinationGuard,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  /**
   * After a committed change of the tenant's endpoints: the workers' fan-out listeners forget the tenant's subscribed
   * types (webhooksChangedChannel). Awaited before the answer, so an event the client causes next is seen with the
   * change; best effort (Redis away: the listeners re-read within seconds, the sweep covers the rest).
   */
  private async announce<T>(tenantId: string, result: T): Promise<T> {
    await this.redis.publish(webhooksChangedChannel(this.config.REDIS_KEY_PREFIX), tenantId).catch(() => undefined);
    return result;
  }

  /**
   * The secret is generated here, returned once, and stored only sealed (SecretBox, AAD = tenant + endpoint). A tenant
   * has at most WEBHOOK_ENDPOINTS_MAX_PER_TENANT endpoints (409 CONFLICT `webhook_endpoint_limit`): each event is one
   * delivery per subscribed endpoint, so without a bound one event could become any number of deliveries.
   */
  async create(ctx: TenantContext, dto: CreateWebhookDto): Promise<WebhookWithSecret> {
    await this.destinations.assertUrl('url', dto.url, { tenant: ctx, channel: 'webhook' });
    const id = randomUUID();
    const secret = newSecret();
    const limit = this.config.WEBHOOK_ENDPOINTS_MAX_PER_TENANT;
    return this.db
      .withTenant(ctx, async (tx) => {
        // Serialises the tenant's creations, so two at once cannot both pass the count.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`webhook_endpoints:${ctx.tenantId}`}, 0))`;
        if ((await tx.webhookEndpoint.count()) >= limit) {
          throw new ApiError('CONFLICT', `a tenant has at most ${limit} webhook endpoints: delete one before creating another`, {
            reason: 'webhook_endpoint_limit',
            limit,
          });
        }
        const row = await tx.webhookEndpoint.create({
          data: {
            id,
            tenantId: ctx.tenantId,
            url: dto.url,
            eventTypes: dto.eventTypes,
            description: dto.description ?? null,
            enabled: dto.enabled,
            secretEncrypted: this.secrets.encrypt(secret, webhookSecretAad(ctx.tenantId, id)),
          },
        });
        await audit(tx, ctx, { action: 'webhook.create', resourceType: 'webhook_endpoint', resourceId: id, details: { eventTypes: dto.eventTypes } });
        return { ...toWebhookResponse(row), secret };
      })
      .then((created) => this.announce(ctx.tenantId, created))
      .catch((e) => mapPrismaError(e, { resource: 'webhook endpoint' }));
  }

  list(ctx: TenantContext, query: PaginationQuery): Promise<Page<WebhookResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const load = (ids: string[]) => tx.webhookEndpoint.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      return keysetPage(tx, 'WebhookEndpoint', {}, query, load, toWebhookResponse);
    });
  }

  get(ctx: TenantContext, id: string): Promise<WebhookResponse> {
    return this.db.withTenant(ctx, async (tx) => toWebhookResponse(await this.load(tx, id)));
  }

  async update(ctx: TenantContext, id: string, dto: UpdateWebhookDto): Promise<WebhookResponse> {
    if (dto.url !== undefined) await this.destinations.assertUrl('url', dto.url, { tenant: ctx, channel: 'webhook' });
    return this.db
      .withTenant(ctx, async (tx) => {
        await this.load(tx, id);
        const row = await tx.webhookEndpoint.update({ where: { id }, data: dto });
        await audit(tx, ctx, { action: 'webhook.update', resourceType: 'webhook_endpoint', resourceId: id, details: { fields: Object.keys(dto) } });
        return toWebhookResponse(row);
      })
      .then((updated) => this.announce(ctx.tenantId, updated))
      .catch((e) => mapPrismaError(e, { resource: 'webhook endpoint', id }));
  }

  remove(ctx: TenantContext, id: string): Promise<void> {
    return this.db
      .withTenant(ctx, async (tx) => {
        await this.load(tx, id);
        await tx.webhookEndpoint.delete({ where: { id } });
        await audit(tx, ctx, { action: 'webhook.delete', resourceType: 'webhook_endpoint', resourceId: id });
      })
      .then(() => this.announce(ctx.tenantId, undefined))
      .catch((e) => mapPrismaError(e, { resource: 'webhook endpoint', id }));
  }

  /** A new secret replaces the old one at once (deliveries from now on are signed with it); shown once. */
  rotateSecret(ctx: TenantContext, id: string): Promise<WebhookWithSecret> {
    const secret = newSecret();
    return this.db.withTenant(ctx, async (tx) => {
      await this.load(tx, id);
      const row = await tx.webhookEndpoint.update({
        where: { id },
        data: { secretEncrypted: this.secrets.encrypt(secret, webhookSecretAad(ctx.tenantId, id)) },
      });
      await audit(tx, ctx, { action: 'webhook.rotate_secret', resourceType: 'webhook_endpoint', resourceId: id });
      return { ...toWebhookResponse(row), secret };
    });
  }

  deliveries(ctx: TenantContext, endpointId: string, query: ListDeliveriesQuery): Promise<Page<DeliveryResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      await this.load(tx, endpointId);
      const load = (ids: string[]) =>
        tx.webhookDelivery.findMany({ where: { id: { in: ids } }, include: { event: { select: { type: true } } }, orderBy: KEYSET_ORDER });
      return keysetPage(tx, 'WebhookDelivery', { endpointId, status: query.status?.toUpperCase() }, query, load, toDeliveryResponse);
    });
  }

  /**
   * Sends a delivered or failed delivery again, with a fresh retry schedule. A delivery still pending or
   * retrying is already scheduled: 409 (a conditional update, so two redeliveries never race).
   */
  async redeliver(ctx: TenantContext, endpointId: string, deliveryId: string): Promise<DeliveryResponse> {
    const row = await this.db.withTenant(ctx, async (tx) => {
      await this.load(tx, endpointId);
      const current = await tx.webhookDelivery.findFirst({ where: { id: deliveryId, endpointId } });
      if (!current) throw notFound('webhook delivery', deliveryId);
      const { count } = await tx.webhookDelivery.updateMany({
        where: { id: deliveryId, status: { in: ['DELIVERED', 'FAILED'] } },
        data: { status: 'PENDING', attempts: 0, nextAttemptAt: new Date(), lastError: null },
      });
      if (count === 0) {
        throw new ApiError('CONFLICT', `delivery ${deliveryId} is ${current.status.toLowerCase()} and already scheduled`, {
          status: current.status.toLowerCase(),
        });
      }
      await audit(tx, ctx, { action: 'webhook.redeliver', resourceType: 'webhook_delivery', resourceId: deliveryId, details: { endpointId } });
      return tx.webhookDelivery.findUniqueOrThrow({ where: { id: deliveryId }, include: { event: { select: { type: true } } } });
    });
    await this.queue.enqueueRedelivery({ tenantId: ctx.tenantId, deliveryId }, row.attempts);
    return toDeliveryResponse(row);
  }

  private async load(tx: TransactionClient, id: string) {
    const row = await tx.webhookEndpoint.findUnique({ where: { id } });
    if (!row) throw notFound('webhook endpoint', id);
    return row;
  }
}

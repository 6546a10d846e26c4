import { Inject, Injectable } from '@nestjs/common';

import type { Database } from '@payorch/db';
import { notFound, type TenantContext } from '@payorch/domain';

import { audit } from '../common/audit';
import { KEYSET_ORDER, keysetPage, type Page, type PaginationQuery } from '../common/pagination';
import { mapPrismaError } from '../common/prisma-errors';
import { DATABASE } from '../common/tokens';
import { type CreateStoreDto, type StoreResponse, toStoreResponse, type UpdateStoreDto } from './dto/store.dto';

@Injectable()
export class StoresService {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  create(ctx: TenantContext, dto: CreateStoreDto): Promise<StoreResponse> {
    return this.db
      .withTenant(ctx, async (tx) => {
        const row = await tx.store.create({ data: { ...dto, tenantId: ctx.tenantId } });
        await audit(tx, ctx, { action: 'store.create', resourceType: 'store', resourceId: row.id });
        return toStoreResponse(row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'store' }));
  }

  list(ctx: TenantContext, query: PaginationQuery): Promise<Page<StoreResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const load = (ids: string[]) => tx.store.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      return keysetPage(tx, 'Store', {}, query, load, toStoreResponse);
    });
  }

  get(ctx: TenantContext, id: string): Promise<StoreResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      const row = await tx.store.findUnique({ where: { id } });
      if (!row) throw notFound('store', id);
      return toStoreResponse(row);
    });
  }

  update(ctx: TenantContext, id: string, dto: UpdateStoreDto): Promise<StoreResponse> {
    return this.db
      .withTenant(ctx, async (tx) => {
        const row = await tx.store.update({ where: { id }, data: dto });
        await audit(tx, ctx, { action: 'store.update', resourceType: 'store', resourceId: id, details: { fields: Object.keys(dto) } });
        return toStoreResponse(row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'store', id }));
  }

  remove(ctx: TenantContext, id: string): Promise<void> {
    return this.db
      .withTenant(ctx, async (tx) => {
        await tx.store.delete({ where: { id } });
        await audit(tx, ctx, { action: 'store.delete', resourceType: 'store', resourceId: id });
      })
      .catch((e) => mapPrismaError(e, { resource: 'store', id }));
  }
}

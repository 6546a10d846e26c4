import { Inject, Injectable } from '@nestjs/common';

import type { Database } from '@payorch/db';
import { ApiError, notFound, type TenantContext } from '@payorch/domain';

import { audit } from '../common/audit';
import { DestinationGuard } from '../common/destination.guard';
import { KEYSET_ORDER, keysetPage, type Page, type PaginationQuery } from '../common/pagination';
import { mapPrismaError } from '../common/prisma-errors';
import { DATABASE } from '../common/tokens';
import { type CreateEgressRuleDto, type EgressRuleResponse, isValidTarget, toEgressRuleResponse, type UpdateEgressRuleDto } from './dto/egress-rule.dto';

/** The tenant's relay egress allowlist (docs/relay.md). The device connector reads it on every relay open. */
@Injectable()
export class EgressService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    private readonly destinations: DestinationGuard,
  ) {}

  /**
   * A rule wider than the platform policy (a /0, a denied range or host) is refused with EGRESS_DENIED; the policy
   * includes the ranges the operator granted this tenant for its relay (on the rule's port).
   */
  async create(ctx: TenantContext, dto: CreateEgressRuleDto): Promise<EgressRuleResponse> {
    await this.destinations.assertRule(dto, { tenant: ctx });
    return this.db
      .withTenant(ctx, async (tx) => {
        const row = await tx.egressRule.create({
          data: { tenantId: ctx.tenantId, host: dto.host ?? null, cidr: dto.cidr ?? null, port: dto.port, description: dto.description ?? null },
        });
        await audit(tx, ctx, {
          action: 'egress_rule.create',
          resourceType: 'egress_rule',
          resourceId: row.id,
          details: { host: row.host, cidr: row.cidr, port: row.port },
        });
        return toEgressRuleResponse(row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'egress rule' }));
  }

  list(ctx: TenantContext, query: PaginationQuery): Promise<Page<EgressRuleResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const load = (ids: string[]) => tx.egressRule.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      return keysetPage(tx, 'EgressRule', {}, query, load, toEgressRuleResponse);
    });
  }

  get(ctx: TenantContext, id: string): Promise<EgressRuleResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      const row = await tx.egressRule.findUnique({ where: { id } });
      if (!row) throw notFound('egress rule', id);
      return toEgressRuleResponse(row);
    });
  }

  update(ctx: TenantContext, id: string, dto: UpdateEgressRuleDto): Promise<EgressRuleResponse> {
    return this.db
      .withTenant(ctx, async (tx) => {
        const current = await tx.egressRule.findUnique({ where: { id } });
        if (!current) throw notFound('egress rule', id);
        const next = { host: dto.host === undefined ? current.host : dto.host, cidr: dto.cidr === undefined ? current.cidr : dto.cidr };
        if (!isValidTarget(next)) {
          throw new ApiError('VALIDATION_FAILED', 'host: give exactly one of host or cidr', {
            issues: [{ field: 'host', message: 'give exactly one of host or cidr' }],
          });
        }
        await this.destinations.assertRule({ ...next, port: dto.port ?? current.port }, { tenant: ctx, tx });
        const row = await tx.egressRule.update({ where: { id }, data: dto });
        await audit(tx, ctx, {
          action: 'egress_rule.update',
          resourceType: 'egress_rule',
          resourceId: id,
          details: { host: row.host, cidr: row.cidr, port: row.port },
        });
        return toEgressRuleResponse(row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'egress rule', id }));
  }

  remove(ctx: TenantContext, id: string): Promise<void> {
    return this.db
      .withTenant(ctx, async (tx) => {
        await tx.egressRule.delete({ where: { id } });
        await audit(tx, ctx, { action: 'egress_rule.delete', resourceType: 'egress_rule', resourceId: id });
      })
      .catch((e) => mapPrismaError(e, { resource: 'egress rule', id }));
  }
}

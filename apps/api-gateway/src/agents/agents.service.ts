import { Inject, Injectable } from '@nestjs/common';

import { type Database, publishEvent, type TransactionClient } from '@payorch/db';
import { ApiError, issueToken, notFound, type TenantContext, TOKEN_KINDS } from '@payorch/domain';

import { audit } from '../common/audit';
import { KEYSET_ORDER, keysetPage, type Page } from '../common/pagination';
import { mapPrismaError } from '../common/prisma-errors';
import { DATABASE } from '../common/tokens';
import { type AgentResponse, type CreateAgentDto, type EnrollmentResponse, type ListAgentsQuery, toAgentResponse, type UpdateAgentDto } from './dto/agent.dto';

export const ENROLLMENT_TTL_MS = 24 * 60 * 60 * 1000;

@Injectable()
export class AgentsService {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /** Creates an agent and its one-time enrollment token (returned once, stored only as a hash). */
  create(ctx: TenantContext, dto: CreateAgentDto): Promise<EnrollmentResponse> {
    return this.db
      .withTenant(ctx, async (tx) => {
        await this.requireStore(tx, dto.storeId);
        const enrollment = issueToken(TOKEN_KINDS.enrollment);
        const expiresAt = new Date(Date.now() + ENROLLMENT_TTL_MS);
        const row = await tx.agent.create({
          data: {
            tenantId: ctx.tenantId,
            storeId: dto.storeId,
            name: dto.name,
            enrollmentTokenHash: enrollment.hash,
            enrollmentTokenPrefix: enrollment.prefix,
            enrollmentExpiresAt: expiresAt,
          },
        });
        await audit(tx, ctx, { action: 'agent.create', resourceType: 'agent', resourceId: row.id, details: { storeId: dto.storeId } });
        return { agent: toAgentResponse(row), enrollmentToken: enrollment.token, enrollmentExpiresAt: expiresAt.toISOString() };
      })
      .catch((e) => mapPrismaError(e, { resource: 'agent' }));
  }

  list(ctx: TenantContext, query: ListAgentsQuery): Promise<Page<AgentResponse>> {
    return this.db.withTenant(ctx, async (tx) => {
      const load = (ids: string[]) => tx.agent.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      return keysetPage(tx, 'Agent', { storeId: query.storeId }, query, load, toAgentResponse);
    });
  }

  get(ctx: TenantContext, id: string): Promise<AgentResponse> {
    return this.db.withTenant(ctx, async (tx) => toAgentResponse(await this.requireAgent(tx, id)));
  }

  update(ctx: TenantContext, id: string, dto: UpdateAgentDto): Promise<AgentResponse> {
    return this.db
      .withTenant(ctx, async (tx) => {
        const current = await this.requireAgent(tx, id);
        if (dto.storeId && dto.storeId !== current.storeId) {
          await this.requireStore(tx, dto.storeId);
          await this.requireNoTerminalLeftBehind(tx, id, dto.storeId);
        }
        const row = await tx.agent.update({ where: { id }, data: dto });
        await audit(tx, ctx, { action: 'agent.update', resourceType: 'agent', resourceId: id, details: { fields: Object.keys(dto) } });
        return toAgentResponse(row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'agent', id }));
  }

  /** A new enrollment token (the old one dies). An enrolled agent keeps working until it re-enrolls. */
  rotateEnrollment(ctx: TenantContext, id: string): Promise<EnrollmentResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      const agent = await this.requireAgent(tx, id);
      if (agent.status === 'REVOKED') throw new ApiError('CONFLICT', `agent ${id} is revoked; create a new agent`);
      const enrollment = issueToken(TOKEN_KINDS.enrollment);
      const expiresAt = new Date(Date.now() + ENROLLMENT_TTL_MS);
      const row = await tx.agent.update({
        where: { id },
        data: { enrollmentTokenHash: enrollment.hash, enrollmentTokenPrefix: enrollment.prefix, enrollmentExpiresAt: expiresAt },
      });
      await audit(tx, ctx, { action: 'agent.enrollment_token.rotate', resourceType: 'agent', resourceId: id });
      return { agent: toAgentResponse(row), enrollmentToken: enrollment.token, enrollmentExpiresAt: expiresAt.toISOString() };
    });
  }

  /**
   * Revokes the agent: its credential and any enrollment token stop working at once. The committed
   * `agent.revoked` event makes the connector holding its tunnel close it (AGENT_REVOKED, docs/tunnel.md).
   */
  revoke(ctx: TenantContext, id: string): Promise<AgentResponse> {
    return this.db.withTenant(ctx, async (tx) => {
      await this.requireAgent(tx, id);
      const row = await tx.agent.update({
        where: { id },
        data: {
          status: 'REVOKED',
          credentialHash: null,
          credentialPrefix: null,
          enrollmentTokenHash: null,
          enrollmentTokenPrefix: null,
          enrollmentExpiresAt: null,
        },
      });
      await audit(tx, ctx, { action: 'agent.revoke', resourceType: 'agent', resourceId: id });
      await publishEvent(tx, ctx.tenantId, { type: 'agent.revoked', subjectType: 'agent', subjectId: id, data: { agentId: id } });
      return toAgentResponse(row);
    });
  }

  remove(ctx: TenantContext, id: string): Promise<void> {
    return this.db
      .withTenant(ctx, async (tx) => {
        await this.requireAgent(tx, id);
        await tx.agent.delete({ where: { id } });
        await audit(tx, ctx, { action: 'agent.delete', resourceType: 'agent', resourceId: id });
        await publishEvent(tx, ctx.tenantId, { type: 'agent.deleted', subjectType: 'agent', subjectId: id, data: { agentId: id } });
      })
      .catch((e) => mapPrismaError(e, { resource: 'agent', id }));
  }

  private async requireAgent(tx: TransactionClient, id: string) {
    const row = await tx.agent.findUnique({ where: { id } });
    if (!row) throw notFound('agent', id);
    return row;
  }

  /**
   * An agent bridges terminals of its own store only (terminals.service checkPlacement): moving it to another store while
   * it bridges terminals of the old one would leave them behind. The agent's row is locked first (FOR UPDATE), so a
   * terminal placed on it meanwhile (its check reads the agent FOR SHARE) is either counted here or checked against the
   * new store.
   */
  private async requireNoTerminalLeftBehind(tx: TransactionClient, agentId: string, storeId: string): Promise<void> {
    await tx.$queryRaw`SELECT 1 FROM "Agent" WHERE "id" = ${agentId}::uuid FOR UPDATE`;
    const behind = await tx.terminal.findMany({ where: { agentId, storeId: { not: storeId } }, select: { id: true }, orderBy: { id: 'asc' }, take: 20 });
    if (behind.length === 0) return;
    throw new ApiError('UNPROCESSABLE', `storeId: agent ${agentId} bridges terminals of its current store; move them (or detach them, agentId null) first`, {
      issues: [{ field: 'storeId', message: 'the agent still bridges terminals of its current store' }],
      terminalIds: behind.map((t) => t.id),
    });
  }

  private async requireStore(tx: TransactionClient, storeId: string): Promise<void> {
    if (!(await tx.store.findUnique({ where: { id: storeId }, select: { id: true } }))) {
      throw new ApiError('UNPROCESSABLE', `storeId: store ${storeId} was not found`, {
        issues: [{ field: 'storeId', message: 'store not found' }],
      });
    }
  }
}

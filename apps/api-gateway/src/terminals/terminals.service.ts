import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';

import { type Database, publishEvent, type TransactionClient } from '@payorch/db';
import { ApiError, notFound, type SecretBox, type TenantContext } from '@payorch/domain';
import { sealTerminalCredentials } from '@payorch/drivers';

import { audit } from '../common/audit';
import { keyset, type Page, toPage } from '../common/pagination';
import { mapPrismaError } from '../common/prisma-errors';
import { DATABASE, SECRET_BOX } from '../common/tokens';
import {
  type CreateTerminalDto,
  defaultDialect,
  type ListTerminalsQuery,
  type TerminalResponse,
  toTerminalResponse,
  type UpdateTerminalDto,
} from './dto/terminal.dto';

const unprocessable = (field: string, message: string) => new ApiError('UNPROCESSABLE', `${field}: ${message}`, { issues: [{ field, message }] });

@Injectable()
export class TerminalsService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(SECRET_BOX) private readonly secrets: SecretBox,
  ) {}

  create(ctx: TenantContext, dto: CreateTerminalDto): Promise<TerminalResponse> {
    const { credentials, ...fields } = dto;
    const id = randomUUID();
    return this.db
      .withTenant(ctx, async (tx) => {
        await this.checkPlacement(tx, dto.storeId, dto.agentId ?? null);
        const row = await tx.terminal.create({
          data: {
            ...fields,
            id,
            tenantId: ctx.tenantId,
            dialect: dto.dialect ?? defaultDialect(dto.protocol),
            credentialsEncrypted: credentials ? sealTerminalCredentials(this.secrets, ctx.tenantId, id, credentials) : null,
          },
        });
        await audit(tx, ctx, {
          action: 'terminal.create',
          resourceType: 'terminal',
          resourceId: id,
          details: { storeId: dto.storeId, protocol: dto.protocol, credentials: credentials ? Object.keys(credentials) : [] },
        });
        await publishEvent(tx, ctx.tenantId, {
          type: 'terminal.created',
          subjectType: 'terminal',
          subjectId: id,
          data: { terminalId: id, agentId: row.agentId },
        });
        return toTerminalResponse(row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'terminal' }));
  }

  list(ctx: TenantContext, query: ListTerminalsQuery): Promise<Page<TerminalResponse>> {
    const { agentId, protocol, status, storeId } = query;
    return this.db.withTenant(ctx, async (tx) => {
      const { where, ...page } = keyset(query);
      const filters = { ...(agentId && { agentId }), ...(protocol && { protocol }), ...(status && { status }), ...(storeId && { storeId }) };
      const rows = await tx.terminal.findMany({ where: { ...where, ...filters }, ...page });
      return toPage(rows, query, toTerminalResponse);
    });
  }

  get(ctx: TenantContext, id: string): Promise<TerminalResponse> {
    return this.db.withTenant(ctx, async (tx) => toTerminalResponse(await this.requireTerminal(tx, id)));
  }

  update(ctx: TenantContext, id: string, dto: UpdateTerminalDto): Promise<TerminalResponse> {
    const { credentials, disabled, ...fields } = dto;
    return this.db
      .withTenant(ctx, async (tx) => {
        const current = await this.requireTerminal(tx, id);
        if (dto.agentId !== undefined) await this.checkPlacement(tx, current.storeId, dto.agentId);
        if (dto.dialect !== undefined && dto.dialect !== null) {
          const allowed = current.protocol === 'JPAY' ? ['aqsi', 'jpay'] : current.protocol === 'SSI_ECR' ? ['android', 'linux'] : [];
          if (!allowed.includes(dto.dialect)) throw unprocessable('dialect', `not a dialect of ${current.protocol}`);
        }
        const row = await tx.terminal.update({
          where: { id },
          data: {
            ...fields,
            ...(disabled !== undefined && { status: disabled ? 'DISABLED' : 'UNKNOWN' }),
            ...(credentials !== undefined && {
              credentialsEncrypted: credentials ? sealTerminalCredentials(this.secrets, ctx.tenantId, id, credentials) : null,
            }),
          },
        });
        await audit(tx, ctx, { action: 'terminal.update', resourceType: 'terminal', resourceId: id, details: { fields: Object.keys(dto) } });
        // The connector holding the old or new agent re-reads the terminal (closes a disabled one's driver, pushes a changed one).
        await publishEvent(tx, ctx.tenantId, {
          type: 'terminal.updated',
          subjectType: 'terminal',
          subjectId: id,
          data: { terminalId: id, agentId: row.agentId, previousAgentId: current.agentId, status: row.status, fields: Object.keys(dto) },
        });
        return toTerminalResponse(row);
      })
      .catch((e) => mapPrismaError(e, { resource: 'terminal', id }));
  }

  remove(ctx: TenantContext, id: string): Promise<void> {
    return this.db
      .withTenant(ctx, async (tx) => {
        const current = await this.requireTerminal(tx, id);
        await tx.terminal.delete({ where: { id } });
        await audit(tx, ctx, { action: 'terminal.delete', resourceType: 'terminal', resourceId: id });
        await publishEvent(tx, ctx.tenantId, {
          type: 'terminal.deleted',
          subjectType: 'terminal',
          subjectId: id,
          data: { terminalId: id, agentId: current.agentId },
        });
      })
      .catch((e) => mapPrismaError(e, { resource: 'terminal', id }));
  }

  private async requireTerminal(tx: TransactionClient, id: string) {
    const row = await tx.terminal.findUnique({ where: { id } });
    if (!row) throw notFound('terminal', id);
    return row;
  }

  /** The store must exist, and the bridging agent must sit in the same store. */
  private async checkPlacement(tx: TransactionClient, storeId: string, agentId: string | null): Promise<void> {
    if (!(await tx.store.findUnique({ where: { id: storeId }, select: { id: true } }))) {
      throw unprocessable('storeId', `store ${storeId} was not found`);
    }
    if (!agentId) return;
    const agent = await tx.agent.findUnique({ where: { id: agentId }, select: { storeId: true } });
    if (!agent) throw unprocessable('agentId', `agent ${agentId} was not found`);
    if (agent.storeId !== storeId) throw unprocessable('agentId', `agent ${agentId} belongs to another store`);
  }
}

import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';

import { labelMap, selectorSql } from '@payorch/campaigns';
import { type Database, publishEvent, type TransactionClient } from '@payorch/db';
import { ApiError, notFound, type SecretBox, type TenantContext } from '@payorch/domain';
import { openTerminalCredentials, sealTerminalCredentials } from '@payorch/drivers';

import { audit } from '../common/audit';
import { KEYSET_ORDER, keysetPage, type Page } from '../common/pagination';
import { mapPrismaError } from '../common/prisma-errors';
import { DATABASE, SECRET_BOX } from '../common/tokens';
import {
  type CreateTerminalDto,
  defaultDialect,
  ENCRYPTION_NEEDS_PASSWORD,
  ENCRYPTION_ONLY_JPAY,
  type ListTerminalsQuery,
  type TerminalResponse,
  terminalStatus,
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
    const { credentials, encryption, ...fields } = dto;
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
            encryptionEnabled: encryption?.enabled ?? false,
            credentialsEncrypted: credentials ? sealTerminalCredentials(this.secrets, ctx.tenantId, id, credentials) : null,
          },
        });
        await audit(tx, ctx, {
          action: 'terminal.create',
          resourceType: 'terminal',
          resourceId: id,
          details: {
            storeId: dto.storeId,
            protocol: dto.protocol,
            credentials: credentials ? Object.keys(credentials) : [],
            encryption: encryption?.enabled ?? false,
          },
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
    // `?label=k:v`: the campaign selector's label rule (terminal or store label, JSONB containment on the GIN indexes).
    const labels = query.label.length ? { in: selectorSql({ labels: labelMap(query.label) }) } : undefined;
    return this.db.withTenant(ctx, async (tx) => {
      const load = (ids: string[]) => tx.terminal.findMany({ where: { id: { in: ids } }, orderBy: KEYSET_ORDER });
      return keysetPage(tx, 'Terminal', { agentId, protocol, status, storeId, 'id:labels': labels }, query, load, toTerminalResponse);
    });
  }

  get(ctx: TenantContext, id: string): Promise<TerminalResponse> {
    return this.db.withTenant(ctx, async (tx) => toTerminalResponse(await this.requireTerminal(tx, id)));
  }

  update(ctx: TenantContext, id: string, dto: UpdateTerminalDto): Promise<TerminalResponse> {
    const { credentials, disabled, encryption, ...fields } = dto;
    return this.db
      .withTenant(ctx, async (tx) => {
        const current = await this.requireTerminal(tx, id);
        if (dto.agentId !== undefined) await this.checkPlacement(tx, current.storeId, dto.agentId);
        if (dto.dialect !== undefined && dto.dialect !== null) {
          const allowed = current.protocol === 'JPAY' ? ['aqsi', 'jpay'] : current.protocol === 'SSI_ECR' ? ['android', 'linux'] : [];
          if (!allowed.includes(dto.dialect)) throw unprocessable('dialect', `not a dialect of ${current.protocol}`);
        }
        if (encryption !== undefined) this.checkEncryption(ctx, current, encryption.enabled, credentials);
        else if (credentials !== undefined && current.encryptionEnabled && !credentials?.adminPassword) {
          throw unprocessable('credentials', `encryption is on: ${ENCRYPTION_NEEDS_PASSWORD}`);
        }
        const row = await tx.terminal.update({
          where: { id },
          data: {
            ...fields,
            ...(disabled !== undefined && { status: disabled ? 'DISABLED' : 'UNKNOWN' }),
            ...(encryption !== undefined && { encryptionEnabled: encryption.enabled }),
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
          data: { terminalId: id, agentId: row.agentId, previousAgentId: current.agentId, status: terminalStatus.toApi(row.status), fields: Object.keys(dto) },
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

  /** Encryption exists in JPAY only, and its secure login needs the admin password (given now, or stored). */
  private checkEncryption(
    ctx: TenantContext,
    current: { id: string; protocol: string; credentialsEncrypted: string | null },
    enabled: boolean,
    credentials: UpdateTerminalDto['credentials'],
  ): void {
    if (current.protocol !== 'JPAY') throw unprocessable('encryption', ENCRYPTION_ONLY_JPAY);
    if (!enabled) return;
    const password =
      credentials !== undefined
        ? credentials?.adminPassword
        : current.credentialsEncrypted
          ? openTerminalCredentials(this.secrets, ctx.tenantId, current.id, current.credentialsEncrypted).adminPassword
          : undefined;
    if (!password) throw unprocessable('encryption', ENCRYPTION_NEEDS_PASSWORD);
  }

  /** The store must exist, and the bridging agent must sit in the same store. */
  private async checkPlacement(tx: TransactionClient, storeId: string, agentId: string | null): Promise<void> {
    if (!(await tx.store.findUnique({ where: { id: storeId }, select: { id: true } }))) {
      throw unprocessable('storeId', `store ${storeId} was not found`);
    }
    if (!agentId) return;
    // FOR SHARE: an agent being moved to another store meanwhile (agents.service, FOR UPDATE) is read as it ends up.
    const [agent] = await tx.$queryRaw<Array<{ storeId: string }>>`SELECT "storeId"::text AS "storeId" FROM "Agent" WHERE "id" = ${agentId}::uuid FOR SHARE`;
    if (!agent) throw unprocessable('agentId', `agent ${agentId} was not found`);
    if (agent.storeId !== storeId) throw unprocessable('agentId', `agent ${agentId} belongs to another store`);
  }
}

import { Inject, Injectable } from '@nestjs/common';

import { type Database, publishEvent } from '@payorch/db';
import type { Logger } from '@payorch/logging';

import { DATABASE, INSTANCE_ID, LOGGER } from '../tokens';

export interface AgentRef {
  agentId: string;
  tenantId: string;
}

/**
 * Agent and terminal presence: Terminal.status ONLINE/OFFLINE + lastSeenAt, Agent.lastSeenAt/version,
 * and the `terminal.*` / `agent.*` events, written in one tenant transaction (transactional outbox).
 * Events are published on transitions only; DISABLED terminals are never touched.
 * Presence is best effort: a failed write is logged, never thrown into the tunnel.
 */
@Injectable()
export class TerminalPresence {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
  ) {}

  agentOnline(agent: AgentRef, version: string | null): Promise<void> {
    return this.safe('agent online', agent, (tx) =>
      tx.agent.update({ where: { id: agent.agentId }, data: { lastSeenAt: new Date(), ...(version && { version }) } }).then(() =>
        publishEvent(tx, agent.tenantId, {
          type: 'agent.online',
          subjectType: 'agent',
          subjectId: agent.agentId,
          data: { agentId: agent.agentId, version, instance: this.instanceId },
        }),
      ),
    );
  }

  /** The tunnel closed: the agent and all its terminals are offline. */
  agentOffline(agent: AgentRef, reason: string): Promise<void> {
    return this.safe('agent offline', agent, async (tx) => {
      await tx.agent.update({ where: { id: agent.agentId }, data: { lastSeenAt: new Date() } });
      await publishEvent(tx, agent.tenantId, {
        type: 'agent.offline',
        subjectType: 'agent',
        subjectId: agent.agentId,
        data: { agentId: agent.agentId, reason },
      });
      const online = await tx.terminal.findMany({ where: { agentId: agent.agentId, status: 'ONLINE' }, select: { id: true } });
      if (online.length === 0) return;
      await tx.terminal.updateMany({ where: { id: { in: online.map((t) => t.id) }, status: 'ONLINE' }, data: { status: 'OFFLINE' } });
      for (const { id } of online) {
        await publishEvent(tx, agent.tenantId, {
          type: 'terminal.offline',
          subjectType: 'terminal',
          subjectId: id,
          data: { terminalId: id, agentId: agent.agentId, reason: 'tunnel closed' },
        });
      }
    });
  }

  /** A link to the terminal opened (ONLINE) or failed (OFFLINE). Only the agent's own terminals are touched. */
  terminal(agent: AgentRef, terminalId: string, online: boolean, detail?: string): Promise<void> {
    return this.safe('terminal presence', agent, async (tx) => {
      const status = online ? 'ONLINE' : 'OFFLINE';
      const now = new Date();
      const changed = await tx.terminal.updateMany({
        where: { id: terminalId, agentId: agent.agentId, status: { notIn: [status, 'DISABLED'] } },
        data: { status, ...(online && { lastSeenAt: now }) },
      });
      if (changed.count === 1) {
        await publishEvent(tx, agent.tenantId, {
          type: online ? 'terminal.online' : 'terminal.offline',
          subjectType: 'terminal',
          subjectId: terminalId,
          data: { terminalId, agentId: agent.agentId, ...(detail && { detail: detail.slice(0, 200) }) },
        });
      } else if (online) {
        await tx.terminal.updateMany({ where: { id: terminalId, agentId: agent.agentId, status: 'ONLINE' }, data: { lastSeenAt: now } });
      }
    });
  }

  terminalInfo(agent: AgentRef, terminalId: string, info: Record<string, unknown>): Promise<void> {
    return this.safe('terminal info', agent, (tx) =>
      tx.terminal.updateMany({ where: { id: terminalId, agentId: agent.agentId }, data: { info: info as never } }),
    );
  }

  private async safe(what: string, agent: AgentRef, fn: Parameters<Database['withTenant']>[1]): Promise<void> {
    try {
      await this.db.withTenant(agent.tenantId, fn);
    } catch (error) {
      this.logger.warn({ agentId: agent.agentId, err: (error as Error).message }, `could not record ${what}`);
    }
  }
}

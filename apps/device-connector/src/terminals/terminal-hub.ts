import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';

import type { Database } from '@payorch/db';
import type { SecretBox } from '@payorch/domain';
import type { DriverConfig, LinkFactory, TerminalDriver } from '@payorch/drivers';
import type { Logger } from '@payorch/logging';
import { nextTerminalCommandId } from '@payorch/operations';
import { type ControlMessage, type TerminalEntry, toDuplex, type TunnelCloseInfo } from '@payorch/tunnel';

import { CommandBusService } from '../bus/command-bus.service';
import { RelayPortFactory } from '../relay/relay-port.factory';
import { DATABASE, DRIVER_FACTORY, LOGGER, SECRET_BOX } from '../tokens';
import { type AgentSession, type AgentSessionListener, AgentTunnelServer } from '../tunnel/agent-tunnel.server';
import { TerminalHandle } from './terminal-handle';
import { linkForConnection, TERMINAL_ROW_SELECT, type TerminalRow, terminalEntry } from './terminal-link';
import { TerminalPresence } from './terminal-presence';

export type DriverFactory = (config: DriverConfig) => TerminalDriver;

/** Binds a terminal's credential ciphertext to its tenant and row (same AAD as the gateway's terminal-credentials.ts). */
const credentialsAad = (tenantId: string, terminalId: string) => `terminal:${tenantId}:${terminalId}:credentials`;

const DRIVER_PROTOCOL = { JOINPROTO: 'JOINPROTO', JPAY: 'JPAY', SSI_ECR: 'SSI_ECR' } as const;

interface Fleet {
  session: AgentSession;
  handles: Map<string, TerminalHandle>;
}

/**
 * The terminals of the agents connected to this instance. On a tunnel's handshake: take the agent's
 * ownership in Redis, record presence, push the `terminal-list`, build one driver and one command
 * queue per terminal, and refresh each terminal's info (which opens its link and so decides
 * ONLINE/OFFLINE). On the tunnel's close: drop the drivers (in-flight commands end `unknown` in the
 * driver), release ownership, and mark the agent's terminals OFFLINE, unless another instance has
 * already taken the agent over.
 */
@Injectable()
export class TerminalHub implements AgentSessionListener, OnApplicationShutdown {
  private readonly fleets = new Map<string, Fleet>();

  constructor(
    private readonly tunnels: AgentTunnelServer,
    private readonly presence: TerminalPresence,
    private readonly bus: CommandBusService,
    private readonly relays: RelayPortFactory,
    @Inject(DATABASE) private readonly db: Database,
    @Inject(SECRET_BOX) private readonly secrets: SecretBox,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(DRIVER_FACTORY) private readonly driverFactory: DriverFactory | null,
  ) {
    tunnels.setListener(this);
    bus.onOwnershipLost((agentId) => {
      const fleet = this.fleets.get(agentId);
      if (fleet) fleet.session.mux.close('agent reconnected to another connector instance');
    });
  }

  /** The handle of a terminal held here, checked against the tenant: another tenant's id is simply absent. */
  find(tenantId: string, terminalId: string): TerminalHandle | undefined {
    for (const fleet of this.fleets.values()) {
      const handle = fleet.handles.get(terminalId);
      if (handle) return handle.tenantId === tenantId && fleet.session.agent.tenantId === tenantId ? handle : undefined;
    }
    return undefined;
  }

  /** Terminal ids held for an agent (tests, health). */
  terminalsOf(agentId: string): string[] {
    return [...(this.fleets.get(agentId)?.handles.keys() ?? [])];
  }

  async onSessionReady(session: AgentSession): Promise<void> {
    const { agent } = session;
    await this.bus.ownership.claim(agent.agentId);
    await this.presence.agentOnline(agent, session.version);
    const rows = (await this.db.withTenant(agent.tenantId, (tx) =>
      tx.terminal.findMany({ where: { agentId: agent.agentId, status: { not: 'DISABLED' } }, select: TERMINAL_ROW_SELECT, orderBy: { createdAt: 'asc' } }),
    )) as TerminalRow[];
    if (session.mux.state !== 'open') return;
    const handles = new Map<string, TerminalHandle>();
    const entries: TerminalEntry[] = [];
    for (const row of rows) {
      const entry = terminalEntry(row);
      if (!entry) {
        this.logger.warn({ terminalId: row.id }, 'terminal connection cannot be carried by the tunnel; skipped');
        continue;
      }
      entries.push(entry);
      handles.set(row.id, this.createHandle(session, row));
    }
    const previous = this.fleets.get(agent.agentId);
    this.fleets.set(agent.agentId, { session, handles });
    if (previous) for (const handle of previous.handles.values()) void handle.close();
    session.mux.sendControl({ type: 'terminal-list', terminals: entries });
    this.logger.info({ agentId: agent.agentId, terminals: entries.length }, 'terminal list sent');
    for (const handle of handles.values()) void this.refreshInfo(handle).catch(() => undefined);
  }

  onSessionControl(session: AgentSession, message: ControlMessage): void {
    const fleet = this.fleets.get(session.agent.agentId);
    if (!fleet || fleet.session !== session) return;
    const report = (terminalId: string, state: 'up' | 'down' | 'error', detail?: string) => {
      if (!fleet.handles.has(terminalId) || state === 'down') return;
      void this.presence.terminal(session.agent, terminalId, state === 'up', detail);
    };
    if (message.type === 'link-status') report(message.terminalId, message.state, message.detail);
    else if (message.type === 'agent-status') for (const link of message.links) report(link.terminalId, link.state, link.detail);
  }

  async onSessionClosed(session: AgentSession, info: TunnelCloseInfo): Promise<void> {
    const { agent } = session;
    const fleet = this.fleets.get(agent.agentId);
    if (fleet?.session === session) {
      this.fleets.delete(agent.agentId);
      await Promise.all([...fleet.handles.values()].map((handle) => handle.close()));
      this.relays.closeAgent(agent.agentId);
    } else if (fleet) {
      return; // replaced by a newer tunnel on this instance
    }
    const newer = this.tunnels.session(agent.agentId);
    if (newer && newer !== session) return; // the agent already reconnected here: its session owns presence
    // Offline first, then release: once the key is gone another instance may mark the terminals online.
    // If another instance already owns the agent, its presence stands and nothing is written here.
    if (await this.bus.ownership.owns(agent.agentId).catch(() => false)) await this.presence.agentOffline(agent, info.code);
    await this.bus.ownership.release(agent.agentId).catch(() => false);
  }

  /**
   * Opens and closes the terminal's link in its queue (the open decides ONLINE/OFFLINE), then asks the
   * driver for the terminal's info (getparameters / GetTerminalInfo / Joinproto identification) and
   * stores it in Terminal.info.
   */
  async refreshInfo(handle: TerminalHandle): Promise<Record<string, unknown> | null> {
    const agent = { agentId: handle.agentId, tenantId: handle.tenantId };
    try {
      await handle.run(async () => {
        const duplex = await handle.link();
        duplex.destroy();
      });
      const driver = handle.driver;
      if (!driver) return null;
      const info = await driver.terminalInfo();
      await this.presence.terminalInfo(agent, handle.row.id, info);
      return info;
    } catch (error) {
      this.logger.info({ terminalId: handle.row.id, err: (error as Error).message }, 'terminal info refresh failed');
      throw error;
    }
  }

  private createHandle(session: AgentSession, row: TerminalRow): TerminalHandle {
    const descriptor = linkForConnection(row.connection);
    const agent = session.agent;
    const link: LinkFactory = async () => {
      try {
        const stream = await session.mux.open(descriptor, { terminalId: row.id });
        void this.presence.terminal(agent, row.id, true);
        return toDuplex(stream);
      } catch (error) {
        if (session.mux.state === 'open') void this.presence.terminal(agent, row.id, false, (error as Error).message);
        throw error;
      }
    };
    return new TerminalHandle(row, agent.agentId, link, this.createDriver(session, row, link));
  }

  private createDriver(session: AgentSession, row: TerminalRow, link: LinkFactory): TerminalDriver | null {
    if (!this.driverFactory) return null;
    try {
      const credentials = row.credentialsEncrypted
        ? (JSON.parse(this.secrets.decrypt(row.credentialsEncrypted, credentialsAad(row.tenantId, row.id))) as Record<string, string>)
        : null;
      const config: DriverConfig = {
        terminalRowId: row.id,
        protocol: DRIVER_PROTOCOL[row.protocol],
        dialect: row.dialect,
        terminalId: row.terminalId,
        merchantId: row.merchantId,
        department: row.department,
        credentials,
        link,
        ...(row.protocol === 'JOINPROTO' && {
          relay: this.relays.forTerminal({ tenantId: row.tenantId, agentId: session.agent.agentId, terminalId: row.id }),
          // DF01 ids from the terminal's persisted counter: unique across restarts and instance moves.
          options: { nextJoinprotoId: () => nextTerminalCommandId(this.db, row.tenantId, row.id) },
        }),
      };
      return this.driverFactory(config);
    } catch (error) {
      this.logger.error({ terminalId: row.id, err: (error as Error).message }, 'could not create the terminal driver');
      return null;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.fleets.values()].flatMap((fleet) => [...fleet.handles.values()].map((handle) => handle.close())));
    this.fleets.clear();
  }
}

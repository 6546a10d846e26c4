import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { EgressPolicy } from '@payorch/egress-guard';
import type { Logger } from '@payorch/logging';

import { CONNECTOR_CONFIG, DATABASE, LOGGER } from '../tokens';
import { EgressRelayPort, type Outcome, type RelayLimits, type RelayOwner } from './egress-relay-port';

/** One EgressRelayPort per terminal driver; all of an agent's relay sessions end with its tunnel (or its revocation). */
@Injectable()
export class RelayPortFactory implements OnApplicationShutdown {
  private readonly byAgent = new Map<string, Set<EgressRelayPort>>();
  private readonly terminalOf = new WeakMap<EgressRelayPort, string>();
  readonly limits: RelayLimits;
  /** The operator's egress policy above every tenant rule (EGRESS_ALLOW_CIDRS); each relay open adds the tenant's relay grants. */
  readonly policy: EgressPolicy;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(CONNECTOR_CONFIG) config: ConnectorConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.policy = EgressPolicy.fromList(config.EGRESS_ALLOW_CIDRS);
    this.limits = {
      connectTimeoutMs: config.RELAY_CONNECT_TIMEOUT_MS,
      maxBytes: config.RELAY_MAX_BYTES,
      maxDurationMs: config.RELAY_MAX_DURATION_MS,
      maxConnectionsPerTerminal: config.RELAY_MAX_CONNECTIONS_PER_TERMINAL,
      receiveTimeoutMs: 30_000,
      maxBufferedBytes: 1024 * 1024,
    };
  }

  forTerminal(owner: RelayOwner): EgressRelayPort {
    const port = new EgressRelayPort(owner, this.db, this.limits, this.logger, this.policy);
    const ports = this.byAgent.get(owner.agentId) ?? new Set();
    ports.add(port);
    this.byAgent.set(owner.agentId, ports);
    this.terminalOf.set(port, owner.terminalId);
    return port;
  }

  /** Ends every relay session of the agent; returns how many were open. */
  closeAgent(agentId: string, outcome: Outcome = 'tunnel_closed'): number {
    const ports = this.byAgent.get(agentId);
    this.byAgent.delete(agentId);
    let open = 0;
    for (const port of ports ?? []) {
      open += port.openConnections;
      void port.closeAll(outcome);
    }
    return open;
  }

  /** Ends the relay sessions of one terminal of the agent (its driver is being closed); returns how many were open. */
  closeTerminal(agentId: string, terminalId: string, outcome: Outcome): number {
    let open = 0;
    for (const port of this.byAgent.get(agentId) ?? []) {
      if (this.terminalOf.get(port) !== terminalId) continue;
      this.byAgent.get(agentId)!.delete(port);
      open += port.openConnections;
      void port.closeAll(outcome);
    }
    return open;
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.byAgent.values()].flatMap((ports) => [...ports].map((port) => port.closeAll('tunnel_closed'))));
    this.byAgent.clear();
  }
}

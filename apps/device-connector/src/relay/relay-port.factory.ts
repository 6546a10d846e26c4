import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import type { Logger } from '@payorch/logging';

import { CONNECTOR_CONFIG, DATABASE, LOGGER } from '../tokens';
import { EgressRelayPort, type RelayLimits, type RelayOwner } from './egress-relay-port';

/** One EgressRelayPort per terminal driver; all of an agent's relay sessions end with its tunnel. */
@Injectable()
export class RelayPortFactory implements OnApplicationShutdown {
  private readonly byAgent = new Map<string, Set<EgressRelayPort>>();
  readonly limits: RelayLimits;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(CONNECTOR_CONFIG) config: ConnectorConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
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
    const port = new EgressRelayPort(owner, this.db, this.limits, this.logger);
    const ports = this.byAgent.get(owner.agentId) ?? new Set();
    ports.add(port);
    this.byAgent.set(owner.agentId, ports);
    return port;
  }

  closeAgent(agentId: string): void {
    const ports = this.byAgent.get(agentId);
    this.byAgent.delete(agentId);
    for (const port of ports ?? []) void port.closeAll('tunnel_closed');
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.byAgent.values()].flatMap((ports) => [...ports].map((port) => port.closeAll('tunnel_closed'))));
    this.byAgent.clear();
  }
}

import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { EgressPolicy } from '@payorch/egress-guard';
import type { Logger, Registry } from '@payorch/logging';
import type { RedisClient } from '@payorch/redis';

import { CONNECTOR_CONFIG, DATABASE, INSTANCE_ID, LOGGER, REDIS, REGISTRY } from '../tokens';
import { DatabaseSlots } from '../tunnel/database-slots';
import { SHARED_LIMIT_TIMEOUT_MS } from '../tunnel/shared-limit';
import { type DatabaseTurn, EgressRelayPort, type Outcome, type RelayLimits, type RelayOwner, writeRefusalSummary } from './egress-relay-port';
import { RelayOpens } from './relay-opens';
import { RelayRefusals } from './relay-refusals';
import { RelaySessionSlots } from './relay-session-slots';

/** How often the budgets of terminals that are full again and have nothing to summarise are forgotten. */
const BUDGETS_SWEEP_MS = 60_000;

/** The relay budgets of one terminal, kept across its drivers. */
interface TerminalBudgets {
  opens: RelayOpens;
  refusals: RelayRefusals;
}

/**
 * One EgressRelayPort per terminal driver; all of an agent's relay sessions end with its tunnel (or its revocation).
 * The budgets of opens and of refused opens are per terminal and kept here, across its drivers: a terminal does not
 * get fresh budgets by making its agent reconnect. Every database read and write of the relay waits for a
 * DatabaseSlots turn. The sessions at once are bounded per tenant over every connector instance (leases in Redis;
 * this instance's own count while Redis does not answer) and in all on this connector (RelaySessionSlots,
 * RELAY_MAX_CONNECTIONS_PER_TENANT and RELAY_MAX_CONNECTIONS), shared by every port.
 */
@Injectable()
export class RelayPortFactory implements OnApplicationShutdown {
  private readonly byAgent = new Map<string, Set<EgressRelayPort>>();
  private readonly terminalOf = new WeakMap<EgressRelayPort, string>();
  /** The budgets of each terminal (`tenantId/terminalId`). */
  private readonly budgets = new Map<string, TerminalBudgets>();
  private readonly sweep: NodeJS.Timeout;
  private readonly overBudget: Counter;
  private readonly unrecorded: Counter;
  private readonly databaseTurn: DatabaseTurn;
  readonly limits: RelayLimits;
  /** The relay sessions at once of each tenant (over every instance) and of this connector (opens under way included). */
  readonly sessions: RelaySessionSlots;
  /** The operator's egress policy above every tenant rule (EGRESS_ALLOW_CIDRS); each relay open adds the tenant's relay grants. */
  readonly policy: EgressPolicy;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(CONNECTOR_CONFIG) config: ConnectorConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(REGISTRY) registry: Registry,
    slots: DatabaseSlots,
    @Inject(REDIS) redis: RedisClient,
    @Inject(INSTANCE_ID) instanceId: string,
  ) {
    this.policy = EgressPolicy.fromList(config.EGRESS_ALLOW_CIDRS);
    this.limits = {
      connectTimeoutMs: config.RELAY_CONNECT_TIMEOUT_MS,
      maxBytes: config.RELAY_MAX_BYTES,
      maxDurationMs: config.RELAY_MAX_DURATION_MS,
      maxConnectionsPerTerminal: config.RELAY_MAX_CONNECTIONS_PER_TERMINAL,
      maxOpensPerMinute: config.RELAY_OPENS_PER_TERMINAL_PER_MINUTE,
      maxRecordedRefusalsPerMinute: config.RELAY_RECORDED_REFUSALS_PER_MINUTE,
      receiveTimeoutMs: 30_000,
      maxBufferedBytes: 1024 * 1024,
    };
    this.databaseTurn = (work) => slots.run(work);
    this.overBudget = new Counter({
      name: 'payorch_connector_relay_opens_over_budget_total',
      help: "Relay opens refused (denied) because their terminal had used its RELAY_OPENS_PER_TERMINAL_PER_MINUTE. Recorded one by one within the terminal's RELAY_RECORDED_REFUSALS_PER_MINUTE, then summarised.",
      registers: [registry],
    });
    this.unrecorded = new Counter({
      name: 'payorch_connector_relay_refusals_unrecorded_total',
      help: "Relay opens refused (denied or connect_failed) and not recorded one by one: over their terminal's RELAY_RECORDED_REFUSALS_PER_MINUTE. Each terminal's are recorded as one summarising RelaySession row (outcome denied) a minute.",
      registers: [registry],
    });
    const refused = new Counter({
      name: 'payorch_connector_relay_sessions_refused_total',
      help: 'Relay opens (91) refused at once for the sessions already held: reason=terminal_limit (RELAY_MAX_CONNECTIONS_PER_TERMINAL), tenant_limit (RELAY_MAX_CONNECTIONS_PER_TENANT, the tenant on every instance; on this instance alone while Redis does not answer), connector_limit (RELAY_MAX_CONNECTIONS, this instance).',
      labelNames: ['reason'],
      registers: [registry],
    });
    const unshared = new Counter({
      name: 'payorch_connector_relay_sessions_unshared_total',
      help: `Relay opens (91) whose tenant cap (RELAY_MAX_CONNECTIONS_PER_TENANT) this instance decided alone, from the tenant's sessions here: Redis was not connected, failed or did not answer within ${SHARED_LIMIT_TIMEOUT_MS} ms.`,
      registers: [registry],
    });
    this.sessions = new RelaySessionSlots(config.RELAY_MAX_CONNECTIONS_PER_TENANT, config.RELAY_MAX_CONNECTIONS, (reason) => refused.inc({ reason }), {
      redis,
      keyPrefix: config.REDIS_KEY_PREFIX,
      instanceId,
      leaseTtlMs: config.CONNECTOR_OWNERSHIP_TTL_MS,
      timeoutMs: SHARED_LIMIT_TIMEOUT_MS,
      onUnshared: (error, first) => {
        unshared.inc();
        if (first)
          this.logger.warn({ err: error.message }, "shared relay session leases unavailable (Redis): this instance counts the tenants' relay sessions alone");
      },
    });
    const sessions = this.sessions;
    new Gauge({
      name: 'payorch_connector_relay_sessions',
      help: 'Relay sessions held on this instance, all tenants: opens under way and sessions holding a socket or bytes the terminal has not read (bounded by RELAY_MAX_CONNECTIONS).',
      registers: [registry],
      collect() {
        this.set(sessions.held);
      },
    });
    this.sweep = setInterval(() => this.forgetIdleBudgets(), BUDGETS_SWEEP_MS);
    this.sweep.unref();
  }

  forTerminal(owner: RelayOwner): EgressRelayPort {
    const port = new EgressRelayPort(owner, this.db, this.limits, this.logger, this.policy, undefined, undefined, {
      databaseTurn: this.databaseTurn,
      sessions: this.sessions,
      ...this.budgetsOf(owner),
    });
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
    clearInterval(this.sweep);
    await Promise.all([...this.byAgent.values()].flatMap((ports) => [...ports].map((port) => port.closeAll('tunnel_closed'))));
    this.byAgent.clear();
    // The summaries of terminals whose ports are gone already.
    await Promise.all([...this.budgets.values()].map(({ refusals }) => refusals.flush()));
    this.budgets.clear();
    // Every session closed: this instance's leases leave Redis now rather than after their TTL.
    await this.sessions.close();
  }

  private budgetsOf(owner: RelayOwner): TerminalBudgets {
    const key = `${owner.tenantId}/${owner.terminalId}`;
    let budgets = this.budgets.get(key);
    if (!budgets) {
      budgets = {
        opens: new RelayOpens(this.limits.maxOpensPerMinute ?? Infinity, { onOverBudget: () => this.overBudget.inc() }),
        refusals: new RelayRefusals(
          this.limits.maxRecordedRefusalsPerMinute ?? Infinity,
          (summary) => writeRefusalSummary(owner, this.db, this.databaseTurn, this.logger, summary),
          { onUnrecorded: () => this.unrecorded.inc() },
        ),
      };
      this.budgets.set(key, budgets);
    }
    return budgets;
  }

  /** Budgets that are full again and have nothing to summarise read the same as new ones. */
  private forgetIdleBudgets(): void {
    for (const [key, { opens, refusals }] of this.budgets) if (opens.idle && refusals.idle) this.budgets.delete(key);
  }
}

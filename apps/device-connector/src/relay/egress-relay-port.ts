import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import { type Database, publishEvent } from '@payorch/db';
import {
  type EgressError,
  type EgressPolicy,
  formatAddress,
  type IpAddress,
  parseAddressLiteral,
  type Resolver,
  resolveDestination,
  systemResolver,
} from '@payorch/egress-guard';
import {
  connectRelaySocket,
  RelayConnection,
  type RelayConnectionLimits,
  RelayConnections,
  RelayError,
  type RelayPort,
  type RelayStop,
  type RelayTarget,
} from '@payorch/joinproto';
import type { Logger } from '@payorch/logging';

import { checkEgress, type EgressDecision, precheckEgress } from './egress-policy';

export interface RelayLimits extends RelayConnectionLimits {
  connectTimeoutMs: number;
  /** Bytes per session in each direction. */
  maxBytes: number;
  maxDurationMs: number;
  maxConnectionsPerTerminal: number;
}

export interface RelayOwner {
  tenantId: string;
  agentId: string;
  terminalId: string;
}

/**
 * The one clock of a RelaySession row: `startedAt` is the connector's wall clock when the terminal's 91
 * arrived, `endedAt` is `startedAt` plus the monotonic time elapsed since. Both ends come from the same
 * clock, so `endedAt ≥ startedAt` always (a database `now()` for the start and the connector's clock for
 * the end disagreed: different clocks, and the column's millisecond rounding put the end before the start).
 */
export class RelaySessionClock {
  readonly startedAt: Date;
  private readonly started: number;

  constructor(
    now: () => number = Date.now,
    private readonly monotonic: () => number = () => performance.now(),
  ) {
    this.startedAt = new Date(now());
    this.started = this.monotonic();
  }

  /** Whole milliseconds (the column's precision), never before `startedAt`. */
  endedAt(): Date {
    return new Date(this.startedAt.getTime() + Math.max(0, Math.ceil(this.monotonic() - this.started)));
  }
}

/** How a RelaySession ended (docs/relay.md, "Audit"); `revoked`: the agent's credential or the terminal was withdrawn. */
export type Outcome = RelayStop | 'closed' | 'tunnel_closed' | 'revoked';

/**
 * The Joinproto relay (91–94) of one terminal, opened from the cloud (this connector), never from the
 * shop: the terminal asks for `host:port`; no DNS lookup happens unless a tenant rule could allow the
 * name; the name is resolved exactly once, every address is checked against the platform egress
 * policy (which the tenant cannot widen) and then the tenant's EgressRules, and the socket connects
 * to the checked address (no rebinding); operator-allowed internal addresses need an explicit rule, and every session is bounded (bytes each way, lifetime, sessions per terminal) and recorded
 * in RelaySession (denials too, with a `relay.denied` event). docs/relay.md.
 */
export class EgressRelayPort implements RelayPort {
  private readonly connections = new RelayConnections();
  /** The RelaySession row of each open connection (null when it could not be written). */
  private readonly rows = new Map<string, { id: string | null; clock: RelaySessionClock }>();
  /** Set by closeAll: how a session that finishes opening afterwards ends. */
  private closedAs: Outcome | undefined;

  constructor(
    private readonly owner: RelayOwner,
    private readonly db: Database,
    private readonly limits: RelayLimits,
    private readonly logger: Logger,
    /** EGRESS_ALLOW_CIDRS; each open adds the ranges the operator granted this tenant for the relay (EgressGrant). */
    private readonly policy: EgressPolicy,
    private readonly resolve: Resolver = systemResolver,
    private readonly clock: () => RelaySessionClock = () => new RelaySessionClock(),
  ) {}

  get openConnections(): number {
    return this.connections.size;
  }

  async open(target: RelayTarget): Promise<string> {
    if (this.closedAs) throw new RelayError('UNAVAILABLE', 'relay closed');
    const clock = this.clock();
    if (this.connections.size >= this.limits.maxConnectionsPerTerminal) {
      await this.record(clock, target, null, 'denied', `more than ${this.limits.maxConnectionsPerTerminal} relay sessions at once`);
      throw new RelayError('DENIED', 'too many relay connections');
    }
    // The tenant's rules and the ranges the operator granted it for the relay (both under RLS), read together.
    const { rules, grants } = await this.db.withTenant(this.owner.tenantId, async (tx) => ({
      rules: await tx.egressRule.findMany({ select: { cidr: true, host: true, port: true } }),
      grants: await tx.egressGrant.findMany({ where: { channel: 'RELAY' }, select: { cidr: true, port: true } }),
    }));
    const policy = this.policy.withGrants(grants);
    // No rule could allow this name: refused before the platform resolves anything.
    const precheck = precheckEgress(rules, target.host, target.port);
    if (!precheck.allowed) return this.deny(clock, target, null, precheck.reason);
    let addresses: IpAddress[];
    try {
      // Resolved exactly once; every address checked against the platform policy.
      addresses = await resolveDestination(target.host, policy, {
        resolver: this.resolve,
        timeoutMs: this.limits.connectTimeoutMs,
        owner: this.owner.tenantId,
        port: target.port,
      });
    } catch (error) {
      const egress = error as EgressError;
      return this.deny(clock, target, egress.details.address ?? null, egress.message, { resolved: true });
    }
    let decision: EgressDecision = { allowed: false, reason: `${target.host}:${target.port} matches no egress rule` };
    let address = formatAddress(addresses[0]!);
    for (const candidate of addresses) {
      decision = checkEgress(policy, rules, target.host, target.port, formatAddress(candidate));
      address = formatAddress(candidate);
      if (decision.allowed) break;
    }
    if (!decision.allowed) return this.deny(clock, target, address, decision.reason, { resolved: true });
    let socket: Socket;
    try {
      // The checked address itself: no second lookup.
      socket = await connectRelaySocket(address, target.port, this.limits.connectTimeoutMs);
    } catch (error) {
      const relayError = error as RelayError;
      await this.record(clock, target, address, 'connect_failed', relayError.code);
      throw relayError;
    }
    if (this.closedAs) {
      socket.destroy();
      throw new RelayError('UNAVAILABLE', 'relay closed');
    }
    // Watched (bytes, limits, errors, the host's close) from now on, while the session is recorded.
    const connection = new RelayConnection(socket, this.limits);
    // Recorded before the id is handed out, so the audit trail's order is the order of opens.
    const row = await this.record(clock, target, address, 'open', null);
    const id = this.connections.add(connection);
    this.rows.set(id, { id: row, clock });
    if (this.closedAs) {
      await this.finish(id, this.closedAs);
      throw new RelayError('UNAVAILABLE', 'relay closed');
    }
    return id;
  }

  /**
   * Refuses the relay: recorded (RelaySession, `relay.denied`), logged with every detail for the operator, and refused
   * on the wire. What the tenant sees (the row, the event, the API) never says what the platform's DNS answered for a
   * name, nor whether it answered (`resolved`): a name that does not resolve, one that resolves to an address the
   * platform policy denies and one whose address no rule allows read alike, with no address. Before, the row carried
   * the internal address and the resolver's text: a rule for any CIDR on a port let a tenant map the cluster's internal
   * DNS (`postgres.….svc.cluster.local` → 10.x). A literal address is the tenant's own spelling: its reason stays.
   */
  private async deny(
    clock: RelaySessionClock,
    target: RelayTarget,
    address: string | null,
    reason: string,
    options: { resolved?: boolean } = {},
  ): Promise<never> {
    const byName = options.resolved === true && parseAddressLiteral(target.host) === null;
    const shown = byName ? `${target.host}:${target.port} does not resolve to an address the egress rules and the platform policy allow` : reason;
    await this.record(clock, target, byName ? null : address, 'denied', shown);
    this.logger.warn({ terminalId: this.owner.terminalId, host: target.host, port: target.port, address, reason }, 'relay denied');
    throw new RelayError('DENIED', shown);
  }

  async send(connectionId: string, data: Uint8Array): Promise<number> {
    return this.connections.get(connectionId).send(data);
  }

  async receive(connectionId: string, maxBytes: number): Promise<Uint8Array> {
    return this.connections.get(connectionId).receive(maxBytes);
  }

  async close(connectionId: string): Promise<void> {
    await this.finish(connectionId, 'closed');
  }

  /** Ends every session (driver closed, tunnel closed, shutdown). */
  async closeAll(outcome: Outcome = 'closed'): Promise<void> {
    this.closedAs ??= outcome;
    await Promise.all(this.connections.ids().map((id) => this.finish(id, outcome)));
  }

  private async finish(id: string, outcome: Outcome): Promise<void> {
    const connection = this.connections.remove(id);
    if (!connection) return;
    const row = this.rows.get(id);
    this.rows.delete(id);
    const rowId = row?.id;
    if (!row || !rowId) return;
    const finalOutcome = connection.outcome && connection.outcome !== 'peer_closed' ? connection.outcome : outcome;
    await this.db
      .withTenant(this.owner.tenantId, (tx) =>
        tx.relaySession.update({
          where: { id: rowId },
          data: {
            bytesFromHost: BigInt(connection.bytesFromHost),
            bytesToHost: BigInt(connection.bytesToHost),
            endedAt: row.clock.endedAt(),
            outcome: finalOutcome,
            reason: connection.reason ?? null,
          },
        }),
      )
      .catch((error: Error) => this.logger.warn({ err: error.message }, 'could not finish the relay session record'));
  }

  /** Writes a RelaySession row (and `relay.denied` for a denial); returns its id, null when the write failed. */
  private async record(clock: RelaySessionClock, target: RelayTarget, address: string | null, outcome: string, reason: string | null): Promise<string | null> {
    const terminal = this.owner;
    try {
      return await this.db.withTenant(terminal.tenantId, async (tx) => {
        const ended = outcome !== 'open';
        const row = await tx.relaySession.create({
          data: {
            tenantId: terminal.tenantId,
            terminalId: terminal.terminalId,
            host: target.host,
            port: target.port,
            resolvedAddress: address,
            outcome,
            reason: reason?.slice(0, 500) ?? null,
            startedAt: clock.startedAt,
            ...(ended && { endedAt: clock.endedAt() }),
          },
        });
        if (outcome === 'denied') {
          await publishEvent(tx, terminal.tenantId, {
            type: 'relay.denied',
            subjectType: 'relay',
            subjectId: row.id,
            data: { relaySessionId: row.id, terminalId: terminal.terminalId, host: target.host, port: target.port, resolvedAddress: address, reason },
          });
        }
        return row.id;
      });
    } catch (error) {
      this.logger.error({ err: (error as Error).message, terminalId: terminal.terminalId }, 'could not record the relay session');
      return null;
    }
  }
}

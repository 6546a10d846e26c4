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
import { RelayOpens } from './relay-opens';
import { type RefusalSummary, type RefusedOpen, RelayRefusals } from './relay-refusals';
import { RelaySessionSlots } from './relay-session-slots';

export interface RelayLimits extends RelayConnectionLimits {
  connectTimeoutMs: number;
  /** Bytes per session in each direction. */
  maxBytes: number;
  maxDurationMs: number;
  /** Sessions of one terminal at once, those still opening (egress checks, DNS, connect) included. */
  maxConnectionsPerTerminal: number;
  /**
   * Opens (91s) of one terminal a minute (RelayOpens), when the port builds its own budget; RelayPortFactory shares
   * one per terminal instead. Default: no bound.
   */
  maxOpensPerMinute?: number;
  /**
   * Refused opens (denied, connect_failed) of one terminal recorded one by one per minute (RelayRefusals), when the
   * port builds its own budget; RelayPortFactory shares one per terminal instead. Default: no bound.
   */
  maxRecordedRefusalsPerMinute?: number;
}

/** Runs one piece of database work in its turn (the connector's DatabaseSlots); default: at once. */
export type DatabaseTurn = <T>(work: () => Promise<T>) => Promise<T>;

export interface EgressRelayPortOptions {
  /** The connector's DatabaseSlots: every read and write of the relay queues there instead of taking a pool connection. */
  databaseTurn?: DatabaseTurn;
  /** The terminal's budget of opens, shared by its ports (RelayPortFactory); default: one of this port's own. */
  opens?: RelayOpens;
  /** The terminal's budget of refused opens, shared by its ports (RelayPortFactory); default: one of this port's own. */
  refusals?: RelayRefusals;
  /**
   * The sessions per tenant (over every connector instance) and in all on this connector (RELAY_MAX_CONNECTIONS_PER_TENANT,
   * RELAY_MAX_CONNECTIONS), shared by every port (RelayPortFactory); default: no bound beyond the terminal's.
   */
  sessions?: RelaySessionSlots;
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
 * to the checked address (no rebinding); operator-allowed internal addresses need an explicit rule, and every session is bounded (bytes each way, lifetime, sessions per terminal, per tenant over every connector instance and per connector) and recorded
 * in RelaySession (denials too, with a `relay.denied` event). docs/relay.md.
 *
 * What a hostile terminal (or the agent feeding it bytes) can make it do is bounded too: opens under way count
 * against `maxConnectionsPerTerminal` from their first step (`opening`); the opens of a minute are budgeted per
 * terminal (RelayOpens), so an open-close loop to an allowed host is bounded in time too; refused opens are recorded
 * one by one only within the terminal's budget (RelayRefusals), past it refused at once without database work and
 * summarised; and every read and write waits for its turn (`databaseTurn`: the connector's DatabaseSlots) instead of
 * taking a pool connection of its own.
 */
export class EgressRelayPort implements RelayPort {
  private readonly connections = new RelayConnections();
  /**
   * Opens under way (egress checks, DNS, connect, the `open` row): each holds one of the terminal's
   * `maxConnectionsPerTerminal` places, taken before the first await and given back on every path. Counting only
   * the established connections let concurrent 91s (TillSession serves them concurrently) all pass the check
   * before any of them connected: 20 opens at once with a limit of 2 all opened.
   */
  private opening = 0;
  private readonly databaseTurn: DatabaseTurn;
  private readonly opens: RelayOpens;
  private readonly refusals: RelayRefusals;
  private readonly sessions: RelaySessionSlots;
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
    options: EgressRelayPortOptions = {},
  ) {
    this.databaseTurn = options.databaseTurn ?? ((work) => work());
    this.opens = options.opens ?? new RelayOpens(limits.maxOpensPerMinute ?? Infinity);
    this.sessions = options.sessions ?? new RelaySessionSlots(Infinity, Infinity);
    this.refusals =
      options.refusals ??
      new RelayRefusals(limits.maxRecordedRefusalsPerMinute ?? Infinity, (summary) => writeRefusalSummary(owner, db, this.databaseTurn, logger, summary));
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /** Opens under way (not yet established or refused); tests. */
  get pendingOpens(): number {
    return this.opening;
  }

  async open(target: RelayTarget): Promise<string> {
    if (this.closedAs) throw new RelayError('UNAVAILABLE', 'relay closed');
    const clock = this.clock();
    // Every 91 takes one of the terminal's opens a minute (RelayOpens); past them it is refused as a denial, recorded
    // within the budget of refusals: an open-close loop to an allowed host is bounded in time, not only at once.
    if (!this.opens.take()) {
      await this.refuse(clock, target, null, 'denied', `more than ${this.opens.perMinute} relay opens a minute`);
      throw new RelayError('DENIED', 'too many relay opens');
    }
    // Over its budget of refused opens: refused at once, before any database work, DNS or connect; summarised.
    if (!this.refusals.available) {
      await this.refuse(clock, target, null, 'denied', `more than ${this.refusals.perMinute} refused relay opens a minute: refused without checking`);
      throw new RelayError('DENIED', 'too many refused relay opens');
    }
    // Checked and reserved in one synchronous step, before the first await: concurrent 91s cannot all pass.
    if (this.opening + this.connections.size >= this.limits.maxConnectionsPerTerminal) {
      this.sessions.refusedForTerminal();
      await this.refuse(clock, target, null, 'denied', `more than ${this.limits.maxConnectionsPerTerminal} relay sessions at once`);
      throw new RelayError('DENIED', 'too many relay connections');
    }
    this.opening += 1;
    // The tenant's and the connector's caps: this connector's places taken in the same synchronous step, then the
    // tenant's lease over every connector instance (Redis, bounded wait). A refused 91 takes (and gives back) nothing.
    const slot = await this.sessions.take(this.owner.tenantId);
    if ('refused' in slot) {
      this.opening -= 1;
      const reason =
        slot.refused === 'tenant_limit'
          ? `more than ${slot.limit} relay sessions at once for the tenant`
          : `relay at capacity: more than ${slot.limit} sessions at once on this connector`;
      if (await this.refuse(clock, target, null, 'denied', reason)) {
        this.logger.warn(
          { tenantId: this.owner.tenantId, terminalId: this.owner.terminalId, reason: slot.refused, limit: slot.limit },
          'relay session cap reached: open refused',
        );
      }
      throw new RelayError('DENIED', reason);
    }
    try {
      // Closed while the slot was taken: nothing to open any more.
      if (this.closedAs) throw new RelayError('UNAVAILABLE', 'relay closed');
      // Past here the slot is the connection's: given back when it holds nothing any more (RelayConnection onReleased).
      return await this.connect(clock, target, slot.release);
    } catch (error) {
      // Refused, failed or closed before a connection took the slot (or it was finished already: idempotent).
      slot.release();
      throw error;
    } finally {
      this.opening -= 1;
    }
  }

  /**
   * The checks, the lookup and the connect of one open holding its place (`opening`) and its session slot; `release`
   * goes to the connection, which gives the slot back once it holds no socket and no unread bytes.
   */
  private async connect(clock: RelaySessionClock, target: RelayTarget, release: () => void): Promise<string> {
    // The tenant's rules and the ranges the operator granted it for the relay (both under RLS), read together.
    const { rules, grants } = await this.databaseTurn(() =>
      this.db.withTenant(this.owner.tenantId, async (tx) => ({
        rules: await tx.egressRule.findMany({ select: { cidr: true, host: true, port: true } }),
        grants: await tx.egressGrant.findMany({ where: { channel: 'RELAY' }, select: { cidr: true, port: true } }),
      })),
    );
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
      await this.refuse(clock, target, address, 'connect_failed', relayError.code);
      throw relayError;
    }
    if (this.closedAs) {
      socket.destroy();
      throw new RelayError('UNAVAILABLE', 'relay closed');
    }
    // Watched (bytes, limits, errors, the host's close) from now on, while the session is recorded.
    const connection = new RelayConnection(socket, this.limits, release);
    // Recorded before the id is handed out, so the audit trail's order is the order of opens.
    const row = await this.record(clock, target, address, 'open', null);
    // Added to the established connections in the same step as `opening` is given back (no await in between).
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
    if (await this.refuse(clock, target, byName ? null : address, 'denied', shown)) {
      this.logger.warn({ terminalId: this.owner.terminalId, host: target.host, port: target.port, address, reason }, 'relay denied');
    }
    throw new RelayError('DENIED', shown);
  }

  /**
   * Records a refused open (denied, connect_failed) one by one while the terminal's budget lasts (the token is taken
   * synchronously, before any await); past it the refusal is only counted and summarised (RelayRefusals). Returns
   * whether it was recorded one by one.
   */
  private async refuse(
    clock: RelaySessionClock,
    target: RelayTarget,
    address: string | null,
    outcome: RefusedOpen['outcome'],
    reason: string,
  ): Promise<boolean> {
    if (!this.refusals.take()) {
      this.refusals.unrecorded({ host: target.host, port: target.port, outcome, reason, startedAt: clock.startedAt, endedAt: clock.endedAt() });
      return false;
    }
    await this.record(clock, target, address, outcome, reason);
    return true;
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

  /** Ends every session (driver closed, tunnel closed, shutdown) and writes the summary of unrecorded refusals. */
  async closeAll(outcome: Outcome = 'closed'): Promise<void> {
    this.closedAs ??= outcome;
    await Promise.all([...this.connections.ids().map((id) => this.finish(id, outcome)), this.refusals.flush()]);
  }

  private async finish(id: string, outcome: Outcome): Promise<void> {
    const connection = this.connections.remove(id);
    if (!connection) return;
    const row = this.rows.get(id);
    this.rows.delete(id);
    const rowId = row?.id;
    if (!row || !rowId) return;
    const finalOutcome = connection.outcome && connection.outcome !== 'peer_closed' ? connection.outcome : outcome;
    const endedAt = row.clock.endedAt();
    await this.databaseTurn(() =>
      this.db.withTenant(this.owner.tenantId, (tx) =>
        tx.relaySession.update({
          where: { id: rowId },
          data: {
            bytesFromHost: BigInt(connection.bytesFromHost),
            bytesToHost: BigInt(connection.bytesToHost),
            endedAt,
            outcome: finalOutcome,
            reason: connection.reason ?? null,
          },
        }),
      ),
    ).catch((error: Error) => this.logger.warn({ err: error.message }, 'could not finish the relay session record'));
  }

  /** Writes a RelaySession row (and `relay.denied` for a denial); returns its id, null when the write failed. */
  private async record(clock: RelaySessionClock, target: RelayTarget, address: string | null, outcome: string, reason: string | null): Promise<string | null> {
    // The end of a refusal is when it was refused, not when its row got its turn.
    const endedAt = outcome === 'open' ? undefined : clock.endedAt();
    return writeRelaySession(this.owner, this.db, this.databaseTurn, this.logger, {
      host: target.host,
      port: target.port,
      resolvedAddress: address,
      outcome,
      reason,
      startedAt: clock.startedAt,
      endedAt,
    });
  }
}

interface RelaySessionRow {
  host: string;
  port: number;
  resolvedAddress: string | null;
  outcome: string;
  reason: string | null;
  startedAt: Date;
  endedAt: Date | undefined;
}

/** Writes a RelaySession row (and `relay.denied` for a denial) in its database turn; its id, null when the write failed. */
async function writeRelaySession(owner: RelayOwner, db: Database, databaseTurn: DatabaseTurn, logger: Logger, row: RelaySessionRow): Promise<string | null> {
  try {
    return await databaseTurn(() =>
      db.withTenant(owner.tenantId, async (tx) => {
        const created = await tx.relaySession.create({
          data: {
            tenantId: owner.tenantId,
            terminalId: owner.terminalId,
            host: row.host,
            port: row.port,
            resolvedAddress: row.resolvedAddress,
            outcome: row.outcome,
            reason: row.reason?.slice(0, 500) ?? null,
            startedAt: row.startedAt,
            ...(row.endedAt && { endedAt: row.endedAt }),
          },
        });
        if (row.outcome === 'denied') {
          await publishEvent(tx, owner.tenantId, {
            type: 'relay.denied',
            subjectType: 'relay',
            subjectId: created.id,
            data: {
              relaySessionId: created.id,
              terminalId: owner.terminalId,
              host: row.host,
              port: row.port,
              resolvedAddress: row.resolvedAddress,
              reason: row.reason,
            },
          });
        }
        return created.id;
      }),
    );
  } catch (error) {
    logger.error({ err: (error as Error).message, terminalId: owner.terminalId }, 'could not record the relay session');
    return null;
  }
}

/**
 * The one row (outcome `denied`, and its `relay.denied`) standing for the refusals of a terminal that were over its
 * budget in one window: how many, from the first one's start to the last one's end, and the last one's target and
 * reason (as the tenant may see it: never an address the platform's DNS answered).
 */
export async function writeRefusalSummary(owner: RelayOwner, db: Database, databaseTurn: DatabaseTurn, logger: Logger, summary: RefusalSummary): Promise<void> {
  const { count, last } = summary;
  logger.warn({ terminalId: owner.terminalId, refused: count, host: last.host, port: last.port }, 'relay refusals over the terminal budget, recorded as one');
  await writeRelaySession(owner, db, databaseTurn, logger, {
    host: last.host,
    port: last.port,
    resolvedAddress: null,
    outcome: 'denied',
    reason: `${count} more relay opens refused and not recorded one by one (over the terminal's budget of refusals); the last: ${last.outcome}: ${last.reason}`,
    startedAt: summary.startedAt,
    endedAt: summary.endedAt,
  });
}

import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Counter } from 'prom-client';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { KeyedSerialQueue, type SecretBox } from '@payorch/domain';
import { type DriverConfig, type LinkFactory, openTerminalCredentials, type TerminalDriver } from '@payorch/drivers';
import type { Logger, Registry } from '@payorch/logging';
import { terminalCommandIds } from '@payorch/operations';
import { type ControlMessage, type TerminalEntry, toDuplex, type TunnelCloseInfo } from '@payorch/tunnel';

import { type AgentAccessRow, planTerminals, revocationReason, type RevocationReason } from '../access/access-check';
import { readAgentsNow } from '../access/access-read';
import { CommandBusService } from '../bus/command-bus.service';
import { RelayPortFactory } from '../relay/relay-port.factory';
import { CONNECTOR_CONFIG, DATABASE, DRIVER_FACTORY, INSTANCE_ID, LOGGER, OPERATION_HANDLER, REGISTRY, SECRET_BOX, TERMINAL_QUEUE } from '../tokens';
import { type AgentSession, type AgentSessionListener, AgentTunnelServer } from '../tunnel/agent-tunnel.server';
import { DatabaseSlots } from '../tunnel/database-slots';
import { type ClaimOutcome, type SessionSetUpInput, SessionSetups, setUpSessions } from './session-setup';
import { TerminalHandle } from './terminal-handle';
import { deviceKey, linkForConnection, type TerminalRow, terminalEntry } from './terminal-link';
import { PresenceWriteError, type SessionRef, TerminalPresence } from './terminal-presence';
import { RECOVERY_RETRY, type RecoveryPassOutcome, type RecoveryPassReport, type RecoveryRetryPolicy, TerminalRecovery } from './terminal-recovery';

export type DriverFactory = (config: DriverConfig) => TerminalDriver;

/** An operation the executor refused (failed `TERMINAL_RECOVERING`, never sent) behind another one of its terminal in doubt. */
export interface RecoveringRefusal {
  tenantId: string;
  terminalId: string;
  operationId: string;
  blocking: { id: string; state: string };
}

/** The part of the OperationCommandHandler (libs/operations) that recovers a terminal coming online here. */
export interface TerminalRecoverer {
  recoverTerminal?(
    ref: { tenantId: string; terminalId: string },
    driver: TerminalDriver,
    notClaimedSince: Date,
    options?: { signal?: AbortSignal },
  ): Promise<RecoveryPassReport>;
  /** Subscribes to the executor's refusals behind an operation in doubt (the hub then recovers that terminal now). */
  onTerminalRecovering?(listener: (refusal: RecoveringRefusal) => void): unknown;
}

const DRIVER_PROTOCOL = { JOINPROTO: 'JOINPROTO', JPAY: 'JPAY', SSI_ECR: 'SSI_ECR' } as const;

interface Fleet {
  session: AgentSession;
  handles: Map<string, TerminalHandle>;
  /** The last `terminal-list` sent, serialised: a reconcile resends the list only when it changed. */
  listed: string;
}

/**
 * The terminals of the agents connected to this instance. On a tunnel's handshake, once the set-up's
 * credential check let it in (nothing before): take the agent's ownership in Redis, record presence,
 * push the `terminal-list`, build one driver per terminal (its
 * commands run in the terminal's queue, TERMINAL_QUEUE), and refresh each terminal's info (which
 * opens its link and so decides ONLINE/OFFLINE). On the tunnel's close: drop the drivers (in-flight
 * commands end `unknown` in the driver), release ownership, and mark the agent's terminals OFFLINE,
 * unless another instance has already taken the agent over.
 *
 * Live revocation (docs/tunnel.md §12.4): `reconcile(agentId)` re-reads the agent and its terminals
 * from PostgreSQL (the truth) and enforces them: a credential that is no longer the agent's active
 * one cuts the tunnel (AGENT_REVOKED) and its relay sessions; a terminal that was disabled, deleted
 * or moved loses its driver and relay sessions; a terminal that was added or changed gets a new
 * driver and the agent a new `terminal-list` (the driver of a withdrawn or changed terminal closes
 * after the command running on it, before the terminal's next command starts: TerminalHandle.retire).
 * The handshake and every reconcile of one agent run one
 * after the other, and the handshake checks the credential again after the tunnel is registered, so
 * a revocation committed at any point after the upgrade's authentication is enforced.
 */
/** Agents re-checked per transaction by `reconcileAll` (one tenant's agents held here, in batches of this many). */
const RECHECK_BATCH = 500;

@Injectable()
export class TerminalHub implements AgentSessionListener, OnApplicationShutdown {
  private readonly fleets = new Map<string, Fleet>();
  /**
   * `find`'s index: per terminal id, the handles the fleets hold of it (two for a while when it moved between agents held
   * here, see `confirmedBy`). Kept in step with the fleets by `holdIn` / `letGo` / `setFleet` / `dropFleet`, the only
   * places a fleet or its handles change.
   */
  private readonly holders = new Map<string, Set<TerminalHandle>>();
  /**
   * Handles retired (terminal rebuilt or withdrawn, TerminalHandle.retire) whose driver has not closed yet, with the
   * tunnel their link runs over: its close, or shutdown, closes them at once.
   */
  private readonly draining = new Map<TerminalHandle, AgentSession>();
  /** Per agent: its handshake and reconciles, one after the other. */
  private readonly chains = new KeyedSerialQueue();
  /** Per terminal handle: the presence write of its last link open (set-up probes await it). */
  private readonly presenceWrites = new WeakMap<TerminalHandle, Promise<void>>();
  /** Per tunnel: the terminals whose link it opened and recorded ONLINE (the agent's `up` reports of them are not written again). */
  private readonly recordedOnline = new WeakMap<AgentSession, Set<string>>();
  /**
   * Per agent: tunnels that ended here while a newer tunnel of the agent was here, before that one's set-up took the
   * agent's presence over: the close of the last tunnel (or that set-up) settles their presence.
   */
  private readonly owedOffline = new Map<string, string[]>();
  /** Per agent: a reconcile queued and not yet started (a later request joins it: it reads fresh state anyway). */
  private readonly queued = new Map<string, Promise<void>>();
  /** Reads of PostgreSQL enforced on tunnels (set-ups, re-checks), numbered in the order they were started. */
  private reads = 0;
  /**
   * Per tunnel: the number of the latest-started read enforced on it. A batched re-check reads outside the agents'
   * chains; what it read is enforced unless a read started after it was enforced on the tunnel meanwhile (that one
   * read at least as late). Counting enforcements instead skipped a re-check that had read a revocation when a set-up
   * whose read had started before it was enforced after it started: the revoked tunnel lived until the next re-check.
   */
  private readonly enforced = new WeakMap<AgentSession, number>();
  /**
   * Per terminal handle: the number of the latest read of PostgreSQL enforced on its fleet that wanted it there. A
   * terminal moved between two agents held here sits in both fleets until the old agent's re-check is enforced (the
   * two run in separate chains; a failed or lost one waits for the next trigger): `find` takes the handle the newest
   * read confirmed, not the first fleet's, which is the old agent's (and its old connection).
   */
  private readonly confirmedBy = new WeakMap<TerminalHandle, number>();
  /** The set-up transactions, one batch per tenant at a time (a storm's set-ups of a tenant share one). */
  private readonly setUps: SessionSetups;
  /** Per terminal handle: the recovery of its operations (on reconnect, its retries, and on a refusal). */
  private readonly recoveries = new WeakMap<TerminalHandle, TerminalRecovery>();
  /** The retries of a recovery on reconnect that failed or left an operation undecided (tests shorten it). */
  recoveryRetry: RecoveryRetryPolicy = RECOVERY_RETRY;
  private readonly recoveryRetries: Counter<'trigger'>;
  private readonly recoveryFailures: Counter<'reason'>;

  constructor(
    private readonly tunnels: AgentTunnelServer,
    private readonly presence: TerminalPresence,
    private readonly bus: CommandBusService,
    private readonly relays: RelayPortFactory,
    private readonly slots: DatabaseSlots,
    @Inject(DATABASE) private readonly db: Database,
    @Inject(SECRET_BOX) private readonly secrets: SecretBox,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(DRIVER_FACTORY) private readonly driverFactory: DriverFactory | null,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    @Inject(OPERATION_HANDLER) private readonly operations: TerminalRecoverer | null,
    /** The terminals' command queue, shared with the OperationCommandHandler (bootstrap). */
    @Inject(TERMINAL_QUEUE) private readonly terminalQueue: KeyedSerialQueue,
    @Inject(CONNECTOR_CONFIG) private readonly config: Pick<ConnectorConfig, 'CONNECTOR_TERMINAL_INFO_MAX_AGE_MS'>,
    @Inject(REGISTRY) registry: Registry,
  ) {
    this.recoveryRetries = new Counter({
      name: 'payorch_connector_reconnect_recovery_retries_total',
      help: 'Recovery passes of a terminal held here run again: after one that failed or left an operation undecided (trigger=backoff), or because an operation was refused behind one in doubt (trigger=refusal).',
      labelNames: ['trigger'],
      registers: [registry],
    });
    this.recoveryFailures = new Counter({
      name: 'payorch_connector_reconnect_recovery_failures_total',
      help: 'Recovery passes of a terminal held here that failed (reason=error: PostgreSQL, a full queue, a driver error) or left an operation unknown (reason=undecided).',
      labelNames: ['reason'],
      registers: [registry],
    });
    operations?.onTerminalRecovering?.((refusal) => this.onRefusal(refusal));
    this.setUps = new SessionSetups(
      (fn) => slots.run(fn),
      (inputs) => setUpSessions(db, inputs, (checked) => this.claim(checked)),
    );
    tunnels.setListener(this);
    bus.onOwnershipLost((agentId) => {
      const fleet = this.fleets.get(agentId);
      if (fleet) fleet.session.mux.close('agent reconnected to another connector instance');
    });
  }

  /**
   * The handle of a terminal held here, checked against the tenant: another tenant's id is simply absent. Held by two
   * agents' fleets at once (moved between agents connected here, the old agent's re-check not enforced yet): the one
   * the newest enforced read of PostgreSQL wanted there (`confirmedBy`).
   */
  find(tenantId: string, terminalId: string): TerminalHandle | undefined {
    let found: TerminalHandle | undefined;
    for (const handle of this.holders.get(terminalId) ?? []) {
      if (handle.tenantId !== tenantId || this.fleets.get(handle.agentId)?.session.agent.tenantId !== tenantId) continue;
      if (!found || (this.confirmedBy.get(handle) ?? 0) > (this.confirmedBy.get(found) ?? 0)) found = handle;
    }
    return found;
  }

  /** Terminal ids held for an agent (tests, health). */
  terminalsOf(agentId: string): string[] {
    return [...(this.fleets.get(agentId)?.handles.keys() ?? [])];
  }

  /** The handles `find` looks at for a terminal id, whatever their tenant (tests: the index holds no stale handle). */
  holdersOf(terminalId: string): TerminalHandle[] {
    return [...(this.holders.get(terminalId) ?? [])];
  }

  /** Handles retired whose driver waits for the command running in the terminal's queue before it closes (tests). */
  get drainingCount(): number {
    return this.draining.size;
  }

  /** Makes `fleet` the agent's (indexing its handles) and returns the one it replaced (its handles no longer indexed). */
  private setFleet(fleet: Fleet): Fleet | undefined {
    const { agentId } = fleet.session.agent;
    const previous = this.dropFleet(agentId);
    this.fleets.set(agentId, fleet);
    for (const handle of fleet.handles.values()) this.index(handle);
    return previous;
  }

  /** Forgets the agent's fleet and un-indexes its handles; returns it. */
  private dropFleet(agentId: string): Fleet | undefined {
    const fleet = this.fleets.get(agentId);
    if (!fleet) return undefined;
    this.fleets.delete(agentId);
    for (const handle of fleet.handles.values()) this.unindex(handle);
    return fleet;
  }

  /** `handle` joins `fleet` (indexed). */
  private holdIn(fleet: Fleet, handle: TerminalHandle): void {
    const held = fleet.handles.get(handle.row.id);
    if (held) this.unindex(held);
    fleet.handles.set(handle.row.id, handle);
    if (this.fleets.get(fleet.session.agent.agentId) === fleet) this.index(handle);
  }

  /** The fleet's handle of `terminalId` leaves it (un-indexed); returns it. */
  private letGo(fleet: Fleet, terminalId: string): TerminalHandle | undefined {
    const handle = fleet.handles.get(terminalId);
    if (!handle) return undefined;
    fleet.handles.delete(terminalId);
    this.unindex(handle);
    return handle;
  }

  private index(handle: TerminalHandle): void {
    const handles = this.holders.get(handle.row.id);
    if (handles) handles.add(handle);
    else this.holders.set(handle.row.id, new Set([handle]));
  }

  private unindex(handle: TerminalHandle): void {
    const handles = this.holders.get(handle.row.id);
    if (!handles?.delete(handle) || handles.size > 0) return;
    this.holders.delete(handle.row.id);
  }

  /**
   * Retires a handle whose tunnel stays up (terminal rebuilt or withdrawn): its driver closes once the command running
   * in the terminal's queue has ended, before the next one starts (TerminalHandle.retire); until then the tunnel's
   * close, or shutdown, closes it at once.
   */
  private retire(session: AgentSession, handle: TerminalHandle): Promise<void> {
    this.draining.set(handle, session);
    return handle.retire().finally(() => this.draining.delete(handle));
  }

  /** Closes at once the retired handles whose link runs over `session` (it is gone: their running command is cut anyway). */
  private closeDraining(session: AgentSession): Promise<void[]> {
    return Promise.all([...this.draining].filter(([, over]) => over === session).map(([handle]) => handle.close()));
  }

  onSessionReady(session: AgentSession): Promise<void> {
    return this.chains.run(session.agent.agentId, () => this.setUp(session));
  }

  /**
   * The handshake's set-up (setUpSessions, batched with every set-up waiting at the same time, whatever its tenant):
   * the credential check, then — only for a tunnel the check let in, still open and still the agent's
   * tunnel here — the ownership claim (`claim`), then the agent's `online` row, its terminals and which of them have
   * non-final operations. Only those are recovered when their link opens: an operation created after this read was
   * dispatched to this instance, which already owned the agent. A refused tunnel is cut having taken nothing: no
   * ownership (so it has none to release: the key may name the instance holding the agent's legitimate tunnel), no
   * presence, no drivers, no `terminal-list`.
   */
  private async setUp(session: AgentSession): Promise<void> {
    const { agent } = session;
    // Before the claim: a PENDING operation created earlier cannot have been dispatched to this session.
    const onlineSince = new Date();
    const readNo = ++this.reads;
    const read = await this.setUps.setUp({
      ...agent,
      credentialPrefix: session.credentialPrefix,
      version: session.version,
      instanceId: this.instanceId,
      sessionId: session.id,
    });
    this.markEnforced(session, readNo);
    if (read.revoked !== null) return this.revoke(session, read.revoked);
    // Closed or replaced before its claim (nothing to do), or the claim failed (refused: SETUP_FAILED).
    if (!read.claimed) {
      if (read.error) throw read.error;
      return;
    }
    // Its set-up took the agent's presence over: no earlier tunnel's offline is owed any more.
    this.owedOffline.delete(agent.agentId);
    if (session.mux.state !== 'open') return;
    const handles = new Map<string, TerminalHandle>();
    const entries: TerminalEntry[] = [];
    for (const row of read.rows) {
      const entry = terminalEntry(row);
      if (!entry) {
        this.logger.warn({ terminalId: row.id }, 'terminal connection cannot be carried by the tunnel; skipped');
        continue;
      }
      entries.push(entry);
      const handle = this.createHandle(session, row, onlineSince);
      this.confirmedBy.set(handle, readNo);
      handles.set(row.id, handle);
    }
    // The agent's previous tunnel here was replaced by this one (closed): its drivers go at once.
    const previous = this.setFleet({ session, handles, listed: JSON.stringify(entries) });
    if (previous) {
      for (const handle of previous.handles.values()) void handle.close();
      void this.closeDraining(previous.session);
    }
    session.mux.sendControl({ type: 'terminal-list', terminals: entries });
    this.logger.info({ agentId: agent.agentId, terminals: entries.length }, 'terminal list sent');
    for (const handle of handles.values()) {
      const unfinished = read.unfinished.has(handle.row.id);
      const onReachable = unfinished ? () => this.recover(handle) : undefined;
      void this.refreshInfo(handle, onReachable, this.infoIsStale(handle.row)).catch((error: Error) => {
        if (unfinished) this.recoveries.get(handle)?.retryLater();
        this.onPresenceError(session, error);
      });
    }
  }

  /**
   * The set-up transaction's claim (setUpSessions), for the set-ups its access check let in: the agent's ownership
   * key is taken for a tunnel that is still open and still the agent's tunnel here ('gone' otherwise: its agent left
   * it, maybe for another instance that holds the key by now). A failed claim is that set-up's alone.
   */
  private claim(inputs: readonly SessionSetUpInput[]): Promise<ClaimOutcome[]> {
    return Promise.all(
      inputs.map(async (input): Promise<ClaimOutcome> => {
        const session = this.tunnels.session(input.agentId);
        if (session?.id !== input.sessionId || session.mux.state !== 'open') return 'gone';
        try {
          await this.bus.ownership.claim(input.agentId);
          return 'claimed';
        } catch (error) {
          return error as Error;
        }
      }),
    );
  }

  onSessionControl(session: AgentSession, message: ControlMessage): void {
    const fleet = this.fleets.get(session.agent.agentId);
    if (!fleet || fleet.session !== session) return;
    const recorded = this.recordedOnline.get(session);
    const report = (terminalId: string, state: 'up' | 'down' | 'error', detail?: string) => {
      if (!fleet.handles.has(terminalId) || state === 'down') return;
      // The agent reports `up` for the link the connector itself just opened and recorded: nothing new to write.
      if (state === 'up' && recorded?.has(terminalId)) return;
      if (state === 'error') recorded?.delete(terminalId);
      // Retried by TerminalPresence; a failure for good is logged and counted there (the tunnel is not cut for a report).
      void this.presence.terminal(presenceOf(session), terminalId, state === 'up', detail).catch(() => undefined);
    };
    if (message.type === 'link-status') report(message.terminalId, message.state, message.detail);
    else if (message.type === 'agent-status') for (const link of message.links) report(link.terminalId, link.state, link.detail);
  }

  onSessionAlive(session: AgentSession): void {
    this.presence
      .agentSeen(session.agent)
      .catch((error: Error) => this.logger.warn({ agentId: session.agent.agentId, err: error.message }, 'could not record agent presence'));
  }

  async onSessionClosed(session: AgentSession, info: TunnelCloseInfo): Promise<void> {
    const { agent } = session;
    // Retired handles still draining over this tunnel: it is gone, and with it their running command's link.
    const draining = this.closeDraining(session);
    const fleet = this.fleets.get(agent.agentId);
    if (fleet?.session === session) {
      this.dropFleet(agent.agentId);
      await Promise.all([...fleet.handles.values()].map((handle) => handle.close()));
      await draining;
      this.relays.closeAgent(agent.agentId);
    } else {
      await draining;
      if (fleet) return; // replaced by a newer tunnel on this instance
    }
    // In the agent's chain, like the set-up of its next tunnel: a reconnect to this instance that claimed the key
    // while this ran would otherwise lose it to the release below (same instance id), and the agent would stay
    // "not connected" for the dispatchers until its next reconnect (bench/faults, link cut under load).
    await this.chains.run(agent.agentId, async () => {
      const newer = this.tunnels.session(agent.agentId);
      if (newer && newer !== session) {
        // The agent already reconnected here: its session takes the presence over in its set-up. Until it has, this
        // one's offline is owed: if the newer tunnel is refused or closes first, its close releases this one's too.
        this.owedOffline.set(agent.agentId, [...(this.owedOffline.get(agent.agentId) ?? []), session.id]);
        return;
      }
      const owed = this.owedOffline.get(agent.agentId) ?? [];
      this.owedOffline.delete(agent.agentId);
      // Offline first, then release: once the key is gone another instance may mark the terminals online. If another
      // tunnel of the agent (here or on another instance) holds its presence by now, PostgreSQL says so
      // (Agent.presenceSession) and nothing is written: not Redis's ownership key, which a lost Redis would empty.
      // The release is compare-and-DEL on this instance's id, so it never removes another instance's key, and this
      // instance needs the key only for a tunnel of the agent registered here: none is left (checked above), so it goes,
      // also when this tunnel was refused by its set-up and never claimed (a tunnel it replaced here may have).
      await this.presence.agentOffline(presenceOf(session), info.code, owed);
      await this.bus.ownership.release(agent.agentId).catch(() => false);
    });
  }

  /**
   * Re-reads the agent's credential and terminals from PostgreSQL and enforces them on its tunnel
   * here (nothing when the agent is not connected here). Called for live events naming the agent,
   * after the Redis subscription (re)connects, and periodically (AccessWatcher).
   */
  reconcile(agentId: string): Promise<void> {
    const waiting = this.queued.get(agentId);
    if (waiting) return waiting;
    const run = this.chains.run(agentId, async () => {
      this.queued.delete(agentId);
      const session = this.tunnels.session(agentId);
      if (session && session.mux.state !== 'closed') await this.enforce(session);
    });
    this.queued.set(agentId, run);
    return run;
  }

  /**
   * `reconcile` for every agent connected here (or only the tenant's): PostgreSQL is the truth after Redis lost messages,
   * and every ACCESS_RECHECK_INTERVAL_MS. Read per tenant, RECHECK_BATCH agents per transaction (one round trip), one
   * batch at a time; each agent's part is then enforced in its chain, unless a read of its tunnel that started after
   * this one (a set-up, another re-check) was enforced meanwhile (that one read at least as late).
   */
  async reconcileAll(tenantId?: string): Promise<void> {
    const byTenant = new Map<string, AgentSession[]>();
    for (const agentId of this.tunnels.connectedAgents) {
      const session = this.tunnels.session(agentId);
      if (!session || session.mux.state === 'closed') continue;
      if (tenantId !== undefined && session.agent.tenantId !== tenantId) continue;
      const sessions = byTenant.get(session.agent.tenantId);
      if (sessions) sessions.push(session);
      else byTenant.set(session.agent.tenantId, [session]);
    }
    for (const [tenant, sessions] of byTenant) {
      for (let i = 0; i < sessions.length; i += RECHECK_BATCH) {
        const batch = sessions.slice(i, i + RECHECK_BATCH);
        await this.recheck(tenant, batch).catch((error: Error) =>
          this.logger.warn({ tenantId: tenant, agents: batch.length, err: error.message }, 'access re-check failed'),
        );
      }
    }
  }

  private async recheck(tenantId: string, sessions: AgentSession[]): Promise<void> {
    const readNo = ++this.reads;
    const now = await this.readNow(
      tenantId,
      sessions.map((session) => session.agent.agentId),
    );
    for (const session of sessions) {
      const { agentId } = session.agent;
      await this.chains
        .run(agentId, async () => {
          // A newer tunnel of the agent had its own set-up; this one was closed, or a read started later was enforced on it.
          if (this.tunnels.session(agentId) !== session || session.mux.state === 'closed' || (this.enforced.get(session) ?? 0) > readNo) return;
          const read = now.get(agentId)!;
          await this.enforceRead(session, readNo, read.access, read.terminals);
        })
        .catch((error: Error) => this.logger.warn({ agentId, err: error.message }, 'access re-check failed'));
    }
  }

  private readNow(tenantId: string, agentIds: string[]) {
    return this.slots.run(() => this.db.withTenantSql(tenantId, (tx) => readAgentsNow(tx, agentIds)));
  }

  private markEnforced(session: AgentSession, readNo: number): void {
    this.enforced.set(session, Math.max(readNo, this.enforced.get(session) ?? 0));
  }

  /** A presence or info write that failed for good refuses the tunnel (SETUP_FAILED): the agent comes back after its backoff and the writes are made again. */
  private onPresenceError(session: AgentSession, error: Error): void {
    if (error instanceof PresenceWriteError) this.tunnels.refuse(session, 'presence', error);
  }

  private async enforce(session: AgentSession): Promise<void> {
    const { agent } = session;
    const readNo = ++this.reads;
    const read = (await this.readNow(agent.tenantId, [agent.agentId])).get(agent.agentId)!;
    await this.enforceRead(session, readNo, read.access, read.terminals);
  }

  /** Enforces what was read of the agent: a credential no longer valid cuts the tunnel, the fleet follows its enabled terminals. */
  private async enforceRead(session: AgentSession, readNo: number, access: AgentAccessRow | null, terminals: TerminalRow[]): Promise<void> {
    this.markEnforced(session, readNo);
    const reason = revocationReason(access, session.credentialPrefix);
    if (reason !== null) return this.revoke(session, reason);
    const fleet = this.fleets.get(session.agent.agentId);
    if (fleet?.session === session && session.mux.state === 'open') await this.applyTerminals(fleet, terminals, readNo);
  }

  /** Cuts the agent's relay sessions and its tunnel (AGENT_REVOKED), then records it (AuditLog). */
  private async revoke(session: AgentSession, reason: RevocationReason): Promise<void> {
    const { agent } = session;
    const fleet = this.fleets.get(agent.agentId);
    const terminals = fleet?.session === session ? [...fleet.handles.keys()] : [];
    const relaySessions = this.relays.closeAgent(agent.agentId, 'revoked');
    if (!this.tunnels.revoke(session, reason)) return;
    this.logger.warn({ agentId: agent.agentId, tenantId: agent.tenantId, reason, relaySessions }, 'agent credential no longer valid: tunnel closed');
    await this.audit(agent.tenantId, 'agent.tunnel_revoked', 'agent', agent.agentId, { reason, terminals, relaySessions });
  }

  /**
   * Makes the fleet match the agent's enabled terminals: withdrawn ones (disabled, deleted, moved)
   * lose their driver and relay sessions (recorded), changed ones are rebuilt, new ones are added,
   * and the agent gets the new `terminal-list` before any new driver opens a link. A withdrawn or
   * rebuilt terminal's handle takes no new command from now on, but its driver closes only once the
   * command running in the terminal's queue has ended, before the next one starts (`retire`): the
   * running payment ends as the terminal answers it, not `unknown`. Its relay sessions end now.
   */
  private async applyTerminals(fleet: Fleet, rows: TerminalRow[], readNo: number): Promise<void> {
    const { session } = fleet;
    const usable = rows.filter((row) => terminalEntry(row) !== null);
    const held = new Map([...fleet.handles].map(([id, handle]) => [id, handle.row]));
    const plan = planTerminals(held, usable);
    const reopened = new Set(plan.open.map((row) => row.id));
    for (const terminalId of plan.close) {
      const handle = this.letGo(fleet, terminalId)!;
      const withdrawn = !reopened.has(terminalId);
      const relaySessions = this.relays.closeTerminal(session.agent.agentId, terminalId, withdrawn ? 'revoked' : 'closed');
      // Not awaited: the agent's chain (its next re-check, a revocation) does not wait for a payment to end.
      void this.retire(session, handle);
      if (withdrawn) {
        this.logger.info(
          { agentId: session.agent.agentId, terminalId, relaySessions },
          'terminal withdrawn from the agent: no new command; its driver closes once the running one ended',
        );
        await this.audit(session.agent.tenantId, 'terminal.driver_closed', 'terminal', terminalId, { agentId: session.agent.agentId, relaySessions });
      }
    }
    const added: TerminalHandle[] = [];
    const addedAt = new Date();
    for (const row of plan.open) {
      const handle = this.createHandle(session, row, addedAt);
      this.holdIn(fleet, handle);
      added.push(handle);
    }
    // Every terminal the fleet holds now is one this read wanted there (the rest were closed above).
    for (const handle of fleet.handles.values()) this.confirmedBy.set(handle, Math.max(readNo, this.confirmedBy.get(handle) ?? 0));
    const entries = usable.filter((row) => fleet.handles.has(row.id)).map((row) => terminalEntry(row)!);
    const listed = JSON.stringify(entries);
    if (listed !== fleet.listed && session.mux.sendControl({ type: 'terminal-list', terminals: entries })) {
      fleet.listed = listed;
      this.logger.info({ agentId: session.agent.agentId, terminals: entries.length }, 'terminal list updated');
    }
    for (const handle of added)
      void this.refreshInfo(handle, () => this.recover(handle), this.infoIsStale(handle.row)).catch((error: Error) => {
        this.recoveries.get(handle)?.retryLater();
        this.onPresenceError(session, error);
      });
  }

  private async audit(tenantId: string, action: string, resourceType: string, resourceId: string, details: Record<string, unknown>): Promise<void> {
    try {
      await this.db.withTenant(tenantId, (tx) =>
        tx.auditLog.create({
          data: {
            tenantId,
            actorType: 'system',
            actorId: this.instanceId,
            action,
            resourceType,
            resourceId,
            details: { ...details, instance: this.instanceId } as never,
          },
        }),
      );
    } catch (error) {
      this.logger.error({ tenantId, action, resourceId, err: (error as Error).message }, 'could not write the audit row');
    }
  }

  /**
   * A set-up reads the terminal's info only when the stored one is older than CONNECTOR_TERMINAL_INFO_MAX_AGE_MS (or was
   * never read): after a connector restart every agent reconnects at once, and interrogating each terminal again
   * (a second link, the protocol's identification exchange, an UPDATE) cost the storm as much as the probe itself.
   */
  private infoIsStale(row: TerminalRow): boolean {
    const maxAge = this.config.CONNECTOR_TERMINAL_INFO_MAX_AGE_MS;
    return maxAge === 0 || row.infoReadAt === null || Date.now() - row.infoReadAt.getTime() >= maxAge;
  }

  /**
   * Opens and closes the terminal's link in its queue (the open decides ONLINE/OFFLINE; `onReachable`
   * runs once it opened), then — unless `readInfo` is false — asks the driver for the terminal's info
   * (getparameters / GetTerminalInfo / Joinproto identification) and stores it in Terminal.info.
   */
  async refreshInfo(handle: TerminalHandle, onReachable?: () => void, readInfo = true): Promise<Record<string, unknown> | null> {
    const agent = { agentId: handle.agentId, tenantId: handle.tenantId };
    try {
      await handle.run(async () => {
        const duplex = await handle.link();
        duplex.destroy();
      });
    } catch (error) {
      // The OFFLINE mark of the failed open must be written too (PresenceWriteError otherwise).
      await this.presenceWrites.get(handle);
      this.logger.info({ terminalId: handle.row.id, err: (error as Error).message }, 'terminal link probe failed');
      throw error;
    }
    await this.presenceWrites.get(handle);
    onReachable?.();
    const driver = handle.driver;
    if (!driver || !readInfo) return null;
    try {
      const info = await handle.run(() => driver.terminalInfo());
      await this.presence.terminalInfo(agent, handle.row.id, info);
      return info;
    } catch (error) {
      this.logger.info({ terminalId: handle.row.id, err: (error as Error).message }, 'terminal info refresh failed');
      throw error;
    }
  }

  /**
   * The terminal is reachable through a new tunnel (agent reconnect, connector restart, terminal moved
   * here): recover its non-final operations now rather than on the next sweep, in its command queue,
   * ahead of any new payment, and again while a pass fails (docs/operations.md, "Recovery when the agent reconnects").
   */
  private recover(handle: TerminalHandle): void {
    this.recoveries.get(handle)?.run('reconnect');
  }

  /**
   * The executor refused an operation of a terminal held here because another one is in doubt: if that one is an
   * orphan this instance now answers for (claimed before the terminal came online here, its executor gone), the
   * terminal's recovery decides it now rather than at its next retry — or, when no retry is due, at the recovery
   * sweep's RECOVERY_STUCK_AFTER_MS. The pass itself tells orphans from operations an executor elsewhere still reports on.
   */
  private onRefusal(refusal: RecoveringRefusal): void {
    const handle = this.find(refusal.tenantId, refusal.terminalId);
    const recovery = handle && this.recoveries.get(handle);
    if (!recovery) return;
    this.logger.info(
      { terminalId: refusal.terminalId, operationId: refusal.operationId, blockingOperationId: refusal.blocking.id, blockingState: refusal.blocking.state },
      'operation refused behind one in doubt: recovering the terminal now',
    );
    recovery.run('refusal');
  }

  /** Logs and counts the end of a recovery pass of a terminal held here. */
  private onRecoveryPass(terminalId: string, outcome: RecoveryPassOutcome): void {
    if (outcome.trigger !== 'reconnect') this.recoveryRetries.inc({ trigger: outcome.trigger === 'retry' ? 'backoff' : 'refusal' });
    const retry = outcome.retryInMs === undefined ? 'the recovery sweep will retry' : `retrying in ${outcome.retryInMs} ms`;
    if (outcome.error) {
      this.recoveryFailures.inc({ reason: 'error' });
      this.logger.warn(
        { terminalId, trigger: outcome.trigger, retryInMs: outcome.retryInMs, err: outcome.error.message },
        `terminal recovery failed; ${retry}`,
      );
      return;
    }
    const { report } = outcome;
    if (report.stillUnknown > 0) {
      this.recoveryFailures.inc({ reason: 'undecided' });
      this.logger.warn(
        { terminalId, trigger: outcome.trigger, retryInMs: outcome.retryInMs, ...report },
        `terminal recovery left operations unknown; ${retry}`,
      );
    } else if (report.neverSent + report.markedUnknown + report.recovered > 0) {
      this.logger.info({ terminalId, trigger: outcome.trigger, ...report }, 'terminal operations recovered');
    }
  }

  /** A handle of the terminal `row` for the tunnel `session`, which holds it since `heldSince` (its recovery's `notClaimedSince`). */
  private createHandle(session: AgentSession, row: TerminalRow, heldSince: Date): TerminalHandle {
    const descriptor = linkForConnection(row.connection);
    const agent = presenceOf(session);
    let online = this.recordedOnline.get(session);
    if (!online) this.recordedOnline.set(session, (online = new Set()));
    // Set-up probes (refreshInfo) await these writes and refuse the tunnel when one failed for good; a
    // link opened later (a command) does not wait: its failure is logged and counted by TerminalPresence.
    const recorded = (written: Promise<void>) => {
      this.presenceWrites.set(handle, written);
      written.catch(() => undefined);
    };
    const link: LinkFactory = async () => {
      try {
        const stream = await session.mux.open(descriptor, { terminalId: row.id });
        online.add(row.id);
        recorded(this.presence.terminal(agent, row.id, true));
        return toDuplex(stream);
      } catch (error) {
        online.delete(row.id);
        if (session.mux.state === 'open') recorded(this.presence.terminal(agent, row.id, false, (error as Error).message));
        throw error;
      }
    };
    const handle = new TerminalHandle(row, agent.agentId, link, this.createDriver(session, row, link), this.terminalQueue);
    const { driver } = handle;
    const recoverTerminal = this.operations?.recoverTerminal?.bind(this.operations);
    if (driver && recoverTerminal) {
      const ref = { tenantId: row.tenantId, terminalId: row.id };
      this.recoveries.set(
        handle,
        new TerminalRecovery({
          pass: (signal) => recoverTerminal(ref, driver, heldSince, { signal }),
          // Its session is open and still the agent's here, and the handle still holds the terminal in it.
          held: () => session.mux.state === 'open' && this.fleets.get(agent.agentId)?.handles.get(row.id) === handle,
          closed: handle.closed,
          policy: () => this.recoveryRetry,
          onPass: (outcome) => this.onRecoveryPass(row.id, outcome),
        }),
      );
    }
    return handle;
  }

  /** The recovery of the terminal as held here now (tests). */
  recoveryOf(tenantId: string, terminalId: string): TerminalRecovery | undefined {
    const handle = this.find(tenantId, terminalId);
    return handle && this.recoveries.get(handle);
  }

  private createDriver(session: AgentSession, row: TerminalRow, link: LinkFactory): TerminalDriver | null {
    if (!this.driverFactory) return null;
    try {
      const credentials = row.credentialsEncrypted ? openTerminalCredentials(this.secrets, row.tenantId, row.id, row.credentialsEncrypted) : null;
      const config: DriverConfig = {
        terminalRowId: row.id,
        device: deviceKey(session.agent.agentId, row),
        protocol: DRIVER_PROTOCOL[row.protocol],
        dialect: row.dialect,
        terminalId: row.terminalId,
        merchantId: row.merchantId,
        department: row.department,
        credentials,
        link,
        ...(row.protocol === 'JPAY' && { encryption: { enabled: row.encryptionEnabled } }),
        ...(row.protocol === 'JOINPROTO' && {
          relay: this.relays.forTerminal({ tenantId: row.tenantId, agentId: session.agent.agentId, terminalId: row.id }),
          // DF01 ids from the terminal's persisted counter, reserved COMMAND_ID_BLOCK at a time per driver: unique
          // across restarts and instance moves, and no transaction of their own before most commands.
          options: { nextJoinprotoId: terminalCommandIds(this.db, row.tenantId, row.id) },
        }),
      };
      return this.driverFactory(config);
    } catch (error) {
      this.logger.error({ terminalId: row.id, err: (error as Error).message }, 'could not create the terminal driver');
      return null;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    const handles = [...this.fleets.values()].flatMap((fleet) => [...fleet.handles.values()]);
    for (const agentId of [...this.fleets.keys()]) this.dropFleet(agentId);
    await Promise.all([...handles, ...this.draining.keys()].map((handle) => handle.close()));
  }
}

/** The agent as this tunnel speaks for it in presence writes (TerminalPresence: they stand while it holds the agent's presence). */
function presenceOf(session: AgentSession): SessionRef {
  return { ...session.agent, session: session.id };
}

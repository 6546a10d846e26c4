import { Socket } from 'node:net';

import { type Database, publishEvent } from '@payorch/db';
import { type EgressError, type EgressPolicy, formatAddress, type IpAddress, type Resolver, resolveDestination, systemResolver } from '@payorch/egress-guard';
import { RelayError, type RelayPort, type RelayTarget } from '@payorch/joinproto';
import type { Logger } from '@payorch/logging';

import { checkEgress, type EgressDecision, precheckEgress } from './egress-policy';

export interface RelayLimits {
  connectTimeoutMs: number;
  /** Bytes per session in each direction. */
  maxBytes: number;
  maxDurationMs: number;
  maxConnectionsPerTerminal: number;
  /** How long a receive waits for the first byte. */
  receiveTimeoutMs: number;
  /** Received bytes held before the socket is paused. */
  maxBufferedBytes: number;
}

export interface RelayOwner {
  tenantId: string;
  agentId: string;
  terminalId: string;
}

/** How a RelaySession ended (docs/relay.md, "Audit"); `revoked`: the agent's credential or the terminal was withdrawn. */
export type Outcome = 'closed' | 'peer_closed' | 'error' | 'limit_bytes' | 'limit_time' | 'tunnel_closed' | 'revoked';

interface Connection {
  readonly socket: Socket;
  readonly sessionRow: Promise<string | null>;
  readonly startedAt: number;
  readonly chunks: Buffer[];
  buffered: number;
  bytesToHost: number;
  bytesFromHost: number;
  ended: boolean;
  error?: RelayError;
  outcome?: Outcome;
  reason?: string;
  wake?: () => void;
  timer: NodeJS.Timeout;
}

/**
 * The Joinproto relay (91–94) of one terminal, opened from the cloud (this connector), never from the
 * shop: the terminal asks for `host:port`; no DNS lookup happens unless a tenant rule could allow the
 * name; the name is resolved exactly once, every address is checked against the platform egress
 * policy (which the tenant cannot widen) and then the tenant's EgressRules, and the socket connects
 * to the checked address (no rebinding); operator-allowed internal addresses need an explicit rule, and every session is bounded (bytes each way, lifetime, sessions per terminal) and recorded
 * in RelaySession (denials too, with a `relay.denied` event). docs/relay.md.
 */
export class EgressRelayPort implements RelayPort {
  private readonly connections = new Map<string, Connection>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly owner: RelayOwner,
    private readonly db: Database,
    private readonly limits: RelayLimits,
    private readonly logger: Logger,
    private readonly policy: EgressPolicy,
    private readonly resolve: Resolver = systemResolver,
  ) {}

  get openConnections(): number {
    return this.connections.size;
  }

  async open(target: RelayTarget): Promise<string> {
    if (this.closed) throw new RelayError('UNAVAILABLE', 'relay closed');
    if (this.connections.size >= this.limits.maxConnectionsPerTerminal) {
      await this.record(target, null, 'denied', `more than ${this.limits.maxConnectionsPerTerminal} relay sessions at once`);
      throw new RelayError('DENIED', 'too many relay connections');
    }
    const rules = await this.db.withTenant(this.owner.tenantId, (tx) => tx.egressRule.findMany({ select: { cidr: true, host: true, port: true } }));
    // No rule could allow this name: refused before the platform resolves anything.
    const precheck = precheckEgress(rules, target.host, target.port);
    if (!precheck.allowed) return this.deny(target, null, precheck.reason);
    let addresses: IpAddress[];
    try {
      // Resolved exactly once; every address checked against the platform policy.
      addresses = await resolveDestination(target.host, this.policy, { resolver: this.resolve, timeoutMs: this.limits.connectTimeoutMs });
    } catch (error) {
      const egress = error as EgressError;
      if (egress.code === 'DENIED') return this.deny(target, egress.details.address ?? null, egress.message);
      await this.record(target, null, 'unresolved', egress.message);
      throw new RelayError('UNREACHABLE', egress.publicReason ?? egress.message);
    }
    let decision: EgressDecision = { allowed: false, reason: `${target.host}:${target.port} matches no egress rule` };
    let address = formatAddress(addresses[0]!);
    for (const candidate of addresses) {
      decision = checkEgress(this.policy, rules, target.host, target.port, formatAddress(candidate));
      address = formatAddress(candidate);
      if (decision.allowed) break;
    }
    if (!decision.allowed) return this.deny(target, address, decision.reason);
    let socket: Socket;
    try {
      socket = await this.connect(address, target.port);
    } catch (error) {
      const relayError = error as RelayError;
      await this.record(target, address, 'connect_failed', relayError.code);
      throw relayError;
    }
    if (this.closed) {
      socket.destroy();
      throw new RelayError('UNAVAILABLE', 'relay closed');
    }
    const id = String(this.nextId++);
    let earlyError: NodeJS.ErrnoException | undefined;
    const onEarlyError = (error: NodeJS.ErrnoException) => (earlyError = error);
    socket.on('error', onEarlyError);
    // Recorded before the id is handed out, so the audit trail's order is the order of opens.
    const sessionRow = await this.record(target, address, 'open', null);
    socket.removeListener('error', onEarlyError);
    const connection: Connection = {
      socket,
      sessionRow: Promise.resolve(sessionRow),
      startedAt: Date.now(),
      chunks: [],
      buffered: 0,
      bytesToHost: 0,
      bytesFromHost: 0,
      ended: false,
      timer: setTimeout(() => this.cut(id, 'limit_time', `relay session longer than ${this.limits.maxDurationMs} ms`), this.limits.maxDurationMs),
    };
    connection.timer.unref();
    socket.on('data', (chunk: Buffer) => {
      connection.bytesFromHost += chunk.length;
      if (connection.bytesFromHost > this.limits.maxBytes) {
        this.cut(id, 'limit_bytes', `more than ${this.limits.maxBytes} bytes from the host`);
        return;
      }
      connection.chunks.push(chunk);
      connection.buffered += chunk.length;
      if (connection.buffered >= this.limits.maxBufferedBytes) socket.pause();
      connection.wake?.();
    });
    socket.on('end', () => {
      connection.ended = true;
      connection.outcome ??= 'peer_closed';
      connection.wake?.();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      connection.error = new RelayError('CLOSED', error.code ?? error.message);
      connection.outcome ??= 'error';
      connection.reason ??= error.code ?? error.message;
      connection.wake?.();
    });
    socket.on('close', () => {
      connection.ended = true;
      connection.wake?.();
    });
    if (earlyError) {
      connection.error = new RelayError('CLOSED', earlyError.code ?? earlyError.message);
      connection.outcome = 'error';
      connection.reason = earlyError.code ?? earlyError.message;
    }
    this.connections.set(id, connection);
    return id;
  }

  private async deny(target: RelayTarget, address: string | null, reason: string): Promise<never> {
    await this.record(target, address, 'denied', reason);
    this.logger.warn({ terminalId: this.owner.terminalId, host: target.host, port: target.port, address, reason }, 'relay denied');
    throw new RelayError('DENIED', reason);
  }

  async send(connectionId: string, data: Uint8Array): Promise<number> {
    const connection = this.get(connectionId);
    if (connection.error) throw connection.error;
    if (connection.socket.destroyed || connection.socket.writableEnded) throw new RelayError('CLOSED');
    if (connection.bytesToHost + data.length > this.limits.maxBytes) {
      this.cut(connectionId, 'limit_bytes', `more than ${this.limits.maxBytes} bytes to the host`);
      throw new RelayError('CLOSED', 'relay byte limit reached');
    }
    connection.bytesToHost += data.length;
    await new Promise<void>((resolve, reject) => {
      connection.socket.write(data, (error) => (error ? reject(new RelayError('CLOSED', error.message)) : resolve()));
    });
    return data.length;
  }

  async receive(connectionId: string, maxBytes: number): Promise<Uint8Array> {
    const connection = this.get(connectionId);
    if (connection.buffered === 0 && !connection.ended && !connection.error) await this.waitForData(connection);
    if (connection.buffered > 0) return this.take(connection, maxBytes);
    if (connection.error) throw connection.error;
    return new Uint8Array(0);
  }

  async close(connectionId: string): Promise<void> {
    await this.finish(connectionId, 'closed');
  }

  /** Ends every session (driver closed, tunnel closed, shutdown). */
  async closeAll(outcome: Outcome = 'closed'): Promise<void> {
    this.closed = true;
    await Promise.all([...this.connections.keys()].map((id) => this.finish(id, outcome)));
  }

  private cut(id: string, outcome: Outcome, reason: string): void {
    const connection = this.connections.get(id);
    if (!connection) return;
    connection.outcome = outcome;
    connection.reason = reason;
    connection.error = new RelayError('CLOSED', reason);
    connection.socket.destroy();
    connection.wake?.();
  }

  private async finish(id: string, outcome: Outcome): Promise<void> {
    const connection = this.connections.get(id);
    if (!connection) return;
    this.connections.delete(id);
    clearTimeout(connection.timer);
    connection.socket.destroy();
    connection.wake?.();
    const rowId = await connection.sessionRow;
    if (!rowId) return;
    const finalOutcome = connection.outcome && connection.outcome !== 'peer_closed' ? connection.outcome : outcome;
    await this.db
      .withTenant(this.owner.tenantId, (tx) =>
        tx.relaySession.update({
          where: { id: rowId },
          data: {
            bytesFromHost: BigInt(connection.bytesFromHost),
            bytesToHost: BigInt(connection.bytesToHost),
            endedAt: new Date(),
            outcome: finalOutcome,
            reason: connection.reason ?? null,
          },
        }),
      )
      .catch((error: Error) => this.logger.warn({ err: error.message }, 'could not finish the relay session record'));
  }

  /** Writes a RelaySession row (and `relay.denied` for a denial); returns its id, null when the write failed. */
  private async record(target: RelayTarget, address: string | null, outcome: string, reason: string | null): Promise<string | null> {
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
            ...(ended && { endedAt: new Date() }),
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

  private get(connectionId: string): Connection {
    const connection = this.connections.get(connectionId);
    if (!connection) throw new RelayError('UNKNOWN_CONNECTION');
    return connection;
  }

  private connect(address: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = new Socket();
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RelayError('TIMEOUT'));
      }, this.limits.connectTimeoutMs);
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new RelayError(error.code === 'ECONNREFUSED' ? 'REFUSED' : 'UNREACHABLE', error.code ?? error.message));
      });
      socket.connect(port, address, () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
    });
  }

  private waitForData(connection: Connection): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        connection.wake = undefined;
        reject(new RelayError('TIMEOUT', 'no data within the receive timeout'));
      }, this.limits.receiveTimeoutMs);
      connection.wake = () => {
        clearTimeout(timer);
        connection.wake = undefined;
        resolve();
      };
    });
  }

  private take(connection: Connection, maxBytes: number): Uint8Array {
    const out = new Uint8Array(Math.min(maxBytes, connection.buffered));
    let filled = 0;
    while (filled < out.length) {
      const head = connection.chunks[0]!;
      const take = Math.min(head.length, out.length - filled);
      out.set(head.subarray(0, take), filled);
      filled += take;
      if (take === head.length) connection.chunks.shift();
      else connection.chunks[0] = head.subarray(take);
    }
    connection.buffered -= filled;
    if (connection.buffered < this.limits.maxBufferedBytes && connection.socket.isPaused()) connection.socket.resume();
    return out;
  }
}

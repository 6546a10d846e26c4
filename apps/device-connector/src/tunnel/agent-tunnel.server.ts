import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

import { type BeforeApplicationShutdown, Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { type WebSocket, WebSocketServer } from 'ws';

import type { ConnectorConfig } from '@payorch/config';
import type { Database } from '@payorch/db';
import { TOKEN_KINDS, tokenPrefix } from '@payorch/domain';
import type { Logger, Registry } from '@payorch/logging';
import type { RedisClient } from '@payorch/redis';
import {
  AGENT_CLOSE_CODES,
  attachWebSocket,
  type ControlMessage,
  type Multiplexer,
  type MultiplexerOptions,
  type TerminalEntry,
  type TunnelCloseInfo,
} from '@payorch/tunnel';

import { AGENT_VERSION_PATTERN, type AuthenticatedAgent, type AuthenticatedCredential, EnrollmentService } from '../enrollment/enrollment.service';
import { TERMINAL_ROW_SELECT, type TerminalRow, terminalEntry } from '../terminals/terminal-link';
import { CONNECTOR_CONFIG, DATABASE, INSTANCE_ID, LOGGER, REDIS, REGISTRY } from '../tokens';
import { AgentReports } from './agent-reports';
import { ConnectBudget } from './connect-budget';
import { SHARED_LIMIT_TIMEOUT_MS } from './shared-limit';

export const AGENT_PATH = '/agent';
const PING_INTERVAL_MS = 30_000;
/** `payorch-agent doctor` sets this header on its upgrade (apps/agent/src/doctor.ts PROBE_HEADER). */
const PROBE_HEADER = 'x-payorch-agent-probe';
const PROBE_TIMEOUT_MS = 15_000;
/** Longest wait of an upgrade for its authentication: below the agent's 15 s opening-handshake timeout (apps/agent TunnelClient). */
const UPGRADE_WAIT_LIMIT_MS = 10_000;
/** DATA stops at this many unflushed bytes (the Multiplexer's transportHighWaterMark, its default). */
const TRANSPORT_HIGH_WATER_MARK = 1024 * 1024;
/**
 * Longest wait of an authenticated upgrade for the shared connect budget in Redis; past it this instance's own budget
 * decides (the bound of every limit the instances share in Redis).
 */
export const SHARED_CONNECT_BUDGET_TIMEOUT_MS = SHARED_LIMIT_TIMEOUT_MS;

export const CONNECTOR_SOFTWARE = 'payorch-device-connector/0.1.0';

/**
 * How every tunnel is closed at a graceful shutdown: 1001 (going away, RFC 6455) tells the agent the
 * connector is leaving, not refusing it — it reconnects at once (first backoff step: full jitter over
 * PAYORCH_AGENT_RECONNECT_BASE_MS) and the load balancer sends it to another instance, which takes its
 * ownership key over. Never 4401: that stops an agent for good.
 */
export const SHUTDOWN_CLOSE = { code: 1001, reason: 'connector shutting down; reconnect' } as const;

/** One authenticated agent tunnel. */
export interface AgentSession {
  readonly agent: AuthenticatedAgent;
  /** Prefix of the credential this tunnel authenticated with: the tunnel lives only while it is the agent's active one. */
  readonly credentialPrefix: string;
  readonly mux: Multiplexer;
  readonly version: string | null;
  readonly connectedAt: Date;
  /** This tunnel's id: its presence writes stand only while Agent.presenceSession names it (TerminalPresence). */
  readonly id: string;
}

/** What the terminal layer hears about tunnels (set once; keeps the DI graph acyclic). */
export interface AgentSessionListener {
  onSessionReady(session: AgentSession): Promise<void>;
  onSessionControl(session: AgentSession, message: ControlMessage): void;
  /** The agent answered a ping (liveness: Agent.lastSeenAt). */
  onSessionAlive(session: AgentSession): void;
  onSessionClosed(session: AgentSession, info: TunnelCloseInfo): Promise<void>;
}

interface Connection {
  ws: WebSocket;
  agent: AuthenticatedAgent;
  /** False from a ws ping until its pong: only that pong counts as a sign of life (an unsolicited pong is no answer). */
  alive: boolean;
  session: AgentSession;
}

/**
 * The agents' WebSocket endpoint. Authentication happens on the HTTP upgrade, before the
 * WebSocket exists: anything without a valid, active agent credential gets `401` and a destroyed
 * socket, so no frame from it is ever read (ws README, "Client authentication").
 * One connection per agent: a newer one replaces the older (close code 4000, REPLACED; torn down at once and
 * terminated after 1 s if its client does not finish the close, as a revoked one). A revoked
 * credential closes its live tunnel with 4401 (AGENT_REVOKED, `revoke()`).
 * Every accepted socket gets a tunnel Multiplexer (role `connector`, docs/tunnel.md); the
 * AgentSessionListener (TerminalHub) hears the handshake, the agent's control messages and the close.
 * Liveness: ws ping every 30 s (an agent that missed the previous pong is terminated), plus the
 * tunnel's own heartbeat.
 */
@Injectable()
export class AgentTunnelServer implements OnModuleDestroy, BeforeApplicationShutdown {
  private readonly wss: WebSocketServer;
  private readonly connections = new Map<string, Connection>();
  private readonly sweep: NodeJS.Timeout;
  private readonly connected: Gauge;
  private readonly refused: Counter<'stage'>;
  private readonly throttled: Counter;
  private readonly unshared: Counter;
  private readonly reportsDropped: Counter;
  /**
   * Per credential (its lookup prefix): its upgrades to every instance (TUNNEL_AGENT_CONNECTS_PER_MINUTE, shared in
   * Redis; this instance's own count when Redis does not answer). Spent only once the credential authenticated (no
   * one else can spend an agent's budget); once refused, the credential's next upgrades here are answered before it is
   * looked up again. What is left of idle credentials is forgotten by the ping sweep.
   */
  private readonly connects: ConnectBudget;
  private readonly reportIntervalMs: number;
  private shuttingDown = false;
  private listener: AgentSessionListener | undefined;
  /** Close handlers still writing presence; shutdown waits for them before the database closes. */
  private readonly closing = new Set<Promise<void>>();
  /** One options object for every tunnel (and one for probes): the tunnels share its resolved settings (idle memory). */
  private readonly tunnelOptions: MultiplexerOptions;
  private readonly probeOptions: MultiplexerOptions;

  constructor(
    @Inject(CONNECTOR_CONFIG) config: ConnectorConfig,
    @Inject(DATABASE) private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    @Inject(REGISTRY) registry: Registry,
    @Inject(REDIS) redis: RedisClient,
    private readonly enrollment: EnrollmentService,
  ) {
    this.tunnelOptions = {
      role: 'connector',
      software: CONNECTOR_SOFTWARE,
      maxFrameBytes: config.TUNNEL_MAX_FRAME_BYTES,
      transportHighWaterMark: TRANSPORT_HIGH_WATER_MARK,
      maxTransportUnflushedBytes: Math.max(config.TUNNEL_MAX_UNFLUSHED_BYTES, TRANSPORT_HIGH_WATER_MARK + config.TUNNEL_MAX_FRAME_BYTES),
      connectionFrameBudget: { limit: config.TUNNEL_CONNECTION_FRAMES_PER_MINUTE, windowMs: 60_000 },
    };
    this.probeOptions = { ...this.tunnelOptions, heartbeat: false };
    this.connects = new ConnectBudget(redis, {
      limit: config.TUNNEL_AGENT_CONNECTS_PER_MINUTE,
      windowMs: 60_000,
      keyPrefix: config.REDIS_KEY_PREFIX,
      timeoutMs: SHARED_CONNECT_BUDGET_TIMEOUT_MS,
      onUnshared: (error, first) => {
        this.unshared.inc();
        if (first) this.logger.warn({ err: error.message }, 'shared connect budget unavailable (Redis): this instance counts agent connects alone');
      },
    });
    this.reportIntervalMs = config.TUNNEL_AGENT_REPORT_INTERVAL_MS;
    // One WebSocket message is one frame ([T3-7]), and TUNNEL_MAX_FRAME_BYTES bounds a frame header included ([T3-5]):
    // the agent sends at most that (it encodes against the maxFrameBytes of our HELLO_ACK; its HELLO, before it, fits
    // in the 4 KiB minimum). So maxPayload is that bound: ws refuses a longer message (1009) from its header, before
    // buffering it, where 1 MiB (the former TUNNEL_MAX_PAYLOAD_BYTES) was buffered per socket for the Multiplexer to drop.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.TUNNEL_MAX_FRAME_BYTES });
    this.sweep = setInterval(() => this.pingAll(), PING_INTERVAL_MS);
    this.sweep.unref();
    this.connected = new Gauge({ name: 'payorch_connector_agents_connected', help: 'Agents connected to this instance.', registers: [registry] });
    this.refused = new Counter({
      name: 'payorch_connector_tunnels_refused_total',
      help: 'Agents refused: upgrades answered 503 after waiting too long for their authentication (stage "upgrade"), tunnels closed with SETUP_FAILED (4503) because the set-up failed (stage "setup") or presence could not be recorded (stage "presence").',
      labelNames: ['stage'],
      registers: [registry],
    });
    this.throttled = new Counter({
      name: 'payorch_connector_upgrades_throttled_total',
      help: 'Agent upgrades answered 429: the agent connected more than TUNNEL_AGENT_CONNECTS_PER_MINUTE times a minute (over every instance).',
      registers: [registry],
    });
    this.unshared = new Counter({
      name: 'payorch_connector_connect_budget_unshared_total',
      help: `Agent upgrades whose connect budget this instance decided alone: Redis was not connected, failed or did not answer within ${SHARED_CONNECT_BUDGET_TIMEOUT_MS} ms.`,
      registers: [registry],
    });
    this.reportsDropped = new Counter({
      name: 'payorch_connector_agent_reports_dropped_total',
      help: 'Agent link reports dropped: more terminals reported within one TUNNEL_AGENT_REPORT_INTERVAL_MS than a terminal list holds.',
      registers: [registry],
    });
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // An upgrade that fails in a way onUpgrade does not answer ends its socket, never the process (an unhandled
      // rejection would).
      this.onUpgrade(req, socket, head).catch((error: unknown) => {
        this.logger.error({ err: error }, 'agent upgrade failed');
        socket.destroy();
      });
    });
  }

  setListener(listener: AgentSessionListener): void {
    this.listener = listener;
  }

  get connectedAgents(): string[] {
    return [...this.connections.keys()];
  }

  session(agentId: string): AgentSession | undefined {
    return this.connections.get(agentId)?.session;
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    // A request target URL cannot parse (`//[/`, which Node's parser accepts) is refused: it used to throw here, an
    // unhandled rejection that ended the connector's process.
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://x').pathname;
    } catch {
      return reject(socket, 400, 'Bad Request');
    }
    if (path !== AGENT_PATH) return reject(socket, 404, 'Not Found');
    if (this.shuttingDown) return reject(socket, 503, 'Service Unavailable');
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const arrived = Date.now();
    const prefix = match ? tokenPrefix(match[1]!, TOKEN_KINDS.agentCredential) : null;
    const refused = prefix === null ? 0 : this.connects.waitMs(prefix, arrived);
    if (refused > 0) return this.throttle(socket, refused);
    let agent: AuthenticatedCredential | null;
    try {
      // Not in turn with the set-ups (DatabaseSlots): the upgrades that arrive together are authenticated by one
      // batched read (EnrollmentService, BatchedLookup), so an agent gets its 101 without waiting for other
      // agents' set-ups, which then run over the open tunnel (the agent waits for its terminal list, not for its
      // 15 s opening-handshake timeout).
      agent = match ? await this.enrollment.authenticate(match[1]!) : null;
    } catch (error) {
      this.logger.error({ err: error }, 'agent authentication failed');
      return reject(socket, 503, 'Service Unavailable');
    }
    // Its agent gave up meanwhile: nothing to answer.
    if (socket.destroyed) return;
    // Waited so long its agent is about to give up: a failed dial (the agent backs off) rather than a set-up for a
    // client that will not see the answer.
    if (Date.now() - arrived > UPGRADE_WAIT_LIMIT_MS) {
      this.refused.inc({ stage: 'upgrade' });
      return reject(socket, 503, 'Service Unavailable');
    }
    if (!agent) {
      this.logger.warn({ remote: req.socket.remoteAddress }, 'agent upgrade rejected: bad credential');
      return reject(socket, 401, 'Unauthorized');
    }
    // Each upgrade costs a set-up (presence, ownership, events) and the close of the tunnel it replaces: bounded per agent
    // over every instance.
    const wait = await this.connects.spend(agent.credentialPrefix);
    if (socket.destroyed) return;
    if (wait > 0) {
      this.logger.warn({ agentId: agent.agentId, tenantId: agent.tenantId }, 'agent upgrades throttled: too many connects (429)');
      return this.throttle(socket, wait);
    }
    const header = req.headers['x-payorch-agent-version'];
    const version = typeof header === 'string' && AGENT_VERSION_PATTERN.test(header) ? header : null;
    if (this.shuttingDown) return reject(socket, 503, 'Service Unavailable');
    if (req.headers[PROBE_HEADER] !== undefined) return this.wss.handleUpgrade(req, socket, head, (ws) => this.onProbe(ws, agent!));
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, agent!, version));
  }

  /** 429 with the seconds until the credential may connect again. */
  private throttle(socket: Duplex, waitMs: number): void {
    this.throttled.inc();
    reject(socket, 429, 'Too Many Requests', { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) });
  }

  private onConnection(ws: WebSocket, credential: AuthenticatedCredential, version: string | null): void {
    const agent: AuthenticatedAgent = { agentId: credential.agentId, tenantId: credential.tenantId };
    const previous = this.connections.get(agent.agentId);
    if (previous) {
      // As a revoked or refused tunnel: closed with its code, torn down at once (nothing more is read from it), and the
      // socket terminated if the old client does not finish the close handshake within 1 s (it waited for ws's 30 s).
      previous.ws.close(AGENT_CLOSE_CODES.REPLACED, 'replaced by a newer connection');
      previous.session.mux.close('replaced by a newer connection');
      setTimeout(() => previous.ws.terminate(), 1000).unref();
    }
    const mux = attachWebSocket(ws, this.tunnelOptions);
    const session: AgentSession = { agent, credentialPrefix: credential.credentialPrefix, mux, version, connectedAt: new Date(), id: randomUUID() };
    const connection: Connection = { ws, agent, alive: true, session };
    this.connections.set(agent.agentId, connection);
    this.connected.set(this.connections.size);
    this.logger.info({ agentId: agent.agentId, tenantId: agent.tenantId, version, instance: this.instanceId }, 'agent connected');
    mux.onReady((hello) => {
      this.logger.info({ agentId: agent.agentId, tunnelVersion: hello.version, peer: hello.peerSoftware }, 'tunnel open');
      void this.listener?.onSessionReady(session).catch((error: Error) => this.refuse(session, 'setup', error));
    });
    const reports = new AgentReports(
      this.reportIntervalMs,
      (message) => this.listener?.onSessionControl(session, message),
      () => this.reportsDropped.inc(),
    );
    mux.onControl((message) => reports.push(message));
    mux.onProtocolError((error) => this.logger.warn({ agentId: agent.agentId, code: error.code }, 'tunnel protocol error'));
    mux.onClose((info) => {
      reports.close();
      this.logger.info({ agentId: agent.agentId, code: info.code, reason: info.message }, 'tunnel closed');
      const done = (this.listener?.onSessionClosed(session, info) ?? Promise.resolve()).catch((error: Error) =>
        this.logger.warn({ agentId: agent.agentId, err: error.message }, 'tunnel close handling failed'),
      );
      this.closing.add(done);
      void done.finally(() => this.closing.delete(done));
    });
    ws.on('pong', () => {
      // Only the answer to our ping (one per sweep): an agent sending pongs of its own made a presence write of each.
      if (connection.alive) return;
      connection.alive = true;
      this.listener?.onSessionAlive(session);
    });
    ws.on('close', (code) => {
      if (this.connections.get(agent.agentId) === connection) this.connections.delete(agent.agentId);
      this.connected.set(this.connections.size);
      this.logger.info({ agentId: agent.agentId, code }, 'agent disconnected');
    });
    ws.on('error', (err) => this.logger.warn({ agentId: agent.agentId, err: err.message }, 'agent socket error'));
  }

  /**
   * A probe (`payorch-agent doctor`): authenticated like any upgrade, then the tunnel handshake and
   * the agent's `terminal-list` (read only), and nothing else: the probe is not registered, so it
   * neither replaces the agent's live tunnel nor takes ownership, records presence or builds drivers.
   * The agent closes it (1000) once it has the list; a probe left open is cut after 15 s.
   */
  private onProbe(ws: WebSocket, credential: AuthenticatedCredential): void {
    const agent: AuthenticatedAgent = { agentId: credential.agentId, tenantId: credential.tenantId };
    const mux = attachWebSocket(ws, this.probeOptions);
    const limit = setTimeout(() => ws.terminate(), PROBE_TIMEOUT_MS);
    limit.unref();
    ws.on('close', () => clearTimeout(limit));
    ws.on('error', () => undefined);
    this.logger.info({ agentId: agent.agentId, tenantId: agent.tenantId }, 'agent probe (doctor)');
    mux.onReady(() => {
      this.db
        .withTenant(agent.tenantId, (tx) =>
          tx.terminal.findMany({ where: { agentId: agent.agentId, status: { not: 'DISABLED' } }, select: TERMINAL_ROW_SELECT, orderBy: { createdAt: 'asc' } }),
        )
        .then((rows) => {
          const terminals = (rows as TerminalRow[]).map(terminalEntry).filter((entry): entry is TerminalEntry => entry !== null);
          mux.sendControl({ type: 'terminal-list', terminals });
        })
        .catch((error: Error) => {
          this.logger.warn({ agentId: agent.agentId, err: error.message }, 'agent probe: could not read the terminals');
          mux.close('probe failed');
        });
    });
  }

  /**
   * Cuts a tunnel whose credential no longer holds (live revocation, docs/tunnel.md §12.4): the
   * WebSocket is closed with AGENT_REVOKED (4401) and the tunnel torn down at once, so every stream
   * ends `TUNNEL_CLOSED` (in-flight commands end `unknown`) and no frame from the agent is read any
   * more; the socket is terminated if the agent does not finish the close handshake within 1 s.
   * Returns false when `session` is no longer this agent's live tunnel here.
   */
  revoke(session: AgentSession, reason: string): boolean {
    const connection = this.connections.get(session.agent.agentId);
    if (connection?.session !== session || session.mux.state === 'closed') return false;
    connection.ws.close(AGENT_CLOSE_CODES.AGENT_REVOKED, `AGENT_REVOKED: ${reason}`);
    // The Multiplexer's own close is then a no-op on the socket (already closing with our code).
    session.mux.close(`agent revoked: ${reason}`);
    setTimeout(() => connection.ws.terminate(), 1000).unref();
    return true;
  }

  /**
   * Closes a tunnel the connector could not serve (its set-up failed, or presence could not be recorded
   * after retrying) with SETUP_FAILED (4503): the agent reconnects after its backoff, as after a failed
   * dial, and the set-up (with its presence writes) is made again then. Counted per stage.
   */
  refuse(session: AgentSession, stage: 'setup' | 'presence', error: Error): boolean {
    const connection = this.connections.get(session.agent.agentId);
    if (connection?.session !== session || session.mux.state === 'closed') return false;
    this.refused.inc({ stage });
    this.logger.error(
      { agentId: session.agent.agentId, stage, err: error.message },
      'agent tunnel refused (SETUP_FAILED); the agent retries after its backoff',
    );
    connection.ws.close(AGENT_CLOSE_CODES.SETUP_FAILED, truncateReason(`SETUP_FAILED: ${stage}: ${error.message}`));
    session.mux.close(`set-up failed (${stage})`);
    setTimeout(() => connection.ws.terminate(), 1000).unref();
    return true;
  }

  private pingAll(): void {
    this.connects.forgetIdle(Date.now());
    for (const connection of this.connections.values()) {
      if (!connection.alive) {
        connection.ws.terminate();
        continue;
      }
      connection.alive = false;
      connection.ws.ping();
    }
  }

  /**
   * First step of the drain (while the command router lets accepted operations finish): no new tunnel is
   * accepted here any more (503), so a reconnecting agent goes to another instance.
   */
  onModuleDestroy(): void {
    this.shuttingDown = true;
  }

  /**
   * Runs before Nest closes the HTTP server, which would otherwise wait for the upgraded sockets.
   * SHUTDOWN_CLOSE (1001) tells agents to reconnect (to another instance); stragglers are cut after 1 s.
   * The close handlers (TerminalHub) mark presence and release the ownership keys before this resolves.
   */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.sweep);
    this.shuttingDown = true;
    const closing = [...this.wss.clients].map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close(SHUTDOWN_CLOSE.code, SHUTDOWN_CLOSE.reason);
          setTimeout(() => ws.terminate(), 1000).unref();
        }),
    );
    await Promise.all(closing);
    await Promise.allSettled([...this.closing]);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/** RFC 6455 §5.5: a close reason fits in 123 bytes of UTF-8 (110 bytes, a cut character and the ellipsis do). */
function truncateReason(reason: string): string {
  return Buffer.byteLength(reason) <= 123 ? reason : `${Buffer.from(reason).subarray(0, 110).toString('utf8')}…`;
}

function reject(socket: Duplex, status: number, text: string, headers: Record<string, string> = {}): void {
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${extra}Content-Length: 0\r\n\r\n`);
  socket.destroy();
}

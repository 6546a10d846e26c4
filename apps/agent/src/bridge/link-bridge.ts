import { hostname } from 'node:os';
import { createServer, type Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';

import type { WebSocket } from 'ws';

import type { Logger } from '@payorch/logging';
import {
  attachWebSocket,
  type IncomingOpen,
  type LinkDescriptor,
  type LinkStatus,
  type Multiplexer,
  type TerminalEntry,
  toDuplex,
  TunnelStreamError,
  type WireStreamErrorCode,
} from '@payorch/tunnel';

import { AGENT_VERSION } from '../version';
import { isSerialPort, openSerialPort } from './serial';

export const AGENT_SOFTWARE = `payorch-agent/${AGENT_VERSION}`;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_ACCEPT_TIMEOUT_MS = 120_000;
const DEFAULT_CLOSE_GRACE_MS = 30_000;

export interface LinkBridgeOptions {
  logger: Logger;
  /** Opens a serial port (tests may substitute); default `serialport`. */
  openSerial?: (link: Extract<LinkDescriptor, { kind: 'serial' }>) => Promise<Duplex>;
  /** How long a `tcp-listen` link waits for the terminal to dial in. */
  acceptTimeoutMs?: number;
  /**
   * When one side of a link closes, how long the other gets to finish gracefully (the tunnel to carry the terminal's last
   * bytes and see the connector close; the terminal's socket to take the connector's last bytes) before both are
   * destroyed. Default 30 s.
   */
  closeGraceMs?: number;
  onTerminals?: (terminals: TerminalEntry[]) => void;
}

interface PendingListen {
  server: Server;
  request: IncomingOpen;
  timer: NodeJS.Timeout;
}

/**
 * The agent's half of the tunnel: a Multiplexer (role `agent`) on each WebSocket the TunnelClient
 * opens. It keeps the terminal list the connector pushes and serves OPEN requests for those
 * terminals only (the link must equal the listed one): `tcp-connect` dials the terminal, `tcp-listen`
 * waits for the terminal to dial in, `serial` opens the port. Bytes are bridged with `pipeline`, so
 * backpressure crosses both ways (a full socket pauses the tunnel stream, no credit goes back; a
 * full stream holds the socket). `relay-tcp` is refused: relays are opened by the connector, in the
 * cloud, under the tenant's egress rules. Link changes are reported with `link-status`.
 */
export class LinkBridge {
  private mux: Multiplexer | undefined;
  private terminals = new Map<string, TerminalEntry>();
  private readonly links = new Map<string, LinkStatus>();
  private readonly listening = new Map<string, PendingListen>();
  private readonly active = new Set<Duplex>();
  /** Serial ports still closing, by path: the OS lock is released only once the close completes. */
  private readonly closingSerial = new Map<string, Promise<void>>();
  private readonly startedAt = Date.now();

  constructor(private readonly options: LinkBridgeOptions) {}

  get terminalList(): TerminalEntry[] {
    return [...this.terminals.values()];
  }

  get openLinks(): number {
    return this.active.size;
  }

  /** Binds a Multiplexer to a new (not yet open) tunnel WebSocket. */
  attach(ws: WebSocket): Multiplexer {
    const mux = attachWebSocket(ws, { role: 'agent', software: AGENT_SOFTWARE, capabilities: ['serial', 'tcp-listen'] });
    this.mux = mux;
    mux.setOpenHandler((request) => this.onOpen(request));
    mux.onReady(() => {
      mux.sendControl({
        type: 'agent-status',
        software: AGENT_SOFTWARE,
        hostname: hostname().slice(0, 253),
        uptimeMs: Date.now() - this.startedAt,
        links: [...this.links.values()].slice(0, 1024),
      });
    });
    mux.onControl((message) => {
      if (message.type === 'terminal-list') {
        this.terminals = new Map(message.terminals.map((t) => [t.terminalId, t]));
        this.options.logger.info({ terminals: message.terminals.length }, 'terminal list received');
        this.options.onTerminals?.(message.terminals);
      } else if (message.type === 'goaway') {
        this.options.logger.info({ reason: message.reason }, 'connector is going away');
      }
    });
    mux.onClose((info) => {
      if (this.mux === mux) this.mux = undefined;
      this.options.logger.info({ code: info.code }, 'tunnel closed');
      for (const pending of this.listening.values()) this.stopListening(pending);
      this.listening.clear();
    });
    return mux;
  }

  /** Closes every link (agent stopping). */
  close(): void {
    for (const pending of this.listening.values()) this.stopListening(pending);
    this.listening.clear();
    for (const link of this.active) link.destroy();
  }

  private onOpen(request: IncomingOpen): void {
    const { link, terminalId } = request;
    if (link.kind === 'relay-tcp') return request.reject('NOT_ALLOWED', 'relays are opened by the connector');
    const entry = terminalId === undefined ? undefined : this.terminals.get(terminalId);
    if (!entry || !isDeepStrictEqual(entry.link, link)) {
      this.options.logger.warn({ terminalId, kind: link.kind }, 'refused a link that is not in the terminal list');
      return request.reject('NOT_ALLOWED', 'not a link of a listed terminal');
    }
    switch (link.kind) {
      case 'tcp-connect':
        return this.connectTcp(request, link);
      case 'tcp-listen':
        return this.listenTcp(request, link);
      case 'serial':
        return this.openSerial(request, link);
    }
  }

  private connectTcp(request: IncomingOpen, link: Extract<LinkDescriptor, { kind: 'tcp-connect' }>): void {
    const socket = new Socket();
    const timer = setTimeout(() => {
      socket.destroy();
      this.fail(request, 'TIMEOUT', 'connect timed out');
    }, link.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      this.fail(request, errorCode(error), error.code ?? error.message);
    });
    socket.connect(link.port, link.host, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      this.bridge(request, socket);
    });
  }

  private listenTcp(request: IncomingOpen, link: Extract<LinkDescriptor, { kind: 'tcp-listen' }>): void {
    const key = `${link.host ?? ''}:${link.port}`;
    const previous = this.listening.get(key);
    if (previous) {
      // A newer OPEN for the same port supersedes one still waiting for the terminal.
      this.stopListening(previous);
      previous.request.reject('CANCELLED', 'superseded by a newer open');
    }
    const server = createServer({ pauseOnConnect: true });
    const pending: PendingListen = {
      server,
      request,
      timer: setTimeout(() => {
        this.stopListening(pending);
        this.listening.delete(key);
        this.fail(request, 'TIMEOUT', 'the terminal did not dial in');
      }, this.options.acceptTimeoutMs ?? DEFAULT_ACCEPT_TIMEOUT_MS),
    };
    this.listening.set(key, pending);
    // The connector gave up on this OPEN (its open timeout, 30 s by default, is shorter than ours): stop listening, so
    // the terminal's dial-in is refused until the next OPEN instead of being accepted and hung up on at once (the link
    // was gone). Until 2026-12-07 the agent listened on for the rest of its 120 s.
    request.onCancel((reason) => {
      if (this.listening.get(key) !== pending) return;
      this.stopListening(pending);
      this.listening.delete(key);
      this.options.logger.info({ terminalId: request.terminalId, port: link.port, reason }, 'tcp-listen given up by the connector: not listening any more');
    });
    server.once('connection', (socket: Socket) => {
      this.stopListening(pending);
      if (this.listening.get(key) === pending) this.listening.delete(key);
      socket.setNoDelay(true);
      this.bridge(request, socket);
      socket.resume();
    });
    server.once('error', (error: NodeJS.ErrnoException) => {
      this.stopListening(pending);
      if (this.listening.get(key) === pending) this.listening.delete(key);
      this.fail(request, error.code === 'EADDRINUSE' ? 'REFUSED' : 'UNREACHABLE', error.code ?? error.message);
    });
    server.listen(link.port, link.host);
  }

  private openSerial(request: IncomingOpen, link: Extract<LinkDescriptor, { kind: 'serial' }>): void {
    const open = this.options.openSerial ?? openSerialPort;
    const closing = this.closingSerial.get(link.path) ?? Promise.resolve();
    closing
      .then(() => open(link))
      .then(
        (port) => {
          // destroy() alone leaves the fd and its lock behind (serialport 13): close explicitly, and
          // let the next open of the same path wait for it.
          let release!: () => void;
          const closed = new Promise<void>((resolve) => (release = resolve));
          this.closingSerial.set(link.path, closed);
          void closed.then(() => {
            if (this.closingSerial.get(link.path) === closed) this.closingSerial.delete(link.path);
          });
          this.bridge(request, port, (done) => {
            const finish = () => {
              release();
              done();
            };
            if (isSerialPort(port) && port.isOpen) port.close(finish);
            else finish();
          });
        },
        (error: NodeJS.ErrnoException) =>
          this.fail(request, /ENOENT|No such file/i.test(error.message) ? 'UNREACHABLE' : 'REFUSED', error.message.slice(0, 200)),
      );
  }

  private bridge(request: IncomingOpen, endpoint: Duplex, closeEndpoint: (done: () => void) => void = (done) => done()): void {
    const terminalId = request.terminalId ?? '';
    const stream = request.accept();
    if (stream.state === 'closed') {
      closeEndpoint(() => endpoint.destroy());
      return;
    }
    const tunnel = toDuplex(stream);
    this.active.add(endpoint);
    this.report(terminalId, 'up');
    // Only a failure of the terminal side is a link error; the connector closing or resetting its
    // stream (a probe, a finished session, the tunnel going down) just takes the link down.
    splice(
      endpoint,
      tunnel,
      (error) => {
        this.active.delete(endpoint);
        closeEndpoint(() => endpoint.destroy());
        tunnel.destroy();
        const linkError =
          error && !(error instanceof TunnelStreamError) && (error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE' ? error : undefined;
        this.report(terminalId, linkError ? 'error' : 'down', linkError?.message.slice(0, 200));
      },
      this.options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS,
    );
  }

  private fail(request: IncomingOpen, code: WireStreamErrorCode, detail: string): void {
    request.reject(code, detail);
    if (request.terminalId) this.report(request.terminalId, 'error', `${code}: ${detail}`.slice(0, 200));
  }

  private report(terminalId: string, state: LinkStatus['state'], detail?: string): void {
    if (!terminalId) return;
    const status: LinkStatus = { terminalId, state, ...(detail && { detail }) };
    this.links.set(terminalId, status);
    if (this.mux?.state === 'open') this.mux.sendControl({ type: 'link-status', ...status });
    this.options.logger.debug({ terminalId, state, detail }, 'link status');
  }

  private stopListening(pending: PendingListen): void {
    clearTimeout(pending.timer);
    pending.server.close();
  }
}

function errorCode(error: NodeJS.ErrnoException): WireStreamErrorCode {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'REFUSED';
    case 'ETIMEDOUT':
      return 'TIMEOUT';
    default:
      return 'UNREACHABLE';
  }
}

/**
 * Copies endpoint → tunnel and tunnel → endpoint (`pipe`, which ends the other side when one ends) until both have closed,
 * or either fails: `done` once, with the first error if any; the caller then destroys both. A side that closes gracefully
 * does not cut the other short: when the terminal hangs up, what it sent before still crosses the tunnel (the tunnel's
 * end sends CLOSE behind every queued byte, some of which may still wait for the connector's credit) and what the
 * connector still sends is read and dropped, until the connector closes its direction; when the tunnel closes, the
 * endpoint first writes out what the tunnel delivered. Each wait is bounded by `graceMs`. (Until 2026-12-07 the first
 * 'close' of either side destroyed both: a terminal that sent a burst and hung up lost the tail of it, with a RESET.)
 * What `pipeline(endpoint, tunnel, endpoint)` did here (it too ended the link when the endpoint, its last stage,
 * finished), without its AbortController, whose abort built a DOMException with a stack trace for every link that
 * closed (6.5 % of the agents' CPU in a reconnect storm, where each tunnel's probe opens and closes a link).
 */
export function splice(endpoint: Duplex, tunnel: Duplex, done: (error: Error | undefined) => void, graceMs: number): void {
  let finished = false;
  let grace: NodeJS.Timeout | undefined;
  const finish = (error?: Error) => {
    if (finished) return;
    finished = true;
    clearTimeout(grace);
    done(error);
  };
  const closed = (stream: Duplex) => stream.closed || stream.destroyed;
  const wait = () => {
    grace ??= setTimeout(() => finish(), graceMs);
    grace.unref();
  };
  endpoint.on('error', finish);
  tunnel.on('error', finish);
  endpoint.once('close', () => {
    if (closed(tunnel)) return finish();
    // The terminal side is gone: nothing more will come from it, nothing can reach it.
    if (!tunnel.writableEnded) tunnel.end();
    tunnel.unpipe(endpoint);
    tunnel.resume();
    wait();
  });
  tunnel.once('close', () => {
    if (closed(endpoint) || endpoint.writableFinished) return finish();
    endpoint.once('finish', () => finish());
    wait();
  });
  endpoint.pipe(tunnel);
  tunnel.pipe(endpoint);
}

import { isIP, type Socket } from 'node:net';

import { connectSocket } from '@payorch/byte-transport';

/**
 * Relay through the till (spec 4.2–4.5): a terminal without internet asks the till to open a connection to
 * its processing centre (91), send (92), receive (93) and close (94). `RelayConnection` / `RelayConnections`
 * are the socket side of every RelayPort: `TcpRelayPort` (in-process, an allowlist; a test tool)
 * here, and the device connector's egress-checked, audited, bounded port (the product's).
 */
export interface RelayTarget {
  /** DF21 as sent: `tcp` or `http`; both are relayed as a byte stream (see docs, decisions). */
  readonly protocol: 'tcp' | 'http';
  readonly host: string;
  readonly port: number;
  /** DF22 as sent. */
  readonly address: string;
}

export interface RelayPort {
  /** Opens a connection; resolves to its id (DF23, 1..20 digits). Rejects with RelayError. */
  open(target: RelayTarget): Promise<string>;
  /** Sends all bytes; resolves to the count sent (DF25). */
  send(connectionId: string, data: Uint8Array): Promise<number>;
  /**
   * Like recv(): resolves with 1..maxBytes bytes as soon as any are available, or with 0 bytes once the peer
   * has closed and everything was read.
   */
  receive(connectionId: string, maxBytes: number): Promise<Uint8Array>;
  /** Closes; never fails for an unknown or closed id. */
  close(connectionId: string): Promise<void>;
}

export type RelayErrorCode =
  'DENIED' | 'BAD_ADDRESS' | 'UNSUPPORTED_PROTOCOL' | 'UNREACHABLE' | 'REFUSED' | 'TIMEOUT' | 'CLOSED' | 'UNKNOWN_CONNECTION' | 'UNAVAILABLE' | 'BUSY';

/** DF1A text the terminal gets with `XX` for each failure (≤ 40 chars; spec 4.2.2, 4.3.2 wording where given). */
export const RELAY_ERROR_TEXT: Readonly<Record<RelayErrorCode, string>> = {
  DENIED: 'Address not allowed by till',
  BAD_ADDRESS: 'Bad address',
  UNSUPPORTED_PROTOCOL: 'Unsupported protocol',
  UNREACHABLE: 'Network is unreachable',
  REFUSED: 'Connection refused',
  TIMEOUT: 'Connection timed out',
  CLOSED: 'Connection closed',
  UNKNOWN_CONNECTION: 'Unknown connection',
  UNAVAILABLE: 'Relay not available',
  BUSY: 'Operation already in progress',
};

export class RelayError extends Error {
  override readonly name = 'RelayError';

  constructor(
    readonly code: RelayErrorCode,
    message: string = RELAY_ERROR_TEXT[code],
  ) {
    super(message);
  }

  /** What the terminal is told in DF1A. */
  get wireText(): string {
    return RELAY_ERROR_TEXT[this.code];
  }
}

/** DF21 + DF22 → target. Accepts `host:port` and `[v6]:port`. Throws RelayError BAD_ADDRESS / UNSUPPORTED_PROTOCOL. */
export function parseRelayTarget(protocol: string, address: string): RelayTarget {
  const normalised = protocol.toLowerCase();
  if (normalised !== 'tcp' && normalised !== 'http') throw new RelayError('UNSUPPORTED_PROTOCOL');
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[3]) : 0;
  if (!match || port < 1 || port > 65535) throw new RelayError('BAD_ADDRESS');
  return { protocol: normalised, host: (match[1] ?? match[2]).toLowerCase(), port, address };
}

/** A relay that relays nothing: every open is refused. The safe default of a session without a relay. */
export const unavailableRelay: RelayPort = {
  open: () => Promise.reject(new RelayError('UNAVAILABLE')),
  send: () => Promise.reject(new RelayError('UNKNOWN_CONNECTION')),
  receive: () => Promise.reject(new RelayError('UNKNOWN_CONNECTION')),
  close: () => Promise.resolve(),
};

/** What bounds one relayed connection. */
export interface RelayConnectionLimits {
  /** How long a 93 (receive) waits for the first byte. */
  readonly receiveTimeoutMs: number;
  /** Received bytes held before the socket is paused; it resumes once the terminal has read below it. */
  readonly maxBufferedBytes: number;
  /** Bytes in each direction; one more cuts the connection (`limit_bytes`). Default: no bound. */
  readonly maxBytes?: number;
  /** Lifetime; past it the connection is cut (`limit_time`). Default: no bound. */
  readonly maxDurationMs?: number;
}

/** How a relayed connection stopped before its owner closed it. */
export type RelayStop = 'peer_closed' | 'error' | 'limit_bytes' | 'limit_time';

/**
 * One relayed TCP connection (91–94 of one DF23 id): the socket, the bytes received and not yet read by
 * the terminal (the socket pauses above `maxBufferedBytes`: backpressure towards the host), the bytes
 * counted each way, and why it stopped. Socket events are watched from construction on, so an error or
 * the host's close before the id is handed out is not lost.
 *
 * At most one 92 (send) and one 93 (receive) are in progress at once, as for a `send()`/`recv()` caller: another
 * one meanwhile is refused at once (`BUSY`, `Operation already in progress`) and holds nothing. A terminal sends its
 * next 92/93 once it has the answer to the last one, but TillSession serves whatever the terminal (or the agent
 * feeding it bytes) sends, concurrently: before, each 93 sent without waiting held a promise and a receive timer for
 * `receiveTimeoutMs` (only the last one was woken by the host's bytes), and each 92 to a host that stopped reading
 * queued a write (a zero-length one spending nothing of `maxBytes`) until the session's end — 100,000 of either
 * held over 100 MB of the connector's memory for the price of 4 MB of frames.
 *
 * `onReleased` is called exactly once, when the connection holds neither its socket nor bytes the terminal has not
 * read: the host closed (or the socket failed) and the terminal read everything, a cut (a limit: its unread bytes are
 * dropped), or `destroy` (94, its owner's end). Its owner gives back the session's place there (the connector's
 * per-tenant and per-connector caps), whether or not the terminal ever sends its 94. The lifetime timer runs until
 * then, so a session the terminal leaves unread after the host closed is still cut at `maxDurationMs`.
 */
export class RelayConnection {
  bytesToHost = 0;
  bytesFromHost = 0;
  /** The first way it stopped by itself (a cut overrides it); undefined while it runs. */
  outcome?: RelayStop;
  /** Detail of the outcome, for an audit trail. */
  reason?: string;
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private error?: RelayError;
  private wake?: () => void;
  /** A 93 is waiting for bytes (`waitForData`). */
  private receiving = false;
  /** A 92's write is not done yet. */
  private sending = false;
  private readonly timer?: NodeJS.Timeout;
  /** The socket closed (host, error, cut, destroy). */
  private socketClosed = false;
  /** `onReleased` was called. */
  private released = false;

  constructor(
    private readonly socket: Socket,
    private readonly limits: RelayConnectionLimits,
    private readonly onReleased: () => void = () => undefined,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.bytesFromHost += chunk.length;
      if (this.bytesFromHost > (limits.maxBytes ?? Infinity)) {
        this.cut('limit_bytes', `more than ${limits.maxBytes} bytes from the host`);
        return;
      }
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= limits.maxBufferedBytes) socket.pause();
      this.wake?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.outcome ??= 'peer_closed';
      this.wake?.();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.error = toRelayError(error);
      this.outcome ??= 'error';
      this.reason ??= error.code ?? error.message;
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.socketClosed = true;
      this.wake?.();
      if (this.buffered === 0) this.release();
    });
    if (limits.maxDurationMs !== undefined) {
      this.timer = setTimeout(() => this.cut('limit_time', `relay session longer than ${limits.maxDurationMs} ms`), limits.maxDurationMs);
      this.timer.unref();
    }
  }

  /** 92: sends all bytes; resolves to the count sent. One at a time: another while this one's write is not done is BUSY. */
  async send(data: Uint8Array): Promise<number> {
    if (this.error) throw this.error;
    if (this.socket.destroyed || this.socket.writableEnded) throw new RelayError('CLOSED');
    if (this.sending) throw new RelayError('BUSY', 'a 92 of this connection is in progress');
    if (this.bytesToHost + data.length > (this.limits.maxBytes ?? Infinity)) {
      this.cut('limit_bytes', `more than ${this.limits.maxBytes} bytes to the host`);
      throw new RelayError('CLOSED', 'relay byte limit reached');
    }
    this.bytesToHost += data.length;
    this.sending = true;
    try {
      await new Promise<void>((resolve, reject) => {
        this.socket.write(data, (error) => (error ? reject(toRelayError(error)) : resolve()));
      });
    } finally {
      this.sending = false;
    }
    return data.length;
  }

  /**
   * 93: 1..maxBytes bytes as soon as any are there, 0 bytes once the host closed and all was read. One waits at a
   * time: another while one waits for bytes is BUSY.
   */
  async receive(maxBytes: number): Promise<Uint8Array> {
    if (this.receiving) throw new RelayError('BUSY', 'a 93 of this connection is waiting');
    if (this.buffered === 0 && !this.ended && !this.error) await this.waitForData();
    if (this.buffered > 0) return this.take(maxBytes);
    if (this.error) throw this.error;
    return new Uint8Array(0);
  }

  /**
   * Ends it now as `outcome` (a limit): the socket is destroyed and the bytes not read yet are dropped, a waiting or
   * later read fails CLOSED.
   */
  cut(outcome: RelayStop, reason: string): void {
    this.outcome = outcome;
    this.reason = reason;
    this.error = new RelayError('CLOSED', reason);
    this.chunks.length = 0;
    this.buffered = 0;
    this.socket.destroy();
    this.wake?.();
    // The socket may have closed before (the host closed, the terminal did not read): nothing is held any more.
    if (this.socketClosed) this.release();
  }

  /** 94, or its owner's end: destroys the socket, wakes a waiting read and releases the connection. */
  destroy(): void {
    this.socket.destroy();
    this.wake?.();
    this.release();
  }

  /** Holds neither a socket nor unread bytes: the timer stops and the owner is told, once. */
  private release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.timer);
    this.onReleased();
  }

  private waitForData(): Promise<void> {
    this.receiving = true;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        this.receiving = false;
        reject(new RelayError('TIMEOUT', 'no data within the receive timeout'));
      }, this.limits.receiveTimeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.receiving = false;
        resolve();
      };
    });
  }

  private take(maxBytes: number): Uint8Array {
    const out = new Uint8Array(Math.min(maxBytes, this.buffered));
    let filled = 0;
    while (filled < out.length) {
      const head = this.chunks[0]!;
      const take = Math.min(head.length, out.length - filled);
      out.set(head.subarray(0, take), filled);
      filled += take;
      if (take === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(take);
    }
    this.buffered -= filled;
    if (this.buffered < this.limits.maxBufferedBytes && this.socket.isPaused()) this.socket.resume();
    // The host closed and the terminal has read its last bytes.
    if (this.buffered === 0 && this.socketClosed) this.release();
    return out;
  }
}

/** The open connections of one RelayPort, by the id (DF23) the terminal got. */
export class RelayConnections {
  private readonly open = new Map<string, RelayConnection>();
  private nextId = 1;

  get size(): number {
    return this.open.size;
  }

  ids(): string[] {
    return [...this.open.keys()];
  }

  /** Registers the connection; returns its id (1..20 digits). */
  add(connection: RelayConnection): string {
    const id = String(this.nextId++);
    this.open.set(id, connection);
    return id;
  }

  /** @throws RelayError UNKNOWN_CONNECTION */
  get(connectionId: string): RelayConnection {
    const connection = this.open.get(connectionId);
    if (connection === undefined) throw new RelayError('UNKNOWN_CONNECTION');
    return connection;
  }

  /** Unregisters and destroys the connection; undefined for an unknown or already removed id. */
  remove(connectionId: string): RelayConnection | undefined {
    const connection = this.open.get(connectionId);
    if (connection === undefined) return undefined;
    this.open.delete(connectionId);
    connection.destroy();
    return connection;
  }
}

/** Connects for a 91; a failure is what the terminal is told: REFUSED, TIMEOUT or UNREACHABLE. */
export function connectRelaySocket(host: string, port: number, connectTimeoutMs: number): Promise<Socket> {
  return connectSocket({
    host,
    port,
    connectTimeoutMs,
    connectError: (message, cause) => {
      if (cause === undefined) return new RelayError('TIMEOUT', message);
      const detail = cause.code ?? cause.message;
      if (cause.code === 'ECONNREFUSED') return new RelayError('REFUSED', detail);
      return new RelayError(cause.code === 'ETIMEDOUT' ? 'TIMEOUT' : 'UNREACHABLE', detail);
    },
  });
}

export interface TcpRelayPortOptions {
  /** `host:port` pairs the terminal may reach (exact match, host case-insensitive). Anything else is DENIED. */
  readonly allow: readonly string[];
  readonly connectTimeoutMs?: number;
  /** How long a 93 waits for the first byte. */
  readonly receiveTimeoutMs?: number;
  /** Received bytes held per connection before the socket is paused. */
  readonly maxBufferedBytes?: number;
  /** Bytes per connection in each direction. Default: no bound. */
  readonly maxBytes?: number;
  /** Lifetime of a connection. Default: no bound. */
  readonly maxDurationMs?: number;
}

/**
 * TEST TOOL, not a product path: an in-process RelayPort over node:net with a host:port allowlist, for tests (the
 * joinproto simulator's TillSession specs, this file's spec). No app or lib builds one: the device connector gives
 * its drivers its EgressRelayPort, the agent refuses `relay-tcp` links, a TillSession without a port relays nothing.
 * It is unbounded on purpose: no cap on a terminal's connections at once or per minute, no egress policy beyond the
 * exact allowlist (a name is dialled as the OS resolves it), no audit. Where a terminal may be hostile, the relay is
 * the connector's port (apps/device-connector/src/relay/egress-relay-port.ts, docs/relay.md), never this one.
 */
export class TcpRelayPort implements RelayPort {
  private readonly allow: ReadonlySet<string>;
  private readonly connectTimeoutMs: number;
  private readonly limits: RelayConnectionLimits;
  private readonly connections = new RelayConnections();

  constructor(options: TcpRelayPortOptions) {
    this.allow = new Set(options.allow.map((entry) => entry.toLowerCase()));
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.limits = {
      receiveTimeoutMs: options.receiveTimeoutMs ?? 30_000,
      maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
      maxBytes: options.maxBytes,
      maxDurationMs: options.maxDurationMs,
    };
  }

  /** Open connections; for tests and shutdown. */
  get openConnections(): number {
    return this.connections.size;
  }

  async open(target: RelayTarget): Promise<string> {
    const key = `${isIP(target.host) === 6 ? `[${target.host}]` : target.host}:${target.port}`;
    if (!this.allow.has(key)) throw new RelayError('DENIED', `relay to ${key} is not allowed`);
    const socket = await connectRelaySocket(target.host, target.port, this.connectTimeoutMs);
    return this.connections.add(new RelayConnection(socket, this.limits));
  }

  async send(connectionId: string, data: Uint8Array): Promise<number> {
    return this.connections.get(connectionId).send(data);
  }

  async receive(connectionId: string, maxBytes: number): Promise<Uint8Array> {
    return this.connections.get(connectionId).receive(maxBytes);
  }

  async close(connectionId: string): Promise<void> {
    this.connections.remove(connectionId);
  }

  /** Closes every connection (session end). */
  async closeAll(): Promise<void> {
    for (const id of this.connections.ids()) this.connections.remove(id);
  }
}

/** An error on an established connection, as the terminal is told it. */
function toRelayError(error: NodeJS.ErrnoException): RelayError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new RelayError('REFUSED', error.message);
    case 'ETIMEDOUT':
      return new RelayError('TIMEOUT', error.message);
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new RelayError('UNREACHABLE', error.message);
    default:
      return new RelayError('CLOSED', error.message);
  }
}

import { isIP, Socket } from 'node:net';

/**
 * Relay through the till (spec 4.2–4.5): a terminal without internet asks the till to open a connection to
 * its processing centre (91), send (92), receive (93) and close (94). The device connector implements
 * RelayPort over its tunnel; `TcpRelayPort` is the in-process implementation.
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
  | 'DENIED'
  | 'BAD_ADDRESS'
  | 'UNSUPPORTED_PROTOCOL'
  | 'UNREACHABLE'
  | 'REFUSED'
  | 'TIMEOUT'
  | 'CLOSED'
  | 'UNKNOWN_CONNECTION'
  | 'UNAVAILABLE';

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

export interface TcpRelayPortOptions {
  /** `host:port` pairs the terminal may reach (exact match, host case-insensitive). Anything else is DENIED. */
  readonly allow: readonly string[];
  readonly connectTimeoutMs?: number;
  /** How long a 93 waits for the first byte. */
  readonly receiveTimeoutMs?: number;
  /** Received bytes held per connection before the socket is paused. */
  readonly maxBufferedBytes?: number;
}

interface Connection {
  readonly socket: Socket;
  readonly chunks: Buffer[];
  buffered: number;
  ended: boolean;
  error?: RelayError;
  wake?: () => void;
}

/** In-process RelayPort over node:net with a host:port allowlist. */
export class TcpRelayPort implements RelayPort {
  private readonly allow: ReadonlySet<string>;
  private readonly connectTimeoutMs: number;
  private readonly receiveTimeoutMs: number;
  private readonly maxBufferedBytes: number;
  private readonly connections = new Map<string, Connection>();
  private nextId = 1;

  constructor(options: TcpRelayPortOptions) {
    this.allow = new Set(options.allow.map((entry) => entry.toLowerCase()));
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.receiveTimeoutMs = options.receiveTimeoutMs ?? 30_000;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  }

  /** Open connections; for tests and shutdown. */
  get openConnections(): number {
    return this.connections.size;
  }

  async open(target: RelayTarget): Promise<string> {
    const key = `${isIP(target.host) === 6 ? `[${target.host}]` : target.host}:${target.port}`;
    if (!this.allow.has(key)) throw new RelayError('DENIED', `relay to ${key} is not allowed`);
    const socket = await this.connect(target);
    const id = String(this.nextId++);
    const connection: Connection = { socket, chunks: [], buffered: 0, ended: false };
    socket.on('data', (chunk: Buffer) => {
      connection.chunks.push(chunk);
      connection.buffered += chunk.length;
      if (connection.buffered >= this.maxBufferedBytes) socket.pause();
      connection.wake?.();
    });
    socket.on('end', () => {
      connection.ended = true;
      connection.wake?.();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      connection.error = toRelayError(error);
      connection.wake?.();
    });
    socket.on('close', () => {
      connection.ended = true;
      connection.wake?.();
    });
    this.connections.set(id, connection);
    return id;
  }

  async send(connectionId: string, data: Uint8Array): Promise<number> {
    const connection = this.get(connectionId);
    if (connection.error) throw connection.error;
    if (connection.socket.destroyed || connection.socket.writableEnded) throw new RelayError('CLOSED');
    await new Promise<void>((resolve, reject) => {
      connection.socket.write(data, (error) => (error ? reject(toRelayError(error)) : resolve()));
    });
    return data.length;
  }

  async receive(connectionId: string, maxBytes: number): Promise<Uint8Array> {
    const connection = this.get(connectionId);
    if (connection.buffered === 0 && !connection.ended && !connection.error) {
      await this.waitForData(connection);
    }
    if (connection.buffered > 0) return this.take(connection, maxBytes);
    if (connection.error) throw connection.error;
    return new Uint8Array(0);
  }

  async close(connectionId: string): Promise<void> {
    const connection = this.connections.get(connectionId);
    if (connection === undefined) return;
    this.connections.delete(connectionId);
    connection.socket.destroy();
    connection.wake?.();
  }

  /** Closes every connection (session end). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.connections.keys()].map((id) => this.close(id)));
  }

  private get(connectionId: string): Connection {
    const connection = this.connections.get(connectionId);
    if (connection === undefined) throw new RelayError('UNKNOWN_CONNECTION');
    return connection;
  }

  private connect(target: RelayTarget): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = new Socket();
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RelayError('TIMEOUT'));
      }, this.connectTimeoutMs);
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        reject(toRelayError(error));
      });
      socket.connect(target.port, target.host, () => {
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
      }, this.receiveTimeoutMs);
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
      const head = connection.chunks[0];
      const take = Math.min(head.length, out.length - filled);
      out.set(head.subarray(0, take), filled);
      filled += take;
      if (take === head.length) connection.chunks.shift();
      else connection.chunks[0] = head.subarray(take);
    }
    connection.buffered -= filled;
    if (connection.buffered < this.maxBufferedBytes && connection.socket.isPaused()) connection.socket.resume();
    return out;
  }
}

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

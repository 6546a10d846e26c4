import { WebSocket } from 'ws';

import type { Logger } from '@payorch/logging';
import { AGENT_CLOSE_CODES, DEFAULT_MAX_FRAME_BYTES } from '@payorch/tunnel';

import { storedConnectorUrl } from '../config';
import { AGENT_VERSION } from '../version';

export interface TunnelClientOptions {
  /** Connector URLs (`wss://host/agent`), tried in turn: a failed dial moves on to the next one. */
  connectors?: string[];
  /** A single connector URL (programmatic callers; same as `connectors: [connector]`). */
  connector?: string;
  credential: string;
  logger: Logger;
  /** First reconnect delay; doubles per failure up to maxDelayMs, with full jitter. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Terminate the socket when no ping arrives from the connector for this long. */
  pingTimeoutMs?: number;
  onStateChange?: (state: { connected: boolean; error: string | null; connector: string }) => void;
  /** Called with every new WebSocket before it opens (the LinkBridge attaches its Multiplexer here). */
  onSocket?: (ws: WebSocket) => void;
  random?: () => number;
}

/** Reconnect delay for attempt n (0-based): full jitter over an exponential ceiling. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Longest `Retry-After` the client obeys: a larger (or hostile) value must not keep a till offline for hours. */
export const RETRY_AFTER_CAP_MS = 10 * 60_000;

/** An IMF-fixdate (RFC 9110 §5.6.7), the only date form a server may send. */
const HTTP_DATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * A refusal's `Retry-After` (delta-seconds or an HTTP date) in ms, at most RETRY_AFTER_CAP_MS; undefined when absent
 * or unreadable (the backoff alone decides then).
 */
export function retryAfterMs(header: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : HTTP_DATE.test(value) ? Date.parse(value) - now : Number.NaN;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(RETRY_AFTER_CAP_MS, Math.max(0, ms));
}

/**
 * Keeps one WebSocket open to a connector: reconnects with exponential backoff and jitter,
 * terminates a silent socket (no ping within pingTimeoutMs), and stops for good when the
 * connector answers 401 (credential revoked: retrying cannot help and would hammer it).
 * With several connector URLs, a dial that fails (refused, timed out, HTTP error other than 401)
 * moves on to the next URL after the backoff delay; a connection that was open and then closed is
 * re-dialled on the same URL first. The backoff counts failed dials in a row, whatever the URL.
 * A tunnel the connector refuses after the upgrade (close 4503 SETUP_FAILED: its database is failing
 * or overloaded) counts as a failed dial too: the backoff keeps growing and the next URL is tried,
 * so a storm of refused agents thins out instead of coming back at once.
 * An upgrade refused with `Retry-After` (429: the connectors' per-credential connect budget, or the proxy's per-address
 * one) is not dialled again before that time, whatever the backoff says: before, the
 * backoff's first draws (0.5–4 s) brought a throttled agent back before its budget had refilled, only to be refused again.
 */
export class TunnelClient {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private index = 0;
  private readonly urls: string[];
  private stopped = false;
  private pingTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly fatal: Promise<Error>;
  private rejectFatal!: (error: Error) => void;

  constructor(private readonly options: TunnelClientOptions) {
    const given = options.connectors?.length ? options.connectors : options.connector ? [options.connector] : [];
    if (!given.length) throw new Error('TunnelClient needs at least one connector URL');
    this.urls = given.map(storedConnectorUrl);
    this.fatal = new Promise((resolve) => (this.rejectFatal = resolve));
  }

  /** Resolves with the reason when the client gives up for good (e.g. 401); runs until stop() otherwise. */
  start(): Promise<Error> {
    this.connect();
    return this.fatal;
  }

  /** The connector URL in use (or dialled next). */
  get connector(): string {
    return this.urls[this.index]!;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearTimeout(this.pingTimer);
    this.ws?.close(1000, 'agent stopping');
  }

  private connect(): void {
    const { logger } = this.options;
    const connector = this.connector;
    let opened = false;
    const failedBefore = this.attempt;
    /** The refusal's `Retry-After`, when the upgrade was answered with one. */
    let notBeforeMs: number | undefined;
    const ws = new WebSocket(connector, {
      headers: { Authorization: `Bearer ${this.options.credential}`, 'X-Payorch-Agent-Version': AGENT_VERSION },
      handshakeTimeout: 15_000,
      // One tunnel frame per message, and the connector sends none larger than the agent's maxFrameBytes (the
      // library's default): a longer message is refused from its header (1009), not buffered (1 MiB before).
      maxPayload: DEFAULT_MAX_FRAME_BYTES,
    });
    this.ws = ws;
    this.options.onSocket?.(ws);
    ws.on('open', () => {
      opened = true;
      this.attempt = 0;
      this.heartbeat();
      logger.info({ connector }, 'connected to connector');
      this.options.onStateChange?.({ connected: true, error: null, connector });
    });
    ws.on('ping', () => this.heartbeat());
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      notBeforeMs = retryAfterMs(res.headers['retry-after']);
      ws.terminate();
      if (status === 401 || status === 403) {
        const error = new Error(`connector refused the credential (HTTP ${status}); re-enroll this agent with a new token`);
        logger.error(error.message);
        this.options.onStateChange?.({ connected: false, error: error.message, connector });
        this.stopped = true;
        this.rejectFatal(error);
      }
    });
    ws.on('error', (err) => logger.warn({ connector, err: err.message }, 'tunnel error'));
    ws.on('close', (code, reason) => {
      if (this.pingTimer) clearTimeout(this.pingTimer);
      this.options.onStateChange?.({ connected: false, error: `closed (${code}${reason.length ? `: ${reason}` : ''})`, connector });
      if (this.stopped) return;
      const refused = code === AGENT_CLOSE_CODES.SETUP_FAILED;
      if (refused) this.attempt = failedBefore;
      // A dial that never opened (or was refused) moves on to the next URL; a connection that worked is re-dialled first.
      if (!opened || refused) this.index = (this.index + 1) % this.urls.length;
      const backoff = backoffDelay(this.attempt++, this.options.baseDelayMs ?? 500, this.options.maxDelayMs ?? 30_000, this.options.random);
      const delay = Math.max(backoff, notBeforeMs ?? 0);
      logger.info({ code, delayMs: delay, next: this.connector }, 'tunnel closed; reconnecting');
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private heartbeat(): void {
    if (this.pingTimer) clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      this.options.logger.warn('no ping from connector; reconnecting');
      this.ws?.terminate();
    }, this.options.pingTimeoutMs ?? 75_000);
  }
}

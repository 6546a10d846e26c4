import { BadMessageBudget, type BadMessageBudgetOptions, RateBudget, type RateBudgetOptions } from './budget';
import { decodeFrame, encodeDataFrame, encodeFrame, truncateReason } from './codec';
import type { HelloRejectCode, WireStreamErrorCode } from './codes';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_HEADER_BYTES,
  MAX_MAX_FRAME_BYTES,
  MAX_STREAM_ID,
  MAX_WINDOW,
  MIN_MAX_FRAME_BYTES,
  SUPPORTED_PROTOCOL_VERSIONS,
} from './constants';
import { mayReceiveControl, type ControlMessage, type TunnelRole } from './control';
import { TunnelProtocolError, TunnelStreamError, type SessionErrorCode } from './errors';
import type { Frame, HelloAckFrame, HelloFrame, OpenFrame, StreamFrame } from './frames';
import { Heartbeat, type HeartbeatHooks, type HeartbeatOptions } from './heartbeat';
import { parseLinkDescriptor, type LinkDescriptor } from './link';
import { Listeners, replay, type Unsubscribe } from './listeners';
import { dataFramePool } from './frame-pool';
import { type OutgoingData, TunnelStream, type StreamHost } from './stream';
import { systemTimers, type TimerApi } from './timers';
import { WS_CLOSE_CODES, type FrameTransport, type TunnelCloseCode, type TunnelCloseInfo } from './transport';

export interface MultiplexerOptions {
  /** The agent sends HELLO and opens odd stream ids; the connector answers and opens even ids. */
  role: TunnelRole;
  /** This side's software and version, sent in HELLO / HELLO_ACK (printable ASCII, <= 64). */
  software: string;
  /** Protocol versions this side speaks, ascending. Default: every version of this library. */
  supportedVersions?: readonly number[];
  /** Optional features offered; the session uses the intersection with the peer's. */
  capabilities?: readonly string[];
  /** Largest frame this side accepts (header included). Default 64 KiB. */
  maxFrameBytes?: number;
  /** Receive window granted to each new stream. Default 256 KiB. */
  initialWindow?: number;
  /** Streams open at once (both directions). Default 256. */
  maxStreams?: number;
  /**
   * Bound on the receive windows granted at once, which bounds the bytes buffered for readers. New
   * streams get a smaller window when it is nearly used and are refused below 4 KiB. Default 32 MiB.
   */
  maxReceiveBufferBytes?: number;
  /** Bound on bytes written to all streams and not yet sent. Default 16 MiB. */
  maxSendBufferBytes?: number;
  /** `write()` returns false from this many queued bytes per stream. Default 64 KiB. */
  streamHighWaterMark?: number;
  /** Queued bytes per stream beyond which the stream is reset (writer ignored `false`). Default 1 MiB. */
  streamQueueLimit?: number;
  /** DATA is held back while this many bytes are handed to the transport and unflushed. Default 1 MiB. */
  transportHighWaterMark?: number;
  /**
   * The tunnel is cut (`SEND_OVERFLOW`, socket terminated) when more than this many bytes handed to the
   * transport wait to be flushed as a frame arrives: a peer that keeps sending (PINGs, OPENs) and never reads
   * would otherwise grow this side's socket buffer (its PONGs, OPEN_FAILs) without bound. DATA stops at
   * `transportHighWaterMark` anyway. At least `transportHighWaterMark + maxFrameBytes`; default the larger of
   * 8 MiB and `transportHighWaterMark + 2 × maxFrameBytes`.
   */
  maxTransportUnflushedBytes?: number;
  /** `false` disables heartbeats. Default: every 15 s, dead after 2 missed. */
  heartbeat?: HeartbeatOptions | false;
  /** Time allowed for HELLO / HELLO_ACK, 0 = none. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Time allowed between OPEN and OPEN_OK before the opener resets the stream, 0 = none. Default 30 s. */
  openTimeoutMs?: number;
  /** Protocol errors tolerated before closing the tunnel. Default 10 per minute. */
  badMessageBudget?: BadMessageBudgetOptions;
  /**
   * Frames the peer may send on the connection itself — PING, PONG, CONTROL, the WebSocket's own pings and
   * pongs (`attachWebSocket`) — and OPENs, as a token bucket (`limit` at once, `limit` per `windowMs`); a frame
   * counts one per started 4 KiB (a 64 KiB CONTROL message is 16). One more closes the tunnel
   * (`PROTOCOL_ERROR`, ws 1002). Stream frames are bounded by flow control instead; these cost this side work
   * (a PONG or OPEN_FAIL to send, JSON to parse) whatever their rate. `false` (default): no bound. The
   * connector sets one (TUNNEL_CONNECTION_FRAMES_PER_MINUTE).
   */
  connectionFrameBudget?: RateBudgetOptions | false;
  /**
   * Connector only: inspect an acceptable HELLO (e.g. refuse outdated agents). Return a rejection
   * to answer HELLO_ACK with `POLICY` and close.
   */
  validateHello?: (hello: HelloFrame) => { message: string } | undefined;
  timers?: TimerApi;
}

/** What both sides agreed on in the handshake. */
export interface TunnelSession {
  version: number;
  peerSoftware: string;
  capabilities: readonly string[];
  /** Largest frame the peer accepts; this side never sends more. */
  peerMaxFrameBytes: number;
}

export type MultiplexerState = 'idle' | 'handshaking' | 'open' | 'closed';

/** An OPEN from the peer, waiting for the application's answer. */
export interface IncomingOpen {
  readonly streamId: number;
  readonly link: LinkDescriptor;
  readonly terminalId: string | undefined;
  /** Sends OPEN_OK and returns the stream (already closed if the peer gave up meanwhile). */
  accept(): TunnelStream;
  /** Sends OPEN_FAIL. */
  reject(code: WireStreamErrorCode, message?: string): void;
  /**
   * `listener` runs once if the peer gives up on this OPEN before it was answered (its RESET: an open timeout, a
   * cancel; or the tunnel closing), so work started for it (listening for a terminal, a connect) can stop.
   */
  onCancel(listener: (reason: string) => void): () => void;
}

export interface TunnelStats {
  state: MultiplexerState;
  streams: number;
  sendQueuedBytes: number;
  receiveCommittedBytes: number;
  transportUnflushedBytes: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  protocolErrors: number;
  rttMs: number | undefined;
}

const MIN_GRANT = 4096;
/** Frames counted against `connectionFrameBudget`: the connection's own, and OPENs (each answered, none flow-controlled). */
const BUDGETED_FRAMES: ReadonlySet<Frame['type']> = new Set(['PING', 'PONG', 'CONTROL', 'OPEN']);
/** A budgeted frame counts one per started this many bytes (JSON to parse grows with them). */
const BUDGET_UNIT_BYTES = 4096;

const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalMs: 15_000, maxMissed: 2 };
const DEFAULT_BAD_MESSAGE_BUDGET: BadMessageBudgetOptions = { limit: 10, windowMs: 60_000 };

/**
 * The stream table and ready set of a tunnel without streams: shared and empty (an idle tunnel holds no Map or Set
 * of its own; a connector holds thousands of idle tunnels). Never written: the first stream gets its own.
 */
const NO_STREAMS: ReadonlyMap<number, TunnelStream> = new Map();
const NONE_READY: ReadonlySet<TunnelStream> = new Set();
const NO_CAPABILITIES: readonly string[] = Object.freeze([]);

/** Peer software names seen, to share one string per name across tunnels (thousands of agents report a handful). */
const peerSoftwareNames = new Map<string, string>();
function sharedPeerSoftware(name: string): string {
  const known = peerSoftwareNames.get(name);
  if (known !== undefined) return known;
  if (peerSoftwareNames.size < 256) peerSoftwareNames.set(name, name);
  return name;
}

/** MultiplexerOptions resolved (defaults applied) and checked. */
interface Settings {
  readonly software: string;
  readonly supportedVersions: readonly number[];
  readonly capabilities: readonly string[];
  readonly maxFrameBytes: number;
  readonly initialWindow: number;
  readonly maxStreams: number;
  readonly maxReceiveBufferBytes: number;
  readonly maxSendBufferBytes: number;
  readonly streamHighWaterMark: number;
  readonly streamQueueLimit: number;
  readonly transportHighWaterMark: number;
  readonly maxTransportUnflushedBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly openTimeoutMs: number;
  readonly validateHello: MultiplexerOptions['validateHello'];
  readonly timers: TimerApi;
  readonly budgetOptions: BadMessageBudgetOptions;
  readonly frameBudget: RateBudgetOptions | false;
  readonly heartbeat: HeartbeatOptions | false;
}

/**
 * Settings by options object: a connector passes the same options to every tunnel it accepts, and an idle tunnel
 * then holds one reference instead of sixteen fields (issue 19, memory per idle agent). The options are read once:
 * a caller must not change an options object it has used.
 */
const settingsByOptions = new WeakMap<MultiplexerOptions, Settings>();

function settingsOf(options: MultiplexerOptions): Settings {
  const cached = settingsByOptions.get(options);
  if (cached !== undefined) return cached;
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const transportHighWaterMark = options.transportHighWaterMark ?? 1024 * 1024;
  const settings: Settings = {
    software: options.software,
    supportedVersions: options.supportedVersions ?? SUPPORTED_PROTOCOL_VERSIONS,
    capabilities: options.capabilities ?? NO_CAPABILITIES,
    maxFrameBytes,
    initialWindow: options.initialWindow ?? 256 * 1024,
    maxStreams: options.maxStreams ?? 256,
    maxReceiveBufferBytes: options.maxReceiveBufferBytes ?? 32 * 1024 * 1024,
    maxSendBufferBytes: options.maxSendBufferBytes ?? 16 * 1024 * 1024,
    streamHighWaterMark: options.streamHighWaterMark ?? 64 * 1024,
    streamQueueLimit: options.streamQueueLimit ?? 1024 * 1024,
    transportHighWaterMark,
    maxTransportUnflushedBytes: options.maxTransportUnflushedBytes ?? Math.max(8 * 1024 * 1024, transportHighWaterMark + 2 * maxFrameBytes),
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    openTimeoutMs: options.openTimeoutMs ?? 30_000,
    validateHello: options.validateHello,
    timers: options.timers ?? systemTimers,
    budgetOptions: options.badMessageBudget ?? DEFAULT_BAD_MESSAGE_BUDGET,
    frameBudget: options.connectionFrameBudget ?? false,
    heartbeat: options.heartbeat ?? DEFAULT_HEARTBEAT,
  };
  checkRange('maxFrameBytes', settings.maxFrameBytes, MIN_MAX_FRAME_BYTES, MAX_MAX_FRAME_BYTES);
  checkRange('initialWindow', settings.initialWindow, MIN_GRANT, MAX_WINDOW);
  checkRange('streamHighWaterMark', settings.streamHighWaterMark, 1, settings.streamQueueLimit);
  checkRange('maxTransportUnflushedBytes', settings.maxTransportUnflushedBytes, transportHighWaterMark + maxFrameBytes, Number.MAX_SAFE_INTEGER);
  if (settings.frameBudget) {
    checkRange('connectionFrameBudget.limit', settings.frameBudget.limit, 1, Number.MAX_SAFE_INTEGER);
    checkRange('connectionFrameBudget.windowMs', settings.frameBudget.windowMs, 1, Number.MAX_SAFE_INTEGER);
  }
  settingsByOptions.set(options, settings);
  return settings;
}

/**
 * One tunnel: many streams over one message transport (docs/tunnel.md). Both ends use this class
 * with different roles. Feed it inbound messages with `receive()` and report the transport's close
 * with `handleTransportClosed()`; `attachWebSocket()` does both for a `ws` WebSocket.
 */
export class Multiplexer implements StreamHost, HeartbeatHooks {
  readonly role: TunnelRole;

  private currentState: MultiplexerState = 'idle';
  private negotiated: TunnelSession | undefined;
  private closeInfo: TunnelCloseInfo | undefined;

  /** The options resolved and checked: one object for every tunnel made with the same options object. */
  private readonly settings: Settings;
  /** Made on the first protocol error (most tunnels never have one). */
  private budget: BadMessageBudget | undefined;
  /** Made on the first frame on the connection once open, when `connectionFrameBudget` is set. */
  private frameBudget: RateBudget | undefined;
  private readonly heartbeat: Heartbeat | undefined;

  /** NO_STREAMS while the tunnel has none (memory of idle tunnels): replaced in createStream, restored in forget. */
  private streams = NO_STREAMS as Map<number, TunnelStream>;
  /** Streams with sendable output, in round-robin order; NONE_READY when empty (markReady, flush, forget). */
  private ready = NONE_READY as Set<TunnelStream>;
  private nextLocalId: number;
  private lastPeerId = 0;
  private peerMaxFrameBytes = MIN_MAX_FRAME_BYTES;
  private flushing = false;
  private handshakeTimer: unknown;

  private sendQueued = 0;
  private receiveCommitted = 0;
  private transportUnflushed = 0;
  private framesIn = 0;
  private framesOut = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private protocolErrors = 0;

  // Listener sets are made on the first listener and the once-only ones dropped when they fired: an idle tunnel
  // holds none (its ready and close are replayed from `negotiated` / `closeInfo` to a listener added later).
  private readyListeners: Listeners<[TunnelSession]> | undefined;
  private closeListeners: Listeners<[TunnelCloseInfo]> | undefined;
  private controlListeners: Listeners<[ControlMessage]> | undefined;
  private protocolErrorListeners: Listeners<[TunnelProtocolError]> | undefined;
  private openHandler: ((request: IncomingOpen) => void) | undefined;

  constructor(
    private readonly transport: FrameTransport,
    options: MultiplexerOptions,
  ) {
    this.role = options.role;
    this.settings = settingsOf(options);
    this.nextLocalId = this.role === 'agent' ? 1 : 2;
    if (this.settings.heartbeat) this.heartbeat = new Heartbeat(this.settings.heartbeat, this.settings.timers, this);
  }

  // ---- the host of its streams and heartbeat (@internal: methods, not closures per tunnel, for idle memory) ----

  /** @internal StreamHost */
  get maxSendBufferBytes(): number {
    return this.settings.maxSendBufferBytes;
  }

  /** @internal StreamHost */
  sendQueuedBytes(): number {
    return this.sendQueued;
  }

  /** @internal StreamHost */
  sendStreamFrame(frame: StreamFrame): void {
    this.send(frame);
  }

  /** @internal StreamHost */
  markReady(stream: TunnelStream): void {
    if (this.ready === NONE_READY) this.ready = new Set();
    this.ready.add(stream);
    this.flush();
  }

  /** @internal StreamHost */
  adjustSendQueued(delta: number): void {
    this.sendQueued += delta;
  }

  /** @internal StreamHost */
  streamFinished(stream: TunnelStream): void {
    this.forget(stream);
  }

  /** @internal HeartbeatHooks */
  heartbeatPing(timestamp: number): void {
    this.send({ type: 'PING', timestamp });
  }

  /** @internal HeartbeatHooks */
  heartbeatLost(silentMs: number): void {
    this.shutdown('HEARTBEAT_TIMEOUT', `no frame from the peer for ${silentMs} ms`);
  }

  get state(): MultiplexerState {
    return this.currentState;
  }

  /** The negotiated session once `open`. */
  get session(): TunnelSession | undefined {
    return this.negotiated;
  }

  get stats(): TunnelStats {
    return {
      state: this.currentState,
      streams: this.streams.size,
      sendQueuedBytes: this.sendQueued,
      receiveCommittedBytes: this.receiveCommitted,
      transportUnflushedBytes: this.transportUnflushed,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      protocolErrors: this.protocolErrors,
      rttMs: this.heartbeat?.rttMs,
    };
  }

  /** The handshake completed; streams and control messages may flow. */
  onReady(callback: (session: TunnelSession) => void): Unsubscribe {
    const session = this.negotiated;
    if (session !== undefined) return replay(callback, session);
    return (this.readyListeners ??= new Listeners()).add(callback);
  }

  /** Fires once, after every stream was closed with `TUNNEL_CLOSED`. */
  onClose(callback: (info: TunnelCloseInfo) => void): Unsubscribe {
    const info = this.closeInfo;
    if (info !== undefined) return replay(callback, info);
    return (this.closeListeners ??= new Listeners()).add(callback);
  }

  onControl(callback: (message: ControlMessage) => void): Unsubscribe {
    return (this.controlListeners ??= new Listeners()).add(callback);
  }

  /** Every protocol error counted against the bad-message budget (for logs and metrics). */
  onProtocolError(callback: (error: TunnelProtocolError) => void): Unsubscribe {
    return (this.protocolErrorListeners ??= new Listeners()).add(callback);
  }

  /** Handles the peer's OPENs. Without a handler every OPEN is refused with `UNSUPPORTED_LINK`. */
  setOpenHandler(handler: ((request: IncomingOpen) => void) | undefined): void {
    this.openHandler = handler;
  }

  /** Starts the handshake: the agent sends HELLO, both sides arm the handshake timeout. */
  start(): void {
    if (this.currentState !== 'idle') throw new Error(`start() in state ${this.currentState}`);
    this.currentState = 'handshaking';
    if (this.settings.handshakeTimeoutMs > 0) {
      this.handshakeTimer = this.settings.timers.setTimeout(
        () => this.shutdown('HANDSHAKE_TIMEOUT', `no handshake within ${this.settings.handshakeTimeoutMs} ms`),
        this.settings.handshakeTimeoutMs,
      );
    }
    if (this.role === 'agent') {
      this.send({
        type: 'HELLO',
        versions: [...this.settings.supportedVersions],
        maxFrameBytes: this.settings.maxFrameBytes,
        software: this.settings.software,
        capabilities: [...this.settings.capabilities],
      });
    }
  }

  /**
   * Opens a stream to `link`. Writes are queued until the peer's OPEN_OK; OPEN_FAIL or the open
   * timeout close the stream with the reason.
   * @throws TunnelStreamError `NOT_READY` / `TUNNEL_CLOSED` / `LIMIT_EXCEEDED`;
   *         TunnelProtocolError `INVALID_LINK` for a descriptor that breaks the schema.
   */
  openStream(link: LinkDescriptor, options: { terminalId?: string } = {}): TunnelStream {
    if (this.currentState !== 'open') {
      const code = this.currentState === 'closed' ? 'TUNNEL_CLOSED' : 'NOT_READY';
      throw new TunnelStreamError(code, `tunnel is ${this.currentState}`, false);
    }
    const checkedLink = parseLinkDescriptor(link);
    if (this.streams.size >= this.settings.maxStreams) {
      throw new TunnelStreamError('LIMIT_EXCEEDED', `${this.settings.maxStreams} streams open`, false);
    }
    if (this.nextLocalId > MAX_STREAM_ID) throw new TunnelStreamError('LIMIT_EXCEEDED', 'stream ids exhausted', false);
    const window = this.reserveWindow();
    if (window === undefined) throw new TunnelStreamError('LIMIT_EXCEEDED', 'receive buffer budget exhausted', false);
    const id = this.nextLocalId;
    this.nextLocalId += 2;
    const stream = this.createStream(id, checkedLink, options.terminalId, 'local', 'opening', window, 0);
    const frame: OpenFrame = { type: 'OPEN', streamId: id, window, link: checkedLink };
    if (options.terminalId !== undefined) frame.terminalId = options.terminalId;
    this.send(frame);
    if (this.settings.openTimeoutMs > 0) {
      const timer = this.settings.timers.setTimeout(() => {
        if (stream.state === 'opening') stream.destroy('TIMEOUT', `no OPEN_OK within ${this.settings.openTimeoutMs} ms`);
      }, this.settings.openTimeoutMs);
      const clear = () => this.settings.timers.clearTimeout(timer);
      stream.onOpen(clear);
      stream.onClose(clear);
    }
    return stream;
  }

  /**
   * `openStream` as a promise that settles on OPEN_OK (resolve) or on OPEN_FAIL / timeout / teardown (reject). Its close
   * listener goes once the stream is open: it used to stay, and to build a TunnelStreamError (a stack trace) for a
   * promise long settled when the open stream closed — one per terminal link probe in a reconnect storm (issue 19).
   */
  open(link: LinkDescriptor, options: { terminalId?: string } = {}): Promise<TunnelStream> {
    return new Promise((resolve, reject) => {
      const stream = this.openStream(link, options);
      const offClose = stream.onClose((error) => reject(error ?? new TunnelStreamError('CANCELLED', 'closed before open', false, stream.id)));
      stream.onOpen(() => {
        offClose();
        resolve(stream);
      });
    });
  }

  /**
   * Sends a control message. Returns `false` (message dropped) when the tunnel is not open.
   * @throws TunnelProtocolError `INVALID_CONTROL` or `FRAME_TOO_LARGE` for a message that cannot be sent.
   */
  sendControl(message: ControlMessage): boolean {
    if (this.currentState !== 'open') return false;
    this.send({ type: 'CONTROL', message });
    return true;
  }

  /** Feeds one inbound transport message (one frame). Text messages are protocol errors. */
  receive(message: Uint8Array, isBinary = true): void {
    if (this.currentState === 'closed') return;
    if (this.currentState === 'idle') throw new Error('receive() before start()');
    this.framesIn += 1;
    this.bytesIn += message.length;
    if (this.transportUnflushed > this.settings.maxTransportUnflushedBytes) {
      // Checked as a frame arrives (never inside a stream's own call): what a peer that does not read makes this side
      // send (PONGs, OPEN_FAILs) ends here, with its tunnel. The close frame could not get through: terminated.
      this.shutdown('SEND_OVERFLOW', `${this.transportUnflushed} bytes sent and not flushed: the peer does not read`, 'terminate');
      return;
    }
    this.heartbeat?.markAlive();
    if (!isBinary) {
      this.protocolError(new TunnelProtocolError('TEXT_MESSAGE', 'text message on a binary tunnel', 'drop-frame'));
      return;
    }
    const event = decodeFrame(message, { maxFrameBytes: this.settings.maxFrameBytes });
    if (event.kind === 'garbage') {
      this.handleBadFrame(event.error);
      return;
    }
    if (this.currentState === 'handshaking') {
      this.handleHandshake(event.frame);
      return;
    }
    this.dispatch(event.frame, message.length);
  }

  /** The transport closed under us: every stream closes with `TUNNEL_CLOSED`. */
  handleTransportClosed(details: { code?: number; reason?: string } = {}): void {
    const reason = details.reason ? ` ${details.reason}` : '';
    this.shutdown('TRANSPORT_CLOSED', `transport closed (${details.code ?? 'no code'})${reason}`, 'none');
  }

  /**
   * The transport received one of its own control frames (a WebSocket ping or pong): counted against the
   * connection frame budget like the tunnel's PING and PONG (`attachWebSocket` reports them).
   */
  noteTransportControlFrame(kind: string): void {
    if (this.currentState === 'open') this.spendConnectionFrame(kind, 1);
  }

  /** Closes the tunnel and the transport; every stream closes with `TUNNEL_CLOSED`. */
  close(message = 'closed by application'): void {
    this.shutdown('LOCAL_CLOSE', message);
  }

  // ---- handshake (docs/tunnel.md §8) ----

  private handleHandshake(frame: Frame): void {
    if (this.role === 'connector' && frame.type === 'HELLO') this.answerHello(frame);
    else if (this.role === 'agent' && frame.type === 'HELLO_ACK') this.completeHandshake(frame);
    else this.shutdown('HANDSHAKE_FAILED', `${frame.type} before the handshake completed`);
  }

  /** [T8-1] the connector picks the highest version both sides support. */
  private answerHello(hello: HelloFrame): void {
    const version = [...hello.versions].reverse().find((candidate) => this.settings.supportedVersions.includes(candidate));
    if (version === undefined) {
      this.rejectHello('NO_COMMON_VERSION', `no common protocol version: peer ${hello.versions.join(',')}, here ${this.settings.supportedVersions.join(',')}`);
      return;
    }
    const refusal = this.settings.validateHello?.(hello);
    if (refusal) {
      this.rejectHello('POLICY', refusal.message);
      return;
    }
    const capabilities = hello.capabilities.filter((capability) => this.settings.capabilities.includes(capability));
    this.send({
      type: 'HELLO_ACK',
      accepted: true,
      version,
      maxFrameBytes: this.settings.maxFrameBytes,
      software: this.settings.software,
      capabilities,
    });
    this.becomeOpen({
      version,
      peerSoftware: sharedPeerSoftware(hello.software),
      capabilities: capabilities.length === 0 ? NO_CAPABILITIES : capabilities,
      peerMaxFrameBytes: hello.maxFrameBytes,
    });
  }

  private rejectHello(code: HelloRejectCode, message: string): void {
    const reason = truncateReason(message);
    this.send({
      type: 'HELLO_ACK',
      accepted: false,
      code,
      versions: [...this.settings.supportedVersions],
      message: reason,
    });
    this.shutdown('VERSION_REJECTED', `${code}: ${reason}`);
  }

  /** [T8-2] the agent accepts only a version and capabilities it offered. */
  private completeHandshake(ack: HelloAckFrame): void {
    if (!ack.accepted) {
      this.shutdown('VERSION_REJECTED', `${ack.code}: ${ack.message} (peer supports ${ack.versions.join(',') || 'none'})`);
      return;
    }
    if (!this.settings.supportedVersions.includes(ack.version)) {
      this.shutdown('HANDSHAKE_FAILED', `peer chose version ${ack.version}, not offered`);
      return;
    }
    if (!ack.capabilities.every((capability) => this.settings.capabilities.includes(capability))) {
      this.shutdown('HANDSHAKE_FAILED', 'peer chose a capability that was not offered');
      return;
    }
    this.becomeOpen({
      version: ack.version,
      peerSoftware: sharedPeerSoftware(ack.software),
      capabilities: ack.capabilities.length === 0 ? NO_CAPABILITIES : ack.capabilities,
      peerMaxFrameBytes: ack.maxFrameBytes,
    });
  }

  private becomeOpen(session: TunnelSession): void {
    if (this.handshakeTimer !== undefined) this.settings.timers.clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.negotiated = session;
    this.peerMaxFrameBytes = session.peerMaxFrameBytes;
    this.currentState = 'open';
    this.heartbeat?.start();
    const listeners = this.readyListeners;
    this.readyListeners = undefined;
    listeners?.emit(session);
  }

  // ---- frames of an open tunnel ----

  private dispatch(frame: Frame, bytes: number): void {
    if (BUDGETED_FRAMES.has(frame.type) && !this.spendConnectionFrame(frame.type, Math.ceil(bytes / BUDGET_UNIT_BYTES))) return;
    switch (frame.type) {
      case 'HELLO':
      case 'HELLO_ACK':
        this.protocolError(new TunnelProtocolError('UNEXPECTED_FRAME', `${frame.type} after the handshake`, 'drop-frame'));
        return;
      case 'PING':
        this.send({ type: 'PONG', timestamp: frame.timestamp });
        return;
      case 'PONG':
        this.heartbeat?.handlePong(frame.timestamp);
        return;
      case 'CONTROL':
        if (!mayReceiveControl(this.role, frame.message.type)) {
          this.protocolError(new TunnelProtocolError('CONTROL_DIRECTION', `${frame.message.type} sent to the ${this.role}`, 'drop-frame'));
          return;
        }
        this.controlListeners?.emit(frame.message);
        return;
      case 'OPEN':
        this.handleOpen(frame);
        return;
      default:
        this.dispatchStreamFrame(frame);
    }
  }

  private dispatchStreamFrame(frame: Exclude<StreamFrame, OpenFrame>): void {
    const stream = this.streams.get(frame.streamId);
    if (!stream) {
      // [T5-3] frames racing a RESET or a local close are ignored; never-opened ids are errors.
      if (!this.isRetired(frame.streamId)) {
        this.protocolError(
          new TunnelProtocolError('UNKNOWN_STREAM', `${frame.type} for stream ${frame.streamId}`, 'drop-frame', {
            streamId: frame.streamId,
            frameType: frame.type,
          }),
        );
      }
      return;
    }
    let violation: SessionErrorCode | undefined;
    switch (frame.type) {
      case 'OPEN_OK':
        violation = stream.handleOpenOk(frame.window);
        break;
      case 'OPEN_FAIL':
        violation = stream.handleOpenFail(frame.code, frame.message);
        break;
      case 'DATA':
        violation = stream.handleData(frame.data);
        break;
      case 'CREDIT':
        violation = stream.handleCredit(frame.increment);
        break;
      case 'CLOSE':
        violation = stream.handleClose();
        break;
      case 'RESET':
        stream.handleReset(frame.code, frame.message);
        break;
    }
    if (violation) {
      const message = `${frame.type} on stream ${frame.streamId} in state ${stream.state}: ${violation}`;
      stream.destroy(violation === 'FLOW_CONTROL_VIOLATION' ? 'FLOW_CONTROL_ERROR' : 'PROTOCOL_ERROR', message);
      this.protocolError(
        new TunnelProtocolError(violation, message, 'fail-stream', {
          streamId: frame.streamId,
          frameType: frame.type,
        }),
      );
    }
  }

  /** [T5-1] peer stream ids have the peer's parity and grow strictly. */
  private handleOpen(frame: OpenFrame): void {
    const id = frame.streamId;
    if (!this.isNewPeerId(id)) {
      this.protocolError(
        new TunnelProtocolError('BAD_STREAM_ID_ALLOCATION', `OPEN for stream ${id}`, 'drop-frame', {
          streamId: id,
          frameType: 'OPEN',
        }),
      );
      return;
    }
    this.lastPeerId = id;
    const refuse = (code: WireStreamErrorCode, message: string) => this.send({ type: 'OPEN_FAIL', streamId: id, code, message });
    const handler = this.openHandler;
    if (!handler) return refuse('UNSUPPORTED_LINK', 'no open handler on this side');
    if (this.streams.size >= this.settings.maxStreams) return refuse('LIMIT_EXCEEDED', `${this.settings.maxStreams} streams open`);
    const window = this.reserveWindow();
    if (window === undefined) return refuse('LIMIT_EXCEEDED', 'receive buffer budget exhausted');
    const stream = this.createStream(id, frame.link, frame.terminalId, 'remote', 'pending', window, frame.window);
    let answered = false;
    const answer = () => {
      if (answered) throw new Error(`OPEN of stream ${id} already answered`);
      answered = true;
    };
    handler({
      streamId: id,
      link: frame.link,
      terminalId: frame.terminalId,
      accept: () => {
        answer();
        if (stream.state === 'pending') stream.accept();
        return stream;
      },
      reject: (code, message = '') => {
        answer();
        if (stream.state === 'pending') stream.reject(code, truncateReason(message));
      },
      onCancel: (listener) =>
        stream.onClose((error) => {
          if (!answered) listener(error ? `${error.code}: ${error.message}` : 'closed');
        }),
    });
  }

  private handleBadFrame(error: TunnelProtocolError): void {
    if (this.currentState === 'handshaking') {
      this.shutdown('HANDSHAKE_FAILED', `${error.code}: ${error.message}`);
      return;
    }
    if (error.reaction === 'fail-stream' && error.details.streamId !== undefined) {
      const id = error.details.streamId;
      const message = truncateReason(`${error.code}: ${error.message}`);
      if (error.details.frameType === 'OPEN' && this.isNewPeerId(id)) {
        this.lastPeerId = id;
        this.send({ type: 'OPEN_FAIL', streamId: id, code: 'PROTOCOL_ERROR', message });
      } else {
        this.streams.get(id)?.destroy('PROTOCOL_ERROR', message);
      }
    }
    this.protocolError(error);
  }

  /** One frame on the connection (or an OPEN), `cost` units, against `connectionFrameBudget`; `false` once it closed the tunnel. */
  private spendConnectionFrame(kind: string, cost: number): boolean {
    const options = this.settings.frameBudget;
    if (!options) return true;
    const now = this.settings.timers.now();
    if ((this.frameBudget ??= new RateBudget(options, now)).spend(now, Math.min(cost, options.limit))) return true;
    this.shutdown('PROTOCOL_ERROR', `connection frame budget exhausted: more than ${options.limit} frames per ${options.windowMs} ms (last ${kind})`);
    return false;
  }

  private protocolError(error: TunnelProtocolError): void {
    this.protocolErrors += 1;
    this.protocolErrorListeners?.emit(error);
    if (this.currentState === 'open' && !(this.budget ??= new BadMessageBudget(this.settings.budgetOptions)).spend(this.settings.timers.now())) {
      this.shutdown('PROTOCOL_ERROR', `bad-message budget exhausted, last ${error.code}: ${error.message}`);
    }
  }

  // ---- streams ----

  private createStream(
    id: number,
    link: LinkDescriptor,
    terminalId: string | undefined,
    initiator: 'local' | 'remote',
    state: 'opening' | 'pending',
    grantedWindow: number,
    sendCredit: number,
  ): TunnelStream {
    const stream = new TunnelStream({
      id,
      link,
      terminalId,
      initiator,
      state,
      grantedWindow,
      sendCredit,
      highWaterMark: this.settings.streamHighWaterMark,
      queueLimit: this.settings.streamQueueLimit,
      host: this,
    });
    if (this.streams === NO_STREAMS) this.streams = new Map();
    this.streams.set(id, stream);
    return stream;
  }

  /** [T6-4] the windows granted at once never exceed maxReceiveBufferBytes. */
  private reserveWindow(): number | undefined {
    const window = Math.min(this.settings.initialWindow, this.settings.maxReceiveBufferBytes - this.receiveCommitted);
    if (window < Math.min(MIN_GRANT, this.settings.initialWindow)) return undefined;
    this.receiveCommitted += window;
    return window;
  }

  private forget(stream: TunnelStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.ready.delete(stream);
    this.receiveCommitted -= stream.grantedWindow;
    // The last stream gone: back to the shared empty table and set (an idle tunnel holds neither).
    if (this.streams.size === 0) this.streams = NO_STREAMS as Map<number, TunnelStream>;
    if (this.ready.size === 0) this.ready = NONE_READY as Set<TunnelStream>;
  }

  private isLocalId(id: number): boolean {
    return id % 2 === (this.role === 'agent' ? 1 : 0);
  }

  private isNewPeerId(id: number): boolean {
    return !this.isLocalId(id) && id > this.lastPeerId;
  }

  private isRetired(id: number): boolean {
    return this.isLocalId(id) ? id < this.nextLocalId : id <= this.lastPeerId;
  }

  // ---- sending ----

  /**
   * Sends DATA round-robin over the ready streams, one frame per stream per turn, while the
   * transport has room ([T6-5]): a stream without credit leaves the others unaffected.
   */
  private flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      const maxPayload = Math.min(this.settings.maxFrameBytes, this.peerMaxFrameBytes) - FRAME_HEADER_BYTES;
      while (this.currentState === 'open' && this.ready.size > 0 && this.transportUnflushed < this.settings.transportHighWaterMark) {
        const stream = this.ready.values().next().value as TunnelStream;
        this.ready.delete(stream);
        const frame = stream.nextFrame(maxPayload);
        if (frame?.type === 'DATA_PARTS') this.sendData(frame, maxPayload);
        else if (frame) this.send(frame);
        if (stream.hasOutput) (this.ready === NONE_READY ? (this.ready = new Set()) : this.ready).add(stream);
      }
    } finally {
      this.flushing = false;
      if (this.ready.size === 0) this.ready = NONE_READY as Set<TunnelStream>;
    }
  }

  private send(frame: Frame): void {
    if (this.currentState === 'closed' || this.currentState === 'idle') return;
    this.sendBytes(encodeFrame(frame, this.peerMaxFrameBytes));
  }

  /**
   * DATA: the stream's queued chunks copied once into the frame. A full-size frame over a transport that
   * releases it on flush goes into a recycled buffer and back to the pool afterwards (a bulk transfer's
   * frames are all full-size; see FramePool).
   */
  private sendData(data: OutgoingData, maxPayload: number): void {
    const recycle = this.transport.releasesOnFlush === true && data.length === maxPayload;
    const bytes = encodeDataFrame(
      data.streamId,
      data.parts,
      data.length,
      this.peerMaxFrameBytes,
      recycle ? dataFramePool.take(FRAME_HEADER_BYTES + maxPayload) : undefined,
    );
    this.sendBytes(bytes, recycle);
  }

  private sendBytes(bytes: Uint8Array, recycle = false): void {
    if (this.currentState === 'closed' || this.currentState === 'idle') return;
    this.framesOut += 1;
    this.bytesOut += bytes.length;
    this.transportUnflushed += bytes.length;
    this.transport.send(bytes, () => {
      this.transportUnflushed -= bytes.length;
      if (recycle) dataFramePool.give(bytes);
      if (this.ready.size > 0 && this.transportUnflushed < this.settings.transportHighWaterMark) this.flush();
    });
  }

  // ---- teardown (docs/tunnel.md §5.4) ----

  private shutdown(
    code: TunnelCloseCode,
    message: string,
    transportAction: 'close' | 'terminate' | 'none' = code === 'HEARTBEAT_TIMEOUT' ? 'terminate' : 'close',
  ): void {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    const info: TunnelCloseInfo = { code, message };
    this.closeInfo = info;
    if (this.handshakeTimer !== undefined) this.settings.timers.clearTimeout(this.handshakeTimer);
    this.heartbeat?.stop();
    this.ready = NONE_READY as Set<TunnelStream>;
    for (const stream of [...this.streams.values()]) {
      stream.teardown(new TunnelStreamError('TUNNEL_CLOSED', `tunnel closed: ${code}: ${message}`, false, stream.id));
    }
    this.streams = NO_STREAMS as Map<number, TunnelStream>;
    if (transportAction === 'terminate' && this.transport.terminate) this.transport.terminate();
    else if (transportAction !== 'none') this.transport.close(WS_CLOSE_CODES[code], truncateWsReason(`${code}: ${message}`));
    const listeners = this.closeListeners;
    this.closeListeners = undefined;
    // Once closed, nothing is delivered: the others are dropped too.
    this.readyListeners = this.controlListeners = this.protocolErrorListeners = undefined;
    listeners?.emit(info);
  }

  /** Why the tunnel closed, once `closed`. */
  get closeReason(): TunnelCloseInfo | undefined {
    return this.closeInfo;
  }
}

function checkRange(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer in ${min}..${max}`);
}

/** RFC 6455 §5.5: a close reason fits in 123 bytes of UTF-8. */
function truncateWsReason(reason: string): string {
  return Buffer.byteLength(reason) <= 123
    ? reason
    : `${Buffer.from(reason)
        .subarray(0, 110)
        .toString('utf8')
        .replace(/\uFFFD+$/, '')}...`;
}

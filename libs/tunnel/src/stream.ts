import type { CloseCode, WireStreamErrorCode } from './codes';
import { MAX_WINDOW } from './constants';
import type { SessionErrorCode } from './errors';
import { TunnelStreamError } from './errors';
import type { StreamFrame } from './frames';
import type { LinkDescriptor } from './link';
import { defer, Listeners, type Unsubscribe } from './listeners';

/**
 * - `opening`: opened here, waiting for OPEN_OK (writes are queued);
 * - `pending`: opened by the peer, waiting for the application to accept or reject;
 * - `open`: data flows, each direction until its CLOSE;
 * - `closed`: both directions ended, or RESET, or the tunnel went away.
 */
export type StreamState = 'opening' | 'pending' | 'open' | 'closed';

/** @internal A DATA frame's payload as the queued chunks it is made of (views), `length` bytes in all. */
export interface OutgoingData {
  type: 'DATA_PARTS';
  streamId: number;
  parts: Uint8Array[];
  length: number;
}

/** @internal What a TunnelStream needs from its Multiplexer. */
export interface StreamHost {
  readonly maxSendBufferBytes: number;
  sendQueuedBytes(): number;
  sendStreamFrame(frame: StreamFrame): void;
  /** The stream has DATA or a CLOSE that flow control lets through. */
  markReady(stream: TunnelStream): void;
  adjustSendQueued(delta: number): void;
  streamFinished(stream: TunnelStream): void;
}

/** @internal */
export interface TunnelStreamInit {
  id: number;
  link: LinkDescriptor;
  terminalId: string | undefined;
  initiator: 'local' | 'remote';
  state: 'opening' | 'pending';
  /** Receive window this side grants (sent in OPEN or OPEN_OK). */
  grantedWindow: number;
  /** Send credit from the peer's OPEN (remote streams); 0 until OPEN_OK for local ones. */
  sendCredit: number;
  highWaterMark: number;
  queueLimit: number;
  host: StreamHost;
}

/**
 * One byte stream of the tunnel (docs/tunnel.md §5-§6), a small Duplex-like object. Reading is
 * flow-controlled the Node way: data is delivered to `onData` listeners while the stream flows;
 * `pause()` stops delivery and the bytes stay buffered (at most the granted window), and no CREDIT
 * goes back until they are delivered, so the peer stops sending. Writing returns `false` once
 * `bufferedAmount` reaches the high-water mark; wait for `onDrain` before writing more.
 * Writing far past that (the per-stream limit, or the tunnel-wide send buffer bound) resets the
 * stream with `LIMIT_EXCEEDED` instead of growing memory.
 *
 * `toDuplex()` adapts a TunnelStream to a `node:stream` Duplex for `pipeline()`.
 */
export class TunnelStream {
  readonly id: number;
  readonly link: LinkDescriptor;
  readonly terminalId: string | undefined;
  /** `local` when this side sent OPEN. */
  readonly initiator: 'local' | 'remote';

  private currentState: StreamState;
  private readonly host: StreamHost;
  private readonly highWaterMark: number;
  private readonly queueLimit: number;

  // send direction
  private readonly sendQueue: Uint8Array[] = [];
  private queuedBytes = 0;
  private sendCredit: number;
  private endCode: CloseCode | undefined;
  private endMessage = '';
  private closeSent = false;
  /** Waiting for CLOSE to go out (`end`'s `onSent`); made on first use. */
  private endSent: Array<() => void> | undefined;
  private needDrain = false;

  // receive direction
  /** @internal */
  readonly grantedWindow: number;
  private readonly creditThreshold: number;
  private receiveWindow: number;
  private readonly receiveBuffer: Uint8Array[] = [];
  private receiveBuffered = 0;
  private pendingCredit = 0;
  private paused = false;
  private remoteEnded = false;
  private deliveryScheduled = false;

  private readonly openListeners = new Listeners<[]>(true);
  private readonly dataListeners = new Listeners<[Uint8Array]>();
  private readonly endListeners = new Listeners<[]>(true);
  private readonly drainListeners = new Listeners<[]>();
  private readonly closeListeners = new Listeners<[TunnelStreamError | undefined]>(true);

  /** @internal Created by the Multiplexer only. */
  constructor(init: TunnelStreamInit) {
    this.id = init.id;
    this.link = init.link;
    this.terminalId = init.terminalId;
    this.initiator = init.initiator;
    this.currentState = init.state;
    this.host = init.host;
    this.highWaterMark = init.highWaterMark;
    this.queueLimit = init.queueLimit;
    this.sendCredit = init.sendCredit;
    this.grantedWindow = init.grantedWindow;
    this.receiveWindow = init.grantedWindow;
    this.creditThreshold = Math.max(1, Math.floor(init.grantedWindow / 4));
  }

  get state(): StreamState {
    return this.currentState;
  }

  /** `false` after `end()`, `destroy()` or close. */
  get writable(): boolean {
    return this.currentState !== 'closed' && this.endCode === undefined;
  }

  /** Bytes written but not yet sent (waiting for credit or the transport). */
  get bufferedAmount(): number {
    return this.queuedBytes;
  }

  /** The most bytes `write` queues before it resets the stream with `LIMIT_EXCEEDED` (the multiplexer's `streamQueueLimit`). */
  get writeLimit(): number {
    return this.queueLimit;
  }

  /** Bytes received but not yet delivered (paused, or no data listener yet). */
  get readableLength(): number {
    return this.receiveBuffered;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  onOpen(callback: () => void): Unsubscribe {
    return this.openListeners.add(callback);
  }

  /** Adding a data listener starts the flow (bytes buffered before are delivered first). */
  onData(callback: (chunk: Uint8Array) => void): Unsubscribe {
    const off = this.dataListeners.add(callback);
    this.scheduleDelivery();
    return off;
  }

  /** The peer ended its direction and every byte was delivered. */
  onEnd(callback: () => void): Unsubscribe {
    return this.endListeners.add(callback);
  }

  onDrain(callback: () => void): Unsubscribe {
    return this.drainListeners.add(callback);
  }

  /**
   * Fires once. `undefined` after a graceful close in both directions (or `destroy()` without a
   * code); otherwise why the stream ended: the peer's OPEN_FAIL/RESET (`remote: true`), a local
   * decision, or `TUNNEL_CLOSED` when the tunnel went away.
   */
  onClose(callback: (error: TunnelStreamError | undefined) => void): Unsubscribe {
    return this.closeListeners.add(callback);
  }

  /**
   * Queues `chunk` (kept by reference: do not mutate it afterwards). Returns `false` when the caller
   * should wait for `onDrain`. After close the chunk is dropped and `false` returned.
   * @throws Error when called after `end()` (a programmer error, as in Node streams).
   */
  write(chunk: Uint8Array): boolean {
    if (this.endCode !== undefined && this.currentState !== 'closed') throw new Error(`write after end on stream ${this.id}`);
    if (this.currentState === 'closed') return false;
    if (chunk.length > 0) {
      if (this.queuedBytes + chunk.length > this.queueLimit || this.host.sendQueuedBytes() + chunk.length > this.host.maxSendBufferBytes) {
        this.destroy('LIMIT_EXCEEDED', 'send buffer limit exceeded');
        return false;
      }
      this.sendQueue.push(chunk);
      this.queuedBytes += chunk.length;
      this.host.adjustSendQueued(chunk.length);
      this.signalReady();
    }
    const belowMark = this.queuedBytes < this.highWaterMark;
    if (!belowMark) this.needDrain = true;
    return belowMark;
  }

  /**
   * Half-closes: CLOSE is sent after the queued bytes. Reading continues until the peer ends. `onSent` runs once CLOSE
   * has gone to the transport, i.e. every byte written before it too (also when `end` had been called before); it does
   * not run when the stream closes first (`onClose` tells why).
   */
  end(code: CloseCode = 'NORMAL', message = '', onSent?: () => void): void {
    if (this.currentState === 'closed') return;
    if (onSent) {
      if (this.closeSent) defer(onSent);
      else (this.endSent ??= []).push(onSent);
    }
    if (this.endCode !== undefined) return;
    this.endCode = code;
    this.endMessage = message;
    this.signalReady();
  }

  /**
   * Aborts both directions: RESET (OPEN_FAIL for a stream still pending) with `code`, queued data
   * dropped. Without a code the peer sees `CANCELLED` and `onClose` gets no error.
   */
  destroy(code?: WireStreamErrorCode, message = ''): void {
    if (this.currentState === 'closed') return;
    const wireCode = code ?? 'CANCELLED';
    if (this.currentState === 'pending') {
      this.host.sendStreamFrame({ type: 'OPEN_FAIL', streamId: this.id, code: wireCode, message });
    } else {
      this.host.sendStreamFrame({ type: 'RESET', streamId: this.id, code: wireCode, message });
    }
    this.finish(code === undefined ? undefined : new TunnelStreamError(code, message || code, false, this.id));
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.scheduleDelivery();
  }

  // ---- called by the Multiplexer ----

  /** @internal The application accepted a pending stream: OPEN_OK grants our window. */
  accept(): void {
    this.currentState = 'open';
    this.host.sendStreamFrame({ type: 'OPEN_OK', streamId: this.id, window: this.grantedWindow });
    this.openListeners.emit();
    this.signalReady();
  }

  /** @internal */
  handleOpenOk(window: number): SessionErrorCode | undefined {
    if (this.currentState !== 'opening') return 'UNEXPECTED_FRAME';
    this.currentState = 'open';
    this.sendCredit = window;
    this.openListeners.emit();
    this.signalReady();
    return undefined;
  }

  /** @internal */
  handleOpenFail(code: WireStreamErrorCode, message: string): SessionErrorCode | undefined {
    if (this.currentState !== 'opening') return 'UNEXPECTED_FRAME';
    this.finish(new TunnelStreamError(code, message || code, true, this.id));
    return undefined;
  }

  /** @internal [T6-1] DATA never exceeds the window this side granted. */
  handleData(data: Uint8Array): SessionErrorCode | undefined {
    if (this.currentState !== 'open') return 'UNEXPECTED_FRAME';
    if (this.remoteEnded) return 'DATA_AFTER_CLOSE';
    if (data.length > this.receiveWindow) return 'FLOW_CONTROL_VIOLATION';
    this.receiveWindow -= data.length;
    if (this.flowing && this.receiveBuffered === 0) {
      this.deliver(data);
    } else {
      this.receiveBuffer.push(data);
      this.receiveBuffered += data.length;
      this.scheduleDelivery();
    }
    return undefined;
  }

  /** @internal [T6-2] credit never grows the send window past 2^31-1. */
  handleCredit(increment: number): SessionErrorCode | undefined {
    if (this.currentState !== 'open') return 'UNEXPECTED_FRAME';
    if (this.sendCredit + increment > MAX_WINDOW) return 'FLOW_CONTROL_VIOLATION';
    this.sendCredit += increment;
    this.signalReady();
    return undefined;
  }

  /** @internal */
  handleClose(): SessionErrorCode | undefined {
    if (this.currentState !== 'open' || this.remoteEnded) return 'UNEXPECTED_FRAME';
    this.remoteEnded = true;
    this.maybeEnd();
    return undefined;
  }

  /** @internal */
  handleReset(code: WireStreamErrorCode, message: string): void {
    this.finish(new TunnelStreamError(code, message || code, true, this.id));
  }

  /** @internal The tunnel is gone: close without sending anything. */
  teardown(error: TunnelStreamError): void {
    this.finish(error);
  }

  /** @internal Closes a pending stream the application rejected (no listener can exist yet). */
  reject(code: WireStreamErrorCode, message: string): void {
    this.host.sendStreamFrame({ type: 'OPEN_FAIL', streamId: this.id, code, message });
    this.finish(new TunnelStreamError(code, message || code, false, this.id));
  }

  /** @internal DATA or CLOSE that may be sent now. */
  get hasOutput(): boolean {
    if (this.currentState !== 'open') return false;
    if (this.queuedBytes > 0) return this.sendCredit > 0;
    return this.endCode !== undefined && !this.closeSent;
  }

  /**
   * @internal The next frame to send: DATA of at most `maxPayload` bytes and the credit (as the queued
   * chunks it takes, for `encodeDataFrame` to copy once into the frame), or CLOSE.
   */
  nextFrame(maxPayload: number): StreamFrame | OutgoingData | undefined {
    if (!this.hasOutput) return undefined;
    if (this.queuedBytes === 0) {
      this.closeSent = true;
      const frame: StreamFrame = {
        type: 'CLOSE',
        streamId: this.id,
        code: this.endCode ?? 'NORMAL',
        message: this.endMessage,
      };
      const sent = this.endSent;
      this.endSent = undefined;
      defer(() => {
        sent?.forEach((callback) => callback());
        this.maybeFinish();
      });
      return frame;
    }
    const data = this.takeQueued(Math.min(this.sendCredit, maxPayload));
    this.sendCredit -= data.length;
    if (this.queuedBytes === 0 && this.needDrain) {
      this.needDrain = false;
      defer(() => {
        if (this.currentState !== 'closed') this.drainListeners.emit();
      });
    }
    return data;
  }

  // ---- internals ----

  private get flowing(): boolean {
    return !this.paused && this.dataListeners.hasListeners;
  }

  private signalReady(): void {
    if (this.hasOutput) this.host.markReady(this);
  }

  /** Up to `max` queued bytes as views of the written chunks (no copy: the frame encoder copies them once). */
  private takeQueued(max: number): OutgoingData {
    const parts: Uint8Array[] = [];
    let length = 0;
    while (length < max && this.sendQueue.length > 0) {
      const head = this.sendQueue[0];
      const room = max - length;
      if (head.length > room) {
        parts.push(head.subarray(0, room));
        this.sendQueue[0] = head.subarray(room);
        length += room;
      } else {
        parts.push(head);
        this.sendQueue.shift();
        length += head.length;
      }
    }
    this.queuedBytes -= length;
    this.host.adjustSendQueued(-length);
    return { type: 'DATA_PARTS', streamId: this.id, parts, length };
  }

  private deliver(chunk: Uint8Array): void {
    this.dataListeners.emit(chunk);
    this.consumed(chunk.length);
  }

  /** [T6-3] CREDIT returns delivered bytes in batches of at least a quarter of the window. */
  private consumed(bytes: number): void {
    if (this.currentState !== 'open' || this.remoteEnded) return;
    this.pendingCredit += bytes;
    if (this.pendingCredit < this.creditThreshold) return;
    const increment = this.pendingCredit;
    this.pendingCredit = 0;
    this.receiveWindow += increment;
    this.host.sendStreamFrame({ type: 'CREDIT', streamId: this.id, increment });
  }

  private scheduleDelivery(): void {
    if (this.deliveryScheduled) return;
    this.deliveryScheduled = true;
    defer(() => {
      this.deliveryScheduled = false;
      this.deliverBuffered();
    });
  }

  private deliverBuffered(): void {
    while (this.flowing && this.receiveBuffer.length > 0 && this.currentState !== 'closed') {
      const chunk = this.receiveBuffer.shift() as Uint8Array;
      this.receiveBuffered -= chunk.length;
      this.deliver(chunk);
    }
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (!this.remoteEnded || this.receiveBuffered > 0 || this.currentState === 'closed') return;
    this.endListeners.emit();
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.currentState === 'open' && this.closeSent && this.remoteEnded && this.receiveBuffered === 0) {
      this.finish(undefined);
    }
  }

  private finish(error: TunnelStreamError | undefined): void {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    if (this.queuedBytes > 0) this.host.adjustSendQueued(-this.queuedBytes);
    this.sendQueue.length = 0;
    this.queuedBytes = 0;
    this.receiveBuffer.length = 0;
    this.receiveBuffered = 0;
    this.endSent = undefined;
    this.host.streamFinished(this);
    this.closeListeners.emit(error);
  }
}

import type { Multiplexer } from './multiplexer';
import type { FrameTransport } from './transport';

export interface MemoryPipeOptions {
  /**
   * Runs one delivery later. Default: a microtask. Tests pass `fc.scheduler()` hooks to explore
   * interleavings; messages of one direction still arrive in order (one delivery = the oldest message).
   */
  schedule?: (deliver: () => void) => void;
}

interface Pending {
  frame?: Uint8Array;
  close?: { code: number; reason: string };
  onFlushed?: (error?: Error) => void;
}

/**
 * One end of an in-memory, ordered, message-oriented connection: a test and benchmark stand-in
 * for a WebSocket. `attach(mux)` routes the peer's frames into `mux.receive`.
 */
export class MemoryTransport implements FrameTransport {
  private peer: MemoryTransport | undefined;
  private mux: Multiplexer | undefined;
  private readonly outbox: Pending[] = [];
  private closed = false;
  private stalled = false;

  constructor(private readonly schedule: (deliver: () => void) => void) {}

  /** @internal */
  connect(peer: MemoryTransport): void {
    this.peer = peer;
  }

  attach(mux: Multiplexer): void {
    this.mux = mux;
  }

  /** Messages sent from now on are silently lost and never flushed (a dead network path). */
  stall(): void {
    this.stalled = true;
  }

  send(frame: Uint8Array, onFlushed: (error?: Error) => void): void {
    if (this.closed) {
      onFlushed(new Error('transport closed'));
      return;
    }
    if (this.stalled) return;
    this.enqueue({ frame, onFlushed });
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.enqueue({ close: { code, reason } });
  }

  terminate(): void {
    this.close(1006, '');
  }

  /** The connection drops under both sides (network failure, process killed): both are told. */
  disconnect(code = 1006, reason = ''): void {
    if (this.closed) return;
    this.closed = true;
    this.stalled = true;
    this.schedule(() => this.mux?.handleTransportClosed({ code, reason }));
    this.enqueue({ close: { code, reason } });
  }

  private enqueue(pending: Pending): void {
    this.outbox.push(pending);
    this.schedule(() => this.deliverOne());
  }

  private deliverOne(): void {
    const pending = this.outbox.shift();
    if (!pending || !this.peer) return;
    if (pending.frame) {
      this.peer.mux?.receive(pending.frame);
      pending.onFlushed?.();
    } else if (pending.close) {
      this.peer.closed = true;
      this.peer.mux?.handleTransportClosed(pending.close);
    }
  }
}

/** Two connected in-memory transports. */
export function createMemoryPipe(options: MemoryPipeOptions = {}): [MemoryTransport, MemoryTransport] {
  const schedule = options.schedule ?? ((deliver: () => void) => void Promise.resolve().then(deliver));
  const a = new MemoryTransport(schedule);
  const b = new MemoryTransport(schedule);
  a.connect(b);
  b.connect(a);
  return [a, b];
}

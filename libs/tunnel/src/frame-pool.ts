import { DEFAULT_MAX_FRAME_BYTES } from './constants';

/**
 * Recycled buffers for full-size DATA frames. A bulk transfer (a relay) sends full frames back to back, and
 * a fresh 64 KiB buffer per frame cost about as much as copying the payload into it (allocation, first-touch
 * page faults, garbage collection). A buffer comes back once its transport reports it flushed, and only from
 * a transport that no longer reads the bytes by then (`FrameTransport.releasesOnFlush`: ws has written them
 * to the socket). The pool is shared by every Multiplexer of the process and bounded in bytes, so a tunnel
 * that stops sending holds nothing and a burst on many tunnels cannot grow it.
 */
export class FramePool {
  private readonly free = new Map<number, Uint8Array[]>();
  private heldBytes = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes held for reuse (at most `maxBytes`). */
  get bytes(): number {
    return this.heldBytes;
  }

  /** A buffer of exactly `size` bytes with stale contents, or undefined when none is free. */
  take(size: number): Uint8Array | undefined {
    const list = this.free.get(size);
    const buffer = list?.pop();
    if (buffer !== undefined) this.heldBytes -= size;
    return buffer;
  }

  /** Returns a buffer nobody reads any more; dropped (left to the garbage collector) when the pool is full. */
  give(buffer: Uint8Array): void {
    if (this.heldBytes + buffer.length > this.maxBytes) return;
    let list = this.free.get(buffer.length);
    if (list === undefined) {
      list = [];
      this.free.set(buffer.length, list);
    }
    list.push(buffer);
    this.heldBytes += buffer.length;
  }
}

/** The process's pool: sixteen full default-size frames (~1 MiB, a transportHighWaterMark's worth). */
export const dataFramePool = new FramePool(16 * DEFAULT_MAX_FRAME_BYTES);

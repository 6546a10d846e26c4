/**
 * A list of received chunks read through an offset cursor, so bytes are copied only when a frame
 * spans chunks (ws `consume`, pg-protocol cursors) and never re-concatenated on every push.
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private headOffset = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Byte at logical index `index` (0 = oldest unread byte). Caller guarantees index < length. */
  byteAt(index: number): number {
    let i = index + this.headOffset;
    for (const chunk of this.chunks) {
      if (i < chunk.length) return chunk[i];
      i -= chunk.length;
    }
    throw new RangeError(`ByteQueue index ${index} out of range ${this.total}`);
  }

  /** Logical index of the first `value` at or after `from`, or -1. */
  indexOf(value: number, from: number): number {
    let base = -this.headOffset;
    for (const chunk of this.chunks) {
      const start = Math.max(0, from - base);
      if (start < chunk.length) {
        const found = chunk.indexOf(value, start);
        if (found !== -1) return base + found;
      }
      base += chunk.length;
    }
    return -1;
  }

  /** XOR of bytes in [start, end), without copying. */
  xor(start: number, end: number): number {
    let lrc = 0;
    let base = -this.headOffset;
    for (const chunk of this.chunks) {
      const from = Math.max(0, start - base);
      const to = Math.min(chunk.length, end - base);
      for (let i = from; i < to; i++) lrc ^= chunk[i];
      base += chunk.length;
      if (base >= end) break;
    }
    return lrc;
  }

  /** Removes and returns the first `count` bytes (a view when they lie in one chunk, else a copy). */
  take(count: number): Uint8Array {
    const first = this.chunks[0];
    if (first && this.headOffset + count <= first.length) {
      const view = first.subarray(this.headOffset, this.headOffset + count);
      this.skip(count);
      return view;
    }
    const out = new Uint8Array(count);
    let written = 0;
    while (written < count) {
      const chunk = this.chunks[0];
      const n = Math.min(count - written, chunk.length - this.headOffset);
      out.set(chunk.subarray(this.headOffset, this.headOffset + n), written);
      written += n;
      this.skip(n);
    }
    return out;
  }

  skip(count: number): void {
    this.total -= count;
    let remaining = count + this.headOffset;
    while (this.chunks.length > 0 && remaining >= this.chunks[0].length) {
      remaining -= this.chunks[0].length;
      this.chunks.shift();
    }
    this.headOffset = remaining;
  }

  clear(): void {
    this.chunks = [];
    this.headOffset = 0;
    this.total = 0;
  }
}

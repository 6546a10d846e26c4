import { JoinprotoError, type JoinprotoErrorCode } from './errors';
import { TLV_HEADER_BYTES } from './tlv';

/** Start and end of a message (spec 2, «Структура сообщения»). */
export const STX = 0x02;
export const ETX = 0x03;
/**
 * First byte of every tag in the spec's table. The decoder walks DATA by TLV lengths (a binary DF24/DF0A
 * value may contain 0x03), so at a TLV boundary it expects either ETX or this byte; anything else is a
 * broken frame. This is what makes resynchronisation reliable.
 */
export const TAG_FIRST_BYTE = 0xdf;
/** STX + ETX + LRC around DATA. */
export const FRAME_OVERHEAD_BYTES = 3;
/**
 * Default bound: one maximal TLV value (u16 length) fits twice, with headers and envelope.
 * A relay chunk (DF24) or a receipt (DF0A) is at most 65 535 bytes by the TLV length field.
 */
export const DEFAULT_MAX_FRAME_BYTES = 128 * 1024;

export type DecodeEvent =
  { readonly kind: 'frame'; readonly frame: Uint8Array } | { readonly kind: 'garbage'; readonly bytes: Uint8Array; readonly error: JoinprotoError };

export interface FrameDecoderOptions {
  /** Largest accepted frame, STX..LRC inclusive. Also the bound of the decoder's buffer. */
  readonly maxFrameBytes: number;
}

/** Below this many bytes the LRC is computed byte by byte; above, four bytes at a time. */
const LRC_WORDS_FROM = 64;

/** LRC: XOR of every DATA byte (spec 2). Long ranges XOR aligned 32-bit words, then fold the word to a byte. */
export function lrc(data: Uint8Array, start = 0, end = data.length): number {
  let result = 0;
  let i = start;
  if (end - start >= LRC_WORDS_FROM) {
    const misaligned = (data.byteOffset + i) & 3;
    for (const head = misaligned === 0 ? i : i + 4 - misaligned; i < head; i++) result ^= data[i];
    const words = (end - i) >>> 2;
    const view = new Int32Array(data.buffer, data.byteOffset + i, words);
    let word = 0;
    for (let w = 0; w < words; w++) word ^= view[w];
    word ^= word >>> 16;
    word ^= word >>> 8;
    result ^= word & 0xff;
    i += words * 4;
  }
  for (; i < end; i++) result ^= data[i];
  return result;
}

/** Wraps DATA into STX DATA ETX LRC. DATA must not be empty (spec 3: no data between STX and ETX is an error). */
export function encodeFrame(data: Uint8Array): Uint8Array {
  if (data.length === 0) throw new JoinprotoError('INVALID_MESSAGE', 'DATA must not be empty');
  const frame = new Uint8Array(data.length + FRAME_OVERHEAD_BYTES);
  frame[0] = STX;
  frame.set(data, 1);
  frame[data.length + 1] = ETX;
  frame[data.length + 2] = lrc(data);
  return frame;
}

const WAIT = false;
const PROGRESS = true;
const INITIAL_CAPACITY = 4096;

/**
 * Streaming decoder: bytes in any chunking → DATA of complete frames, and garbage with a typed error.
 * Synchronous, never throws on input, and never retains more than `maxFrameBytes` (STYLE C7).
 *
 * DATA is walked TLV by TLV; a frame ends where a TLV boundary holds ETX. After a bad frame the
 * decoder resynchronises on the next STX.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private owned: Uint8Array;
  /** Bytes being decoded: `owned`, or the caller's chunk while nothing is retained (zero-copy path). */
  private buf: Uint8Array;
  private head = 0;
  private tail = 0;
  /** Absolute index of the next TLV boundary of the frame whose STX is at `head`; -1 outside a frame. */
  private cursor = -1;

  constructor(options: FrameDecoderOptions) {
    const max = options.maxFrameBytes;
    if (!Number.isSafeInteger(max) || max < FRAME_OVERHEAD_BYTES + TLV_HEADER_BYTES) {
      throw new JoinprotoError('INVALID_MESSAGE', `maxFrameBytes must be an integer ≥ ${FRAME_OVERHEAD_BYTES + TLV_HEADER_BYTES}`);
    }
    this.maxFrameBytes = max;
    this.owned = new Uint8Array(Math.min(INITIAL_CAPACITY, max));
    this.buf = this.owned;
  }

  /** Bytes held for an incomplete frame; always ≤ maxFrameBytes between calls. */
  get bufferedBytes(): number {
    return this.tail - this.head;
  }

  push(chunk: Uint8Array): DecodeEvent[] {
    const events: DecodeEvent[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.head === this.tail) {
        this.buf = chunk;
        this.head = offset;
        this.tail = chunk.length;
        offset = chunk.length;
      } else {
        const room = this.maxFrameBytes - this.bufferedBytes;
        const take = Math.min(room, chunk.length - offset);
        this.append(chunk.subarray(offset, offset + take));
        offset += take;
      }
      this.drain(events);
      this.retain();
    }
    return events;
  }

  /**
   * Declares that no more bytes are coming for now (idle line, closed transport): a frame still open is reported as
   * garbage (TRUNCATED_TLV when it holds a complete STX..ETX LRC envelope, else INCOMPLETE_FRAME up to the next frame
   * start), and what follows it is decoded again: complete frames are delivered, the rest is garbage.
   */
  flush(): DecodeEvent[] {
    const events: DecodeEvent[] = [];
    while (this.head < this.tail) {
      if (this.cursor >= 0 && this.head + 1 < this.tail && this.buf[this.head + 1] === ETX) {
        this.emitGarbage(events, this.tail, 'EMPTY_DATA', 'no DATA between STX and ETX');
        break;
      }
      if (this.cursor < 0) {
        this.emitGarbage(events, this.tail, 'NO_STX', 'input ended inside a frame');
        break;
      }
      const envelopeEnd = this.findEnvelopeEnd();
      if (envelopeEnd < 0) {
        // The cut frame ends at the next frame start: a complete frame inside the span its last TLV header claimed
        // (line noise cut it, then the terminal sent its next frame) is still delivered. Until 2026-12-07 everything
        // buffered was dropped here, that frame with it.
        this.emitGarbage(events, this.nextStxAfterHead(), 'INCOMPLETE_FRAME', 'input ended inside a frame');
        this.drain(events);
        continue;
      }
      this.emitGarbage(events, envelopeEnd, 'TRUNCATED_TLV', 'DATA ends inside a TLV');
      this.drain(events);
    }
    this.reset();
    return events;
  }

  /** Drops everything buffered. */
  reset(): void {
    this.buf = this.owned;
    this.head = 0;
    this.tail = 0;
    this.cursor = -1;
  }

  private drain(events: DecodeEvent[]): void {
    while (this.head < this.tail) {
      if (this.cursor < 0 && !this.enterFrame(events)) return;
      if (this.step(events) === WAIT) return;
    }
  }

  /** [JP-3-STX] A message starts with STX; bytes before it are garbage. */
  private enterFrame(events: DecodeEvent[]): boolean {
    const stx = this.findFrameStart(this.head);
    const found = stx >= 0;
    const end = found ? stx : this.tail;
    if (end > this.head) this.emitGarbage(events, end, 'NO_STX', 'bytes before STX');
    if (!found) return false;
    this.cursor = stx + 1;
    return true;
  }

  /** Walks TLVs of the current frame until it completes, fails, or needs more bytes. */
  private step(events: DecodeEvent[]): boolean {
    const buf = this.buf;
    const limit = this.head + this.maxFrameBytes;
    for (;;) {
      const at = this.cursor;
      if (at >= this.tail) return WAIT;
      const byte = buf[at];
      if (byte === ETX) return this.finishFrame(events, at);
      if (byte !== TAG_FIRST_BYTE) return this.brokenFrame(events);
      // [JP-2-SIZE] the frame, closed right after this TLV, must fit maxFrameBytes.
      if (at + TLV_HEADER_BYTES + 2 > limit) return this.tooLarge(events);
      if (at + TLV_HEADER_BYTES > this.tail) return WAIT;
      const next = at + TLV_HEADER_BYTES + ((buf[at + 2] << 8) | buf[at + 3]);
      if (next + 2 > limit) return this.tooLarge(events);
      this.cursor = next;
    }
  }

  private finishFrame(events: DecodeEvent[], etx: number): boolean {
    const dataStart = this.head + 1;
    if (etx === dataStart) {
      // [JP-3-EMPTY] no DATA between STX and ETX; swallow LRC 0x00 of the empty DATA if present.
      if (etx + 1 >= this.tail) return WAIT;
      const end = this.buf[etx + 1] === 0 ? etx + 2 : etx + 1;
      this.emitGarbage(events, end, 'EMPTY_DATA', 'no DATA between STX and ETX');
      return PROGRESS;
    }
    if (etx + 1 >= this.tail) return WAIT;
    // [JP-2-LRC] LRC is the XOR of DATA.
    if (lrc(this.buf, dataStart, etx) !== this.buf[etx + 1]) {
      this.emitGarbage(events, etx + 2, 'BAD_LRC', 'LRC does not match DATA');
      return PROGRESS;
    }
    events.push({ kind: 'frame', frame: copyBytes(this.buf, dataStart, etx) });
    this.consume(etx + 2);
    return PROGRESS;
  }

  /** A TLV boundary holds neither ETX nor a tag: a complete envelope before it means a truncated TLV. */
  private brokenFrame(events: DecodeEvent[]): boolean {
    const envelopeEnd = this.findEnvelopeEnd();
    if (envelopeEnd >= 0) {
      this.emitGarbage(events, envelopeEnd, 'TRUNCATED_TLV', 'DATA ends inside a TLV');
    } else {
      this.emitGarbage(events, this.nextStxAfterHead(), 'BAD_TLV', 'TLV boundary holds neither a tag nor ETX');
    }
    return PROGRESS;
  }

  private tooLarge(events: DecodeEvent[]): boolean {
    this.emitGarbage(events, this.nextStxAfterHead(), 'FRAME_TOO_LARGE', `frame exceeds ${this.maxFrameBytes} bytes`);
    return PROGRESS;
  }

  /** End (exclusive) of the first `STX DATA ETX LRC` envelope at `head` whose LRC matches, or -1. */
  private findEnvelopeEnd(): number {
    let running = 0;
    for (let i = this.head + 1; i + 1 < this.tail; i++) {
      if (this.buf[i] === ETX && i > this.head + 1 && this.buf[i + 1] === running) return i + 2;
      running ^= this.buf[i];
    }
    return -1;
  }

  private nextStxAfterHead(): number {
    const stx = this.findFrameStart(this.head + 1);
    return stx >= 0 ? stx : this.tail;
  }

  /**
   * Index of the next plausible frame start at or after `from`: an STX followed by a tag's first byte, by ETX,
   * or by nothing yet. Other 0x02 bytes (a length 0x0002, binary data) stay part of the garbage run.
   */
  private findFrameStart(from: number): number {
    const buf = this.buf;
    for (let at = from; at < this.tail; at++) {
      at = buf.indexOf(STX, at); // bytes past `tail` are stale: a hit there is no hit
      if (at < 0 || at >= this.tail) return -1;
      const next = at + 1;
      if (next >= this.tail || buf[next] === TAG_FIRST_BYTE || buf[next] === ETX) return at;
    }
    return -1;
  }

  private emitGarbage(events: DecodeEvent[], end: number, code: JoinprotoErrorCode, message: string): void {
    const offset = this.head;
    events.push({ kind: 'garbage', bytes: copyBytes(this.buf, this.head, end), error: new JoinprotoError(code, message, { offset }) });
    this.consume(end);
  }

  private consume(end: number): void {
    this.head = end;
    this.cursor = -1;
  }

  /** Keeps the unconsumed tail of a caller's chunk in owned storage (it is at most maxFrameBytes). */
  private retain(): void {
    if (this.buf === this.owned) {
      if (this.head === this.tail) this.reset();
      return;
    }
    const pending = this.buf.subarray(this.head, this.tail);
    const cursorOffset = this.cursor < 0 ? -1 : this.cursor - this.head;
    this.reset();
    this.append(pending);
    this.cursor = cursorOffset;
  }

  private append(bytes: Uint8Array): void {
    const needed = this.tail - this.head + bytes.length;
    if (this.tail + bytes.length > this.owned.length) {
      if (needed > this.owned.length) {
        let capacity = this.owned.length;
        while (capacity < needed) capacity *= 2;
        const grown = new Uint8Array(Math.min(Math.max(capacity, needed), this.maxFrameBytes));
        grown.set(this.owned.subarray(this.head, this.tail));
        this.owned = grown;
      } else {
        this.owned.copyWithin(0, this.head, this.tail);
      }
      if (this.cursor >= 0) this.cursor -= this.head;
      this.tail -= this.head;
      this.head = 0;
    }
    this.owned.set(bytes, this.tail);
    this.tail += bytes.length;
    this.buf = this.owned;
  }
}

/**
 * Small frames are carved out of a shared slab (as Node's Buffer pool does): one view per frame instead
 * of one backing store each, which the profile showed as a third of the decoder's time (bench/joinproto).
 */
const POOL_BYTES = 64 * 1024;
const POOLED_UP_TO = 8 * 1024;
let pool = new ArrayBuffer(POOL_BYTES);
let poolOffset = 0;

/**
 * A plain Uint8Array copy: frames must not alias the caller's chunk or the decoder's buffer. A small
 * frame's `buffer` is a shared slab: read it through `byteOffset`/`byteLength`, as with a Node Buffer.
 */
function copyBytes(source: Uint8Array, start: number, end: number): Uint8Array {
  const length = end - start;
  let out: Uint8Array;
  if (length > POOLED_UP_TO) out = new Uint8Array(length);
  else {
    if (poolOffset + length > POOL_BYTES) {
      pool = new ArrayBuffer(POOL_BYTES);
      poolOffset = 0;
    }
    out = new Uint8Array(pool, poolOffset, length);
    poolOffset = (poolOffset + length + 7) & ~7; // 8-byte aligned, so the LRC's word view applies to the next frame too
  }
  out.set(source.subarray(start, end));
  return out;
}

/**
 * Packet framing, spec §4 "Формат данных" (both documents):
 * "Каждый пакет начинается с 4 двоичных байтов в которых указана длина пакета без учета этих 4х байтов.
 *  Первый из байтов длины старший. Далее следует текст в формате XML".
 *
 * Spec checks (named so tests and errors can cite them):
 *  - [JPAY-4-LEN]   the length prefix is 4 bytes, big-endian, and excludes itself;
 *  - [JPAY-4-EMPTY] a packet carries XML, so a zero length is invalid;
 *  - [JPAY-4-XML]   the payload is XML text: its first byte is `<`, XML white space or a UTF-8 BOM;
 *  - [PAYORCH-MAX]  a packet is bounded by `maxFrameBytes` (ours; the spec sets no limit).
 * On a failed check the decoder reports the skipped bytes as garbage and resyncs on the next offset
 * where a plausible header (valid length followed by an XML start byte) begins.
 */
import { JpayError } from './errors';

export const LENGTH_PREFIX_BYTES = 4;

/**
 * Default bound of one packet including its prefix. The spec sets none; the largest packet is a
 * full report (`report-type=full`), about 450 bytes per logged transaction, so 2 MiB holds ~4 500.
 */
export const DEFAULT_MAX_FRAME_BYTES = 2 * 1024 * 1024;

export type DecodeEvent =
  { readonly kind: 'frame'; readonly frame: Uint8Array } | { readonly kind: 'garbage'; readonly bytes: Uint8Array; readonly error: JpayError };

export interface FrameDecoderOptions {
  /** Largest accepted packet, length prefix included. Required: there is no unbounded mode. */
  readonly maxFrameBytes: number;
}

const LT = 0x3c;
const BOM_FIRST = 0xef;

/** [JPAY-4-XML] bytes an XML document may start with. */
function isXmlStartByte(byte: number): boolean {
  return byte === LT || byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d || byte === BOM_FIRST;
}

/** Validates options shared by the decoder and the encoder. */
function checkMaxFrameBytes(maxFrameBytes: number): number {
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes <= LENGTH_PREFIX_BYTES) {
    throw new JpayError('INVALID_ARGUMENT', `maxFrameBytes must be an integer > ${LENGTH_PREFIX_BYTES}`, {
      field: 'maxFrameBytes',
    });
  }
  return maxFrameBytes;
}

/** Builds one packet: 4-byte big-endian length + payload. [JPAY-4-LEN] */
export function encodeFrame(payload: Uint8Array, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Uint8Array {
  checkMaxFrameBytes(maxFrameBytes);
  if (payload.length === 0) {
    throw new JpayError('FRAME_EMPTY', 'a packet must carry XML [JPAY-4-EMPTY]', { length: 0 });
  }
  if (payload.length + LENGTH_PREFIX_BYTES > maxFrameBytes) {
    throw new JpayError('FRAME_TOO_LARGE', `packet exceeds ${maxFrameBytes} bytes [PAYORCH-MAX]`, {
      length: payload.length,
    });
  }
  const out = new Uint8Array(LENGTH_PREFIX_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, LENGTH_PREFIX_BYTES);
  return out;
}

/**
 * Streaming decoder. Synchronous, never throws on input bytes, holds chunks in a list with a head
 * offset (no repeated concatenation), and never buffers more than `maxFrameBytes` between pushes.
 */
export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private chunks: Uint8Array[] = [];
  private headOffset = 0;
  private total = 0;

  constructor(options: FrameDecoderOptions) {
    this.maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes);
  }

  /** Bytes held for an incomplete packet. */
  get bufferedBytes(): number {
    return this.total;
  }

  /** Drops any partial packet (e.g. when the connection is replaced). */
  reset(): void {
    this.chunks = [];
    this.headOffset = 0;
    this.total = 0;
  }

  push(chunk: Uint8Array): DecodeEvent[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.total += chunk.length;
    }
    const events: DecodeEvent[] = [];
    const garbage: number[] = [];
    let garbageError: JpayError | undefined;
    const flushGarbage = (): void => {
      if (garbage.length > 0 && garbageError) {
        events.push({ kind: 'garbage', bytes: Uint8Array.from(garbage), error: garbageError });
      }
      garbage.length = 0;
      garbageError = undefined;
    };

    while (this.total > LENGTH_PREFIX_BYTES) {
      const length = this.readLength();
      const problem = this.checkHeader(length);
      if (problem) {
        garbageError ??= problem;
        garbage.push(this.byteAt(0));
        this.skip(1);
        continue;
      }
      flushGarbage();
      if (this.total < LENGTH_PREFIX_BYTES + length) break;
      this.skip(LENGTH_PREFIX_BYTES);
      events.push({ kind: 'frame', frame: this.take(length) });
    }
    flushGarbage();
    return events;
  }

  private checkHeader(length: number): JpayError | undefined {
    if (length === 0) {
      return new JpayError('FRAME_EMPTY', 'zero-length packet [JPAY-4-EMPTY]', { length });
    }
    if (length + LENGTH_PREFIX_BYTES > this.maxFrameBytes) {
      return new JpayError('FRAME_TOO_LARGE', `packet length ${length} exceeds the bound [PAYORCH-MAX]`, {
        length,
      });
    }
    if (!isXmlStartByte(this.byteAt(LENGTH_PREFIX_BYTES))) {
      return new JpayError('FRAME_NOT_XML', 'packet payload does not start as XML [JPAY-4-XML]', {
        length,
      });
    }
    return undefined;
  }

  private readLength(): number {
    return this.byteAt(0) * 0x1000000 + ((this.byteAt(1) << 16) | (this.byteAt(2) << 8) | this.byteAt(3));
  }

  private byteAt(index: number): number {
    let i = index + this.headOffset;
    for (const chunk of this.chunks) {
      if (i < chunk.length) return chunk[i];
      i -= chunk.length;
    }
    throw new RangeError('byteAt beyond buffered data'); // programmer error: callers check `total`
  }

  private skip(count: number): void {
    let remaining = count;
    this.total -= count;
    while (remaining > 0) {
      const head = this.chunks[0];
      const available = head.length - this.headOffset;
      if (remaining < available) {
        this.headOffset += remaining;
        return;
      }
      remaining -= available;
      this.chunks.shift();
      this.headOffset = 0;
    }
  }

  private take(count: number): Uint8Array {
    const out = allocFrame(count);
    let written = 0;
    while (written < count) {
      const head = this.chunks[0];
      const n = Math.min(count - written, head.length - this.headOffset);
      out.set(head.subarray(this.headOffset, this.headOffset + n), written);
      written += n;
      this.skip(n);
    }
    return out;
  }
}

/**
 * Frames up to 8 KiB are carved out of a shared 64 KiB slab (as Node's Buffer pool does): one view per
 * packet instead of one backing store each, which the profile showed costing as much as parsing a
 * small response (bench/jpay). A frame's `buffer` may be that slab: read it through
 * `byteOffset`/`byteLength`, as with a Node Buffer. Frames never share bytes.
 */
const POOL_BYTES = 64 * 1024;
const POOLED_UP_TO = 8 * 1024;
let pool = new ArrayBuffer(POOL_BYTES);
let poolOffset = 0;

function allocFrame(length: number): Uint8Array {
  if (length > POOLED_UP_TO) return new Uint8Array(length);
  if (poolOffset + length > POOL_BYTES) {
    pool = new ArrayBuffer(POOL_BYTES);
    poolOffset = 0;
  }
  const out = new Uint8Array(pool, poolOffset, length);
  poolOffset = (poolOffset + length + 7) & ~7;
  return out;
}

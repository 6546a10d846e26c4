import { ByteQueue } from './byte-queue';
import { SsiEcrError } from './errors';
import { xorLrc } from './lrc';

/** Spec 1.3: `<STX>` is the three bytes 0x02 (start), 0x66 (protocol id), 0x01 (protocol version). */
export const STX = 0x02;
export const PROTOCOL_ID = 0x66;
export const PROTOCOL_VERSION = 0x01;
/** STX (3) + length (2). */
export const HEADER_BYTES = 5;
/** Spec 1.3: DATA length is a 2-byte big-endian count, "up to 64K". */
export const MAX_DATA_BYTES = 0xffff;
/** The largest frame the length field can describe: header + 65535 bytes of DATA + LRC. */
export const MAX_FRAME_BYTES = HEADER_BYTES + MAX_DATA_BYTES + 1;

export interface RawFrame {
  /** DATA: UTF-8 JSON text (not yet validated). */
  readonly data: Uint8Array;
  /** The LRC byte as received (already checked). */
  readonly lrc: number;
}

export type DecodeEvent =
  { readonly kind: 'frame'; readonly frame: RawFrame } | { readonly kind: 'garbage'; readonly bytes: Uint8Array; readonly error: SsiEcrError };

export interface FrameDecoderOptions {
  /** Upper bound on one frame, header and LRC included; frames above it are reported as garbage. */
  readonly maxFrameBytes?: number;
}

/** Spec 1.3: encodes DATA into `02 66 01 LEN_HI LEN_LO DATA LRC`. */
export function encodeFrame(data: Uint8Array): Uint8Array {
  if (data.length > MAX_DATA_BYTES) {
    throw new SsiEcrError('FRAME_TOO_LARGE', `DATA is ${data.length} bytes, at most ${MAX_DATA_BYTES} fit the 2-byte length`, {
      reply: 'E00',
      context: { dataBytes: data.length },
    });
  }
  const frame = new Uint8Array(HEADER_BYTES + data.length + 1);
  frame[0] = STX;
  frame[1] = PROTOCOL_ID;
  frame[2] = PROTOCOL_VERSION;
  frame[3] = data.length >>> 8;
  frame[4] = data.length & 0xff;
  frame.set(data, HEADER_BYTES);
  frame[frame.length - 1] = xorLrc(data);
  return frame;
}

const hex = (byte: number): string => byte.toString(16).padStart(2, '0');

/**
 * Streaming decoder for SSI ECR frames (STYLE C7): synchronous, never throws on input, bounded by
 * `maxFrameBytes`, and resynchronises on the next STX after any bad byte sequence.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private readonly queue = new ByteQueue();

  constructor(options: FrameDecoderOptions = {}) {
    const max = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max < HEADER_BYTES + 1 || max > MAX_FRAME_BYTES) {
      throw new RangeError(`maxFrameBytes must be an integer in [${HEADER_BYTES + 1}, ${MAX_FRAME_BYTES}]`);
    }
    this.maxFrameBytes = max;
  }

  /** Bytes held while waiting for the rest of a frame; never exceeds `maxFrameBytes`. */
  get bufferedBytes(): number {
    return this.queue.length;
  }

  reset(): void {
    this.queue.clear();
  }

  push(chunk: Uint8Array): DecodeEvent[] {
    this.queue.push(chunk);
    const events: DecodeEvent[] = [];
    let stray: Uint8Array[] = [];
    const flushStray = (): void => {
      if (stray.length === 0) return;
      const bytes = concat(stray);
      stray = [];
      events.push({
        kind: 'garbage',
        bytes,
        error: new SsiEcrError('UNEXPECTED_BYTES', `${bytes.length} byte(s) outside a frame`, { reply: 'drop' }),
      });
    };
    const q = this.queue;
    for (;;) {
      if (q.length === 0) break;
      // [spec 1.3] a frame starts with STX 0x02; anything before it is dropped.
      if (q.byteAt(0) !== STX) {
        const next = q.indexOf(STX, 1);
        stray.push(q.take(next === -1 ? q.length : next));
        continue;
      }
      flushStray();
      if (q.length < 2) break;
      // [spec 1.3, 5.1 E01] protocol id must be 0x66.
      const protocolId = q.byteAt(1);
      if (protocolId !== PROTOCOL_ID) {
        events.push(this.dropBadPrefix(2, 'WRONG_PROTOCOL_ID', `actual: ${hex(protocolId)}, expected: ${hex(PROTOCOL_ID)}`, 'E01'));
        continue;
      }
      if (q.length < 3) break;
      // [spec 1.3, E01] protocol version must be 0x01.
      const version = q.byteAt(2);
      if (version !== PROTOCOL_VERSION) {
        events.push(this.dropBadPrefix(3, 'UNSUPPORTED_VERSION', `actual: ${hex(version)}, expected: ${hex(PROTOCOL_VERSION)}`, 'E01'));
        continue;
      }
      if (q.length < HEADER_BYTES) break;
      // [spec 1.3] 2-byte big-endian length of DATA; bounded by maxFrameBytes.
      const dataLength = (q.byteAt(3) << 8) | q.byteAt(4);
      const frameLength = HEADER_BYTES + dataLength + 1;
      if (frameLength > this.maxFrameBytes) {
        events.push(this.dropBadPrefix(HEADER_BYTES, 'FRAME_TOO_LARGE', `frame of ${frameLength} bytes exceeds ${this.maxFrameBytes}`, 'E00'));
        continue;
      }
      if (q.length < frameLength) break;
      // [spec 1.3, 6.1, E02] LRC = XOR of DATA only.
      const expected = q.xor(HEADER_BYTES, HEADER_BYTES + dataLength);
      const actual = q.byteAt(frameLength - 1);
      if (expected !== actual) {
        events.push(this.dropBadPrefix(frameLength, 'BAD_CHECKSUM', `actual: ${hex(actual)}, expected: ${hex(expected)}`, 'E02'));
        continue;
      }
      const bytes = q.take(frameLength);
      events.push({ kind: 'frame', frame: { data: bytes.subarray(HEADER_BYTES, HEADER_BYTES + dataLength), lrc: actual } });
    }
    flushStray();
    return events;
  }

  /**
   * Drops a rejected candidate frame of `examined` bytes, but no further than the next STX inside
   * it, so a real frame that starts inside a corrupt one is still found (resync).
   */
  private dropBadPrefix(
    examined: number,
    code: 'WRONG_PROTOCOL_ID' | 'UNSUPPORTED_VERSION' | 'FRAME_TOO_LARGE' | 'BAD_CHECKSUM',
    message: string,
    reply: 'E00' | 'E01' | 'E02',
  ): DecodeEvent {
    const next = this.queue.indexOf(STX, 1);
    const drop = next !== -1 && next < examined ? next : examined;
    return { kind: 'garbage', bytes: this.queue.take(drop), error: new SsiEcrError(code, message, { reply }) };
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

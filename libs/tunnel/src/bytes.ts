import { TunnelProtocolError } from './errors';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8Bytes(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Growable big-endian writer (pg-protocol buffer-writer idea). */
export class ByteWriter {
  private buffer = new Uint8Array(64);
  private view = new DataView(this.buffer.buffer);
  private length = 0;

  u8(value: number): this {
    this.ensure(1);
    this.view.setUint8(this.length, value);
    this.length += 1;
    return this;
  }

  u16(value: number): this {
    this.ensure(2);
    this.view.setUint16(this.length, value);
    this.length += 2;
    return this;
  }

  u32(value: number): this {
    this.ensure(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
    return this;
  }

  u64(value: number): this {
    this.ensure(8);
    this.view.setBigUint64(this.length, BigInt(value));
    this.length += 8;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.ensure(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  /** u8 length + UTF-8 bytes. */
  str8(text: string): this {
    const bytes = utf8Bytes(text);
    return this.u8(bytes.length).bytes(bytes);
  }

  /** u16 length + UTF-8 bytes. */
  str16(text: string): this {
    const bytes = utf8Bytes(text);
    return this.u16(bytes.length).bytes(bytes);
  }

  finish(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  private ensure(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    const next = new Uint8Array(Math.max(this.buffer.length * 2, this.length + extra));
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }
}

/**
 * Cursor over one payload. Running past the end raises `BAD_PAYLOAD`; the codec turns it into a
 * garbage event, so nothing escapes `decodeFrame`.
 */
export class ByteReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }

  u16(): number {
    this.need(2);
    const value = this.view.getUint16(this.offset);
    this.offset += 2;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  /** u64 that must fit in a JS safe integer. */
  u64(): number {
    this.need(8);
    const value = this.view.getBigUint64(this.offset);
    this.offset += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw payloadError('u64 above 2^53-1');
    return Number(value);
  }

  bytesOf(length: number): Uint8Array {
    this.need(length);
    const slice = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  str8(): string {
    return decodeUtf8(this.bytesOf(this.u8()));
  }

  str16(): string {
    return decodeUtf8(this.bytesOf(this.u16()));
  }

  rest(): Uint8Array {
    return this.bytesOf(this.remaining);
  }

  /** Payloads have an exact layout: trailing bytes are an error. */
  end(): void {
    if (this.remaining !== 0) throw payloadError(`${this.remaining} trailing bytes`);
  }

  private need(length: number): void {
    if (this.remaining < length) throw payloadError('payload truncated');
  }
}

export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new TunnelProtocolError('BAD_UTF8', 'invalid UTF-8', 'drop-frame');
  }
}

export function payloadError(message: string): TunnelProtocolError {
  return new TunnelProtocolError('BAD_PAYLOAD', message, 'drop-frame');
}

/**
 * Independent byte builder for tunnel frames, written from docs/tunnel.md §3-§4 and not from the
 * codec under test (pg-protocol testing/buffer-list idea). Tests build expected bytes with it.
 */

/** Frame type bytes, copied from the table in docs/tunnel.md §4. */
export const TYPE = {
  HELLO: 0x01,
  HELLO_ACK: 0x02,
  OPEN: 0x03,
  OPEN_OK: 0x04,
  OPEN_FAIL: 0x05,
  DATA: 0x06,
  CREDIT: 0x07,
  CLOSE: 0x08,
  RESET: 0x09,
  PING: 0x0a,
  PONG: 0x0b,
  CONTROL: 0x0c,
} as const;

export type Bytes = number[];

export const u8 = (n: number): Bytes => [n & 0xff];
export const u16 = (n: number): Bytes => [(n >>> 8) & 0xff, n & 0xff];
export const u32 = (n: number): Bytes => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
export const u64 = (n: number): Bytes => [...u32(Math.floor(n / 2 ** 32)), ...u32(n % 2 ** 32)];
export const utf8 = (text: string): Bytes => [...Buffer.from(text, 'utf8')];
export const str8 = (text: string): Bytes => [...u8(utf8(text).length), ...utf8(text)];
export const str16 = (text: string): Bytes => [...u16(utf8(text).length), ...utf8(text)];

export interface HeaderOverrides {
  /** Byte 0; 0xA1 by default (magic 0xA, format 1). */
  lead?: number;
  flags?: number;
  /** Announced payload length; the real payload length by default. */
  length?: number;
}

/** Header (12 bytes) followed by the payload. */
export function frameBytes(type: number, streamId: number, payload: Bytes, overrides: HeaderOverrides = {}): Uint8Array {
  return Uint8Array.from([
    overrides.lead ?? 0xa1,
    type,
    ...u16(overrides.flags ?? 0),
    ...u32(streamId),
    ...u32(overrides.length ?? payload.length),
    ...payload,
  ]);
}

export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map((part) => Buffer.from(part))));
}

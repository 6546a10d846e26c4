/**
 * Independent byte builder for expected frames (pg-protocol `testing/buffer-list.ts` idea): written
 * from spec 1.3 with Buffer, sharing no code with `framing.ts`, so tests never compare the encoder
 * with itself. Every header byte can be overridden to build malformed frames.
 */
export interface FrameOverrides {
  readonly stx?: number;
  readonly protocolId?: number;
  readonly version?: number;
  /** Length field value (default: real DATA length). */
  readonly length?: number;
  /** LRC byte (default: XOR of DATA). */
  readonly lrc?: number;
}

export function buildFrame(data: string | Uint8Array, overrides: FrameOverrides = {}): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  const length = overrides.length ?? body.length;
  const lrc = overrides.lrc ?? body.reduce((acc, byte) => acc ^ byte, 0);
  return Buffer.concat([
    Buffer.from([overrides.stx ?? 0x02, overrides.protocolId ?? 0x66, overrides.version ?? 0x01, (length >> 8) & 0xff, length & 0xff]),
    body,
    Buffer.from([lrc]),
  ]);
}

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
export const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));

/**
 * Independent byte builder for test expectations (STYLE C7/C8, pg-protocol `testing/buffer-list.ts`).
 * It shares no code with the encoder under test: hex strings and Buffer concatenation only.
 */

/** A vector's tag value: `'68656C6C6F'h` is hex, anything else is ASCII (the spec tables' notation). */
export function vectorValue(value: string): Buffer {
  const hex = /^'([0-9A-Fa-f]*)'h$/.exec(value);
  return hex ? Buffer.from(hex[1], 'hex') : Buffer.from(value, 'latin1');
}

/** TLV bytes: 2-byte tag, big-endian u16 length, value. */
export function tlv(tag: string, value: string | Uint8Array): Buffer {
  const bytes = typeof value === 'string' ? vectorValue(value) : Buffer.from(value);
  const header = Buffer.alloc(4);
  header.write(tag, 0, 'hex');
  header.writeUInt16BE(bytes.length, 2);
  return Buffer.concat([header, bytes]);
}

/** DATA from `[tag, value]` pairs, in the given order. */
export function data(pairs: ReadonlyArray<readonly [string, string | Uint8Array]>): Buffer {
  return Buffer.concat(pairs.map(([tag, value]) => tlv(tag, value)));
}

/** STX DATA ETX LRC; `lrcOverride` builds a corrupt frame. */
export function frame(body: Uint8Array, lrcOverride?: number): Buffer {
  let lrc = 0;
  for (const byte of body) lrc ^= byte;
  return Buffer.concat([Buffer.from([0x02]), Buffer.from(body), Buffer.from([0x03, lrcOverride ?? lrc])]);
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

export function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

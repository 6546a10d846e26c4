import { JoinprotoError } from './errors';

/** One TLV object: 2-byte tag (as 4 upper-case hex digits), BE u16 length, value (spec 2). */
export interface Tlv {
  readonly tag: string;
  readonly value: Uint8Array;
}

export const TLV_HEADER_BYTES = 4;
export const MAX_TLV_VALUE_BYTES = 0xffff;

/**
 * [JP-2-TLV] Splits DATA into TLVs, keeping order and repeated tags (DF24 chunks).
 * Values are views into `data`. Throws TRUNCATED_TLV when a header or value runs past the end.
 */
export function decodeTlvs(data: Uint8Array): Tlv[] {
  const tlvs: Tlv[] = [];
  let offset = 0;
  while (offset < data.length) {
    if (offset + TLV_HEADER_BYTES > data.length) {
      throw new JoinprotoError('TRUNCATED_TLV', `TLV header truncated at offset ${offset}`, { offset });
    }
    const tag = tagToString(data[offset], data[offset + 1]);
    const length = (data[offset + 2] << 8) | data[offset + 3];
    const start = offset + TLV_HEADER_BYTES;
    if (start + length > data.length) {
      throw new JoinprotoError('TRUNCATED_TLV', `${tag} declares ${length} bytes, ${data.length - start} left`, { offset, tag });
    }
    tlvs.push({ tag, value: data.subarray(start, start + length) });
    offset = start + length;
  }
  return tlvs;
}

/** Serialises TLVs in the given order. Throws INVALID_MESSAGE for a malformed tag or an oversized value. */
export function encodeTlvs(tlvs: readonly Tlv[]): Uint8Array {
  let size = 0;
  for (const tlv of tlvs) {
    if (!/^[0-9A-F]{4}$/.test(tlv.tag)) throw new JoinprotoError('INVALID_MESSAGE', `bad tag "${tlv.tag}"`, { tag: tlv.tag });
    if (tlv.value.length > MAX_TLV_VALUE_BYTES) {
      throw new JoinprotoError('INVALID_MESSAGE', `${tlv.tag} value of ${tlv.value.length} bytes exceeds ${MAX_TLV_VALUE_BYTES}`, { tag: tlv.tag });
    }
    size += TLV_HEADER_BYTES + tlv.value.length;
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const tlv of tlvs) {
    const code = parseInt(tlv.tag, 16);
    out[offset] = code >> 8;
    out[offset + 1] = code & 0xff;
    out[offset + 2] = tlv.value.length >> 8;
    out[offset + 3] = tlv.value.length & 0xff;
    out.set(tlv.value, offset + TLV_HEADER_BYTES);
    offset += TLV_HEADER_BYTES + tlv.value.length;
  }
  return out;
}

function tagToString(high: number, low: number): string {
  return ((high << 8) | low).toString(16).toUpperCase().padStart(4, '0');
}

/**
 * Spec 6.1: LRC is the XOR of every byte. For frames it covers DATA only (spec 1.3, "not counting
 * the 2 length bytes"); for PrintXml it covers the UTF-8 bytes of `receipt` (spec 5.5.7).
 */
export function xorLrc(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let lrc = 0;
  for (let i = start; i < end; i++) lrc ^= bytes[i];
  return lrc;
}

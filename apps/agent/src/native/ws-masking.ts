import { requireNative } from './native-modules';

/**
 * What `ws` asks of its optional `bufferutil` module: the XOR of WebSocket frame payloads with their 4-byte mask.
 * The agent is a WebSocket client, so every frame it sends is masked (RFC 6455 §5.3), and ws without bufferutil
 * does that one byte at a time (~0.44 GB/s on the 2-core bench machine): the upstream relay bulk ran at 0.09x of
 * loopback TCP (bench/tunnel/roundtrip). The agent bundle (scripts/build-agent-sea.mjs) resolves ws's
 * `require('bufferutil')` to this module: the native binding when it is installed (`node_modules/bufferutil`,
 * beside the single executable), else 32-bit words in JavaScript (~2.5 GB/s).
 */
export interface FrameMasking {
  mask(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number): void;
  unmask(buffer: Uint8Array, mask: Uint8Array): void;
}

/**
 * `output[offset + i] = source[i] ^ mask[i & 3]` for i < length, by 32-bit words where `source` and the output
 * range share their alignment (bytes up to the first aligned address, words, then the tail bytes); byte by byte
 * otherwise. `source` and the output range may be the same bytes (unmasking in place), not otherwise overlap.
 */
export function maskWords(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number): void {
  let i = 0;
  const start = output.byteOffset + offset;
  if (length >= 16 && ((source.byteOffset - start) & 3) === 0) {
    for (; ((start + i) & 3) !== 0; i++) output[offset + i] = source[i]! ^ mask[i & 3]!;
    const words = (length - i) >>> 2;
    // The mask as the word that lines up with byte i (i < 4 here), in this machine's byte order.
    const key = new Uint8Array(4);
    for (let k = 0; k < 4; k++) key[k] = mask[(i + k) & 3]!;
    const word = new Uint32Array(key.buffer)[0]!;
    const from = new Uint32Array(source.buffer, source.byteOffset + i, words);
    const to = new Uint32Array(output.buffer, start + i, words);
    for (let w = 0; w < words; w++) to[w] = from[w]! ^ word;
    i += words * 4;
  }
  for (; i < length; i++) output[offset + i] = source[i]! ^ mask[i & 3]!;
}

export const wordMasking: FrameMasking = {
  mask: maskWords,
  unmask: (buffer, mask) => maskWords(buffer, mask, buffer, 0, buffer.length),
};

/** The native binding when it loads, else {@link wordMasking}. */
export function frameMasking(load: () => FrameMasking = () => requireNative<FrameMasking>('bufferutil')): FrameMasking {
  try {
    const native = load();
    if (typeof native.mask === 'function' && typeof native.unmask === 'function') return native;
  } catch {
    // Not installed, or not built for this platform: the JavaScript words.
  }
  return wordMasking;
}

const masking = frameMasking();
export const mask = masking.mask;
export const unmask = masking.unmask;

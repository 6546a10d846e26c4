import fc from 'fast-check';

import { frameMasking, maskWords, wordMasking } from './ws-masking';

/** RFC 6455 §5.3, a byte at a time: what ws's own fallback does. */
function reference(source: Uint8Array, mask: Uint8Array, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => source[i]! ^ mask[i & 3]!);
}

/** `bytes` placed at byte offset `shift` of a larger buffer, so the property meets every alignment. */
function placed(bytes: Uint8Array, shift: number): Buffer {
  const room = Buffer.alloc(bytes.length + shift + 8);
  room.set(bytes, shift);
  return room.subarray(shift, shift + bytes.length);
}

describe('agent WebSocket frame masking (ws-masking)', () => {
  const payload = fc.uint8Array({ minLength: 0, maxLength: 300 });
  const key = fc.uint8Array({ minLength: 4, maxLength: 4 });
  const shift = fc.integer({ min: 0, max: 7 });

  it('masks as RFC 6455 does, for any payload, key, alignment of source and output, and output offset', () => {
    fc.assert(
      fc.property(payload, key, shift, shift, fc.integer({ min: 0, max: 14 }), (bytes, mask, sourceShift, outputShift, offset) => {
        const source = placed(bytes, sourceShift);
        const output = placed(new Uint8Array(bytes.length + offset + 3).fill(0xaa), outputShift);
        maskWords(source, mask, output, offset, bytes.length);
        expect(output.subarray(offset, offset + bytes.length)).toEqual(Buffer.from(reference(bytes, mask, bytes.length)));
        // Nothing outside the range is touched; the source is left as it was.
        expect([...output.subarray(0, offset), ...output.subarray(offset + bytes.length)].every((b) => b === 0xaa)).toBe(true);
        expect(source).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('unmasks in place (masking twice gives the payload back)', () => {
    fc.assert(
      fc.property(payload, key, shift, (bytes, mask, at) => {
        const buffer = placed(bytes, at);
        wordMasking.unmask(buffer, mask);
        expect(buffer).toEqual(Buffer.from(reference(bytes, mask, bytes.length)));
        wordMasking.unmask(buffer, mask);
        expect(buffer).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('uses the native binding when it loads, the JavaScript words when it does not', () => {
    const native = { mask: jest.fn(), unmask: jest.fn() };
    expect(frameMasking(() => native)).toBe(native);
    expect(
      frameMasking(() => {
        throw new Error("Cannot find module 'bufferutil'");
      }),
    ).toBe(wordMasking);
    expect(frameMasking(() => ({}) as never)).toBe(wordMasking);
  });
});

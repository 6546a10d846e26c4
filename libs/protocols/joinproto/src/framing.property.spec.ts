import { fc, test } from '@fast-check/jest';

import { encodeMessageFrame } from './codec';
import { type DecodeEvent, encodeFrame, FrameDecoder, lrc } from './framing';
import { arbitraryMessage } from './testing/arbitraries';

const MAX = 2048;
const frames = fc.array(
  arbitraryMessage.map(({ message }) => encodeMessageFrame(message)),
  { minLength: 1, maxLength: 6 },
);
const concat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const onlyFrames = (events: DecodeEvent[]) => events.filter((e) => e.kind === 'frame');

function pushInChunks(sut: FrameDecoder, bytes: Uint8Array, cuts: number[]): DecodeEvent[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const events: DecodeEvent[] = [];
  let from = 0;
  for (const to of [...points, bytes.length]) {
    events.push(...sut.push(bytes.subarray(from, to)));
    from = to;
  }
  return events;
}

describe('FrameDecoder properties (STYLE C8)', () => {
  test.prop([frames, fc.array(fc.nat(), { maxLength: 20 })], { numRuns: 200 })(
    '2. any chunking of a valid stream yields the same frames as the whole stream',
    (parts, cuts) => {
      const stream = concat(parts);
      const whole = new FrameDecoder({ maxFrameBytes: MAX }).push(stream);
      expect(whole.map((e) => e.kind)).toEqual(parts.map(() => 'frame'));
      expect(pushInChunks(new FrameDecoder({ maxFrameBytes: MAX }), stream, cuts)).toEqual(whole);
    },
  );

  test.prop([fc.uint8Array({ minLength: 1, maxLength: 300 }), frames], { numRuns: 200 })(
    '3. garbage ++ valid yields at least one garbage event, then the valid frames (resync)',
    (garbage, parts) => {
      const sut = new FrameDecoder({ maxFrameBytes: MAX });
      const events = [...sut.push(concat([garbage, ...parts])), ...sut.flush()];
      const tail = onlyFrames(events).slice(-parts.length);
      expect(events.some((e) => e.kind === 'garbage') || onlyFrames(events).length > parts.length).toBe(true);
      expect(tail.map((e) => e.kind === 'frame' && e.frame)).toEqual(parts.map((p) => p.subarray(1, p.length - 2)));
    },
  );

  test.prop([fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 20 }), fc.integer({ min: 16, max: 512 })], { numRuns: 200 })(
    '4. arbitrary bytes never throw, and bufferedBytes ≤ maxFrameBytes after every push',
    (chunks, maxFrameBytes) => {
      const sut = new FrameDecoder({ maxFrameBytes });
      for (const chunk of chunks) {
        for (const event of sut.push(chunk)) {
          if (event.kind === 'garbage') expect(event.error.name).toBe('JoinprotoError');
          else expect(event.frame.length + 3).toBeLessThanOrEqual(maxFrameBytes);
        }
        expect(sut.bufferedBytes).toBeLessThanOrEqual(maxFrameBytes);
      }
      sut.flush();
      expect(sut.bufferedBytes).toBe(0);
    },
  );

  test.prop([fc.uint8Array({ maxLength: 400 }), arbitraryMessage], { numRuns: 200 })(
    '5. after any garbage and a flush, the same decoder instance still decodes a valid frame',
    (garbage, { message }) => {
      const sut = new FrameDecoder({ maxFrameBytes: MAX });
      sut.push(garbage);
      sut.flush();
      const valid = encodeMessageFrame(message);
      expect(sut.push(valid)).toEqual([{ kind: 'frame', frame: valid.subarray(1, valid.length - 2) }]);
    },
  );
});

describe('lrc', () => {
  test.prop([fc.uint8Array({ maxLength: 600 }), fc.nat({ max: 7 }), fc.nat(), fc.nat()], { numRuns: 300 })(
    'equals the byte-by-byte XOR for any range of any (mis)aligned view',
    (bytes, shift, a, b) => {
      const backing = new Uint8Array(bytes.length + shift);
      backing.set(bytes, shift);
      const view = backing.subarray(shift);
      const start = bytes.length === 0 ? 0 : a % bytes.length;
      const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
      let expected = 0;
      for (let i = start; i < end; i++) expected ^= view[i];
      expect(lrc(view, start, end)).toBe(expected);
    },
  );

  test.prop([fc.array(fc.uint8Array({ minLength: 1, maxLength: 1200 }), { minLength: 1, maxLength: 120 })], { numRuns: 30 })(
    'frames carved from the shared slab keep their own bytes: a later frame never overwrites an earlier one',
    (datas) => {
      const decoder = new FrameDecoder({ maxFrameBytes: 4096 });
      const decoded: { frame: Uint8Array; copy: number[] }[] = [];
      for (const data of datas) {
        const tlv = new Uint8Array([0xdf, 0x24, data.length >> 8, data.length & 0xff, ...data]);
        for (const event of decoder.push(encodeFrame(tlv))) {
          if (event.kind === 'frame') decoded.push({ frame: event.frame, copy: Array.from(event.frame) });
        }
      }
      expect(decoded).toHaveLength(datas.length);
      for (const { frame, copy } of decoded) expect(Array.from(frame)).toEqual(copy);
    },
  );
});

import { fc, test } from '@fast-check/jest';

import { decodeMessage, encodeMessage, encodeMessageFrame } from './codec';
import { isJoinprotoError } from './errors';
import { FrameDecoder } from './framing';
import { arbitraryMessage } from './testing/arbitraries';
import { referenceDecodeMessage } from './testing/reference-codec';

describe('codec properties', () => {
  test.prop([arbitraryMessage], { numRuns: 300 })('decode(encode(m)) deep-equals m for every valid message', ({ message, direction }) => {
    expect(decodeMessage(encodeMessage(message), direction)).toEqual(message);
  });

  test.prop([arbitraryMessage], { numRuns: 100 })('a framed message passes the frame decoder unchanged', ({ message, direction }) => {
    const events = new FrameDecoder({ maxFrameBytes: 4096 }).push(encodeMessageFrame(message));
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event.kind === 'frame' && decodeMessage(event.frame, direction)).toEqual(message);
  });

  test.prop([fc.uint8Array({ maxLength: 200 }), fc.constantFrom('till->terminal' as const, 'terminal->till' as const)], { numRuns: 300 })(
    'arbitrary DATA either decodes to a message that round-trips, or throws a typed JoinprotoError',
    (bytes, direction) => {
      let message;
      try {
        message = decodeMessage(bytes, direction);
      } catch (error) {
        expect(isJoinprotoError(error)).toBe(true);
        return;
      }
      expect(decodeMessage(encodeMessage(message), direction)).toEqual(message);
    },
  );
});

/** DATA built from TLVs of the spec's tags (and a few foreign ones), valid or not, repeated or not. */
const arbitraryTlvData = fc
  .array(
    fc.record({
      tag: fc.oneof(
        fc.constantFrom(0xdf00, 0xdf01, 0xdf04, 0xdf05, 0xdf0a, 0xdf16, 0xdf1a, 0xdf23, 0xdf24, 0xdf25, 0xdf2b),
        fc.integer({ min: 0, max: 0xffff }),
      ),
      value: fc.oneof(
        fc
          .constantFrom('01', '02', '09', '26', '99', '464448', 'XX', '000', '000000001500', '544966******2078', 'OK', '4096')
          .map((t) => Buffer.from(t, 'latin1')),
        fc.uint8Array({ maxLength: 24 }),
      ),
    }),
    { maxLength: 12 },
  )
  .chain((tlvs) =>
    fc.tuple(
      fc.constant(tlvs),
      fc.nat({ max: 3 }), // bytes cut off the end: truncated TLVs
    ),
  )
  .map(([tlvs, cut]) => {
    const parts = tlvs.map(({ tag, value }) => Buffer.concat([Buffer.from([tag >> 8, tag & 0xff, value.length >> 8, value.length & 0xff]), value]));
    const data = Buffer.concat(parts);
    return new Uint8Array(data.subarray(0, Math.max(0, data.length - cut)));
  });

function outcome(decode: () => unknown): unknown {
  try {
    return { message: decode() };
  } catch (error) {
    return isJoinprotoError(error) ? { code: error.code, message: error.message, details: error.details, reply: error.reply } : { thrown: String(error) };
  }
}

describe('single-pass decodeMessage vs the reference decoder (testing/reference-codec.ts)', () => {
  test.prop([arbitraryTlvData, fc.constantFrom('till->terminal' as const, 'terminal->till' as const)], { numRuns: 1000 })(
    'same message, or the same error code, text and details, for any DATA',
    (data, direction) => {
      expect(outcome(() => decodeMessage(data, direction))).toEqual(outcome(() => referenceDecodeMessage(data, direction)));
    },
  );

  test.prop([arbitraryMessage], { numRuns: 200 })('same message for every valid message, with relay data split in chunks', ({ message, direction }) => {
    const data = encodeMessage(message, { dataChunkBytes: 7 });
    expect(decodeMessage(data, direction)).toEqual(referenceDecodeMessage(data, direction));
  });

  it('does not copy a receipt or a single relay chunk: the value is a plain Uint8Array view of DATA', () => {
    const receipt = new Uint8Array([1, 2, 3]);
    const data = encodeMessage({ type: 'SendDataRequest', id: '100753', connectionId: '1', data: receipt });
    const message = decodeMessage(data, 'terminal->till') as { data: Uint8Array };
    expect(message.data).toEqual(receipt);
    expect(message.data.constructor).toBe(Uint8Array);
    expect(message.data.buffer).toBe(data.buffer);
  });
});

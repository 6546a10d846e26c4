import { fc, test } from '@fast-check/jest';

import { decodeMessage, encodeMessage, encodeMessageFrame } from './codec';
import { isJoinprotoError } from './errors';
import { FrameDecoder } from './framing';
import { arbitraryMessage } from './testing/arbitraries';

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

import { Duplex } from 'node:stream';

import type { TunnelStream } from './stream';

/**
 * Adapts a TunnelStream to a `node:stream` Duplex, for `pipe` / `pipeline(socket, duplex, socket)` on the
 * agent or for session code that expects Node streams. Backpressure crosses in both directions:
 * a full Duplex read buffer pauses the TunnelStream (so no CREDIT goes back), and a TunnelStream
 * write returning `false` holds the Duplex write callback until drain.
 */
export function toDuplex(stream: TunnelStream): Duplex {
  const duplex = new Duplex({
    read() {
      stream.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (stream.write(chunk)) {
        callback();
        return;
      }
      if (stream.state === 'closed') {
        callback(new Error(`tunnel stream ${stream.id} is closed`));
        return;
      }
      const off = stream.onDrain(() => {
        off();
        callback();
      });
    },
    final(callback) {
      stream.end();
      callback();
    },
    destroy(error, callback) {
      stream.destroy(error ? 'CANCELLED' : undefined, error?.message);
      callback(error);
    },
  });
  stream.onData((chunk) => {
    if (!duplex.push(chunk)) stream.pause();
  });
  stream.onEnd(() => duplex.push(null));
  stream.onClose((error) => {
    if (error && !duplex.destroyed) duplex.destroy(error);
  });
  return duplex;
}

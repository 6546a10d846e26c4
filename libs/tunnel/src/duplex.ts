import { Duplex } from 'node:stream';

import type { TunnelStream } from './stream';

/**
 * Adapts a TunnelStream to a `node:stream` Duplex, for `pipe` / `pipeline(socket, duplex, socket)` on the
 * agent or for session code that expects Node streams. Backpressure crosses in both directions:
 * a full Duplex read buffer pauses the TunnelStream (so no CREDIT goes back), and a TunnelStream
 * write returning `false` holds the Duplex write callback until drain.
 *
 * Ending is graceful as for a socket: `end()` finishes ('finish') once CLOSE has gone out behind every written byte
 * (bytes still waiting for the peer's credit are not dropped), and a Duplex that ended both ways (its autoDestroy after
 * 'end' and 'finish') leaves the stream to close by itself. Only `destroy()` before that resets it (RESET, queued bytes
 * dropped, and the peer drops what it has not read yet). Until 2026-12-07 `final` returned at once, so the autoDestroy
 * that followed reset the stream with the tail of the data still waiting for credit.
 */
export function toDuplex(stream: TunnelStream): Duplex {
  let finishing: ((error?: Error | null) => void) | undefined;
  const finished = (error?: Error | null) => {
    const callback = finishing;
    finishing = undefined;
    callback?.(error);
  };
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
      if (stream.state === 'closed') return callback();
      finishing = callback;
      stream.end('NORMAL', '', () => finished());
    },
    destroy(error, callback) {
      // Ended both ways: CLOSE went out and the peer's came in; the stream closes by itself, a RESET would only make the
      // peer drop what it has not read yet.
      if (!error && duplex.readableEnded && duplex.writableFinished) return callback(null);
      stream.destroy(error ? 'CANCELLED' : undefined, error?.message);
      callback(error);
    },
  });
  stream.onData((chunk) => {
    if (!duplex.push(chunk)) stream.pause();
  });
  stream.onEnd(() => duplex.push(null));
  stream.onClose((error) => {
    finished(error);
    if (error && !duplex.destroyed) duplex.destroy(error);
  });
  return duplex;
}

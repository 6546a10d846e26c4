import { Duplex } from 'node:stream';

import type { TunnelStream } from './stream';

/**
 * A Duplex whose writes wait, while the stream is backpressured, in Node's own write buffer, which nothing bounds:
 * a writer that does not wait for 'drain' (a session answering each request of its peer) made it grow for as long as
 * the peer sent requests and read nothing back. On the connector a hostile agent did that to any open link (echo
 * requests or garbage, each answered, never read): megabytes of replies per second, until the process ran out of
 * memory (until 2026-12-07). Now what waits here and in the stream's queue together is bounded by the stream's own
 * limit (`writeLimit`, the multiplexer's `streamQueueLimit`): past it the stream is reset with `LIMIT_EXCEEDED`, as a
 * TunnelStream written past its limit is, and the Duplex is destroyed with it.
 */
class BoundedDuplex extends Duplex {
  constructor(
    private readonly stream: TunnelStream,
    options: ConstructorParameters<typeof Duplex>[0],
  ) {
    super(options);
  }

  override write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : ((chunk as Uint8Array | undefined)?.byteLength ?? 0);
    if (this.writableLength + this.stream.bufferedAmount + size > this.stream.writeLimit && this.stream.state !== 'closed') {
      this.stream.destroy('LIMIT_EXCEEDED', 'send buffer limit exceeded: the peer does not read');
      return false;
    }
    return (super.write as (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean)(chunk, encoding, callback);
  }
}

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
  const duplex = new BoundedDuplex(stream, {
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

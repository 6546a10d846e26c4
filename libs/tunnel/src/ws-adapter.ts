import type { Duplex } from 'node:stream';

import type { RawData, WebSocket } from 'ws';

import { Multiplexer, type MultiplexerOptions } from './multiplexer';
import type { FrameTransport } from './transport';

/** `WebSocket.OPEN`, without importing `ws` at run time. */
const WS_OPEN = 1;
/** Frames up to this size are held to the end of their tick and written together (tickBatcher). */
const SMALL_FRAME_BYTES = 16 * 1024;

/**
 * Binds a Multiplexer to a `ws` WebSocket: one binary message per frame, the socket's close becomes
 * `handleTransportClosed`, and the handshake starts as soon as the socket is open.
 *
 * Authentication is not done here: the connector authenticates the HTTP upgrade before any frame
 * is read (`noServer` + `handleUpgrade`, docs/tunnel.md §10), and creates the WebSocketServer with a
 * `maxPayload` just above the tunnel's `maxFrameBytes`.
 */
export function attachWebSocket(socket: WebSocket, options: MultiplexerOptions): Multiplexer {
  const batch = tickBatcher(socket);
  const transport: FrameTransport = {
    // ws calls back once the socket wrote the frame (a client copies it into a masked buffer even before).
    releasesOnFlush: true,
    send(frame, onFlushed) {
      if (socket.readyState !== WS_OPEN) {
        onFlushed(new Error('WebSocket is not open'));
        return;
      }
      batch(frame.byteLength);
      socket.send(frame, { binary: true }, (error) => onFlushed(error ?? undefined));
    },
    close: (code, reason) => socket.close(code, reason),
    terminate: () => socket.terminate(),
  };
  const mux = new Multiplexer(transport, options);
  socket.on('message', (data: RawData, isBinary: boolean) => mux.receive(toBytes(data), isBinary));
  socket.on('close', (code: number, reason: Buffer) => mux.handleTransportClosed({ code, reason: reason.toString('utf8') }));
  // ws emits 'close' after 'error'; the Multiplexer learns about the failure from the close.
  socket.on('error', () => undefined);
  if (socket.readyState === WS_OPEN) mux.start();
  else socket.once('open', () => mux.start());
  return mux;
}

/**
 * The frames one tick sends go to the socket as one write. Each `ws` send is its own socket write (a `writev`
 * of header and payload), and on a loopback socket the write's system call and the peer's wake-up, not the
 * bytes, are what costs (bench/README.md, "socket writes"): a tunnel's set-up sends `terminal-list` and the
 * link's OPEN in one tick, a command its OPEN and first DATA. So the first small frame of a tick corks the TCP socket
 * under `ws` and a `process.nextTick` uncorks it: the frames leave before any I/O of the next turn, in order,
 * with no timer. `ws` keeps the TCP socket in `_socket` (not typed): without one (a socket not open yet), frames
 * are written as they come.
 */
function tickBatcher(socket: WebSocket): (bytes: number) => void {
  let corked: Duplex | null = null;
  const uncork = (raw: Duplex) => {
    if (corked !== raw) return;
    corked = null;
    raw.uncork();
  };
  return (bytes) => {
    if (bytes > SMALL_FRAME_BYTES) {
      // A bulk frame is a write of its own anyway; holding it (and the pooled buffers behind it, released when
      // written) to the end of the tick starved the frame pool in relay bursts: flush what is held, do not cork.
      if (corked) uncork(corked);
      return;
    }
    if (corked) return;
    const raw = (socket as unknown as { _socket?: Duplex })._socket;
    if (!raw || typeof raw.cork !== 'function' || raw.destroyed) return;
    corked = raw;
    raw.cork();
    process.nextTick(uncork, raw);
  };
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

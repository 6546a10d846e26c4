import type { RawData, WebSocket } from 'ws';

import { Multiplexer, type MultiplexerOptions } from './multiplexer';
import type { FrameTransport } from './transport';

/** `WebSocket.OPEN`, without importing `ws` at run time. */
const WS_OPEN = 1;

/**
 * Binds a Multiplexer to a `ws` WebSocket: one binary message per frame, the socket's close becomes
 * `handleTransportClosed`, and the handshake starts as soon as the socket is open.
 *
 * Authentication is not done here: the connector authenticates the HTTP upgrade before any frame
 * is read (`noServer` + `handleUpgrade`, docs/tunnel.md §10), and creates the WebSocketServer with a
 * `maxPayload` just above the tunnel's `maxFrameBytes`.
 */
export function attachWebSocket(socket: WebSocket, options: MultiplexerOptions): Multiplexer {
  const transport: FrameTransport = {
    // ws calls back once the socket wrote the frame (a client copies it into a masked buffer even before).
    releasesOnFlush: true,
    send(frame, onFlushed) {
      if (socket.readyState !== WS_OPEN) {
        onFlushed(new Error('WebSocket is not open'));
        return;
      }
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

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

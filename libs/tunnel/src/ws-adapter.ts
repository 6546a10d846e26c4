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
 * `maxPayload` equal to the tunnel's `maxFrameBytes` (one message is one frame, header included).
 *
 * Memory of idle tunnels (a connector holds thousands, issue 19): the transport is one object with its methods on
 * the prototype, and the socket's listeners are functions shared by every socket (they find the tunnel on the
 * socket, `this` of an EventEmitter listener), not closures per connection.
 */
export function attachWebSocket(socket: WebSocket, options: MultiplexerOptions): Multiplexer {
  const mux = new Multiplexer(new WebSocketTransport(socket), options);
  (socket as TunnelSocket)[TUNNEL] = mux;
  socket.on('message', onSocketMessage);
  socket.on('close', onSocketClose);
  // The WebSocket's own pings and pongs cost work too (ws answers each ping): counted like the tunnel's PING/PONG.
  socket.on('ping', onSocketPing);
  socket.on('pong', onSocketPong);
  // ws emits 'close' after 'error'; the Multiplexer learns about the failure from the close.
  socket.on('error', ignoreSocketError);
  if (socket.readyState === WS_OPEN) mux.start();
  else socket.once('open', onSocketOpen);
  return mux;
}

const TUNNEL = Symbol('payorch.tunnel');
type TunnelSocket = WebSocket & { [TUNNEL]: Multiplexer };

function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as TunnelSocket)[TUNNEL].receive(toBytes(data), isBinary);
}

function onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
  (this as TunnelSocket)[TUNNEL].handleTransportClosed({ code, reason: reason.toString('utf8') });
}

function onSocketPing(this: WebSocket): void {
  (this as TunnelSocket)[TUNNEL].noteTransportControlFrame('WebSocket ping');
}

function onSocketPong(this: WebSocket): void {
  (this as TunnelSocket)[TUNNEL].noteTransportControlFrame('WebSocket pong');
}

function onSocketOpen(this: WebSocket): void {
  (this as TunnelSocket)[TUNNEL].start();
}

function ignoreSocketError(): void {}

/**
 * The frames one tick sends go to the socket as one write. Each `ws` send is its own socket write (a `writev`
 * of header and payload), and on a loopback socket the write's system call and the peer's wake-up, not the
 * bytes, are what costs (bench/README.md, "socket writes"): a tunnel's set-up sends `terminal-list` and the
 * link's OPEN in one tick, a command its OPEN and first DATA. So the first small frame of a tick corks the TCP socket
 * under `ws` and a `process.nextTick` uncorks it: the frames leave before any I/O of the next turn, in order,
 * with no timer. `ws` keeps the TCP socket in `_socket` (not typed): without one (a socket not open yet), frames
 * are written as they come.
 */
class WebSocketTransport implements FrameTransport {
  // ws calls back once the socket wrote the frame (a client copies it into a masked buffer even before).
  readonly releasesOnFlush = true;
  /** The TCP socket corked until the end of this tick (tick batching), if any. */
  private corked: Duplex | null = null;

  constructor(private readonly socket: WebSocket) {}

  send(frame: Uint8Array, onFlushed: (error?: Error) => void): void {
    if (this.socket.readyState !== WS_OPEN) {
      onFlushed(new Error('WebSocket is not open'));
      return;
    }
    this.batch(frame.byteLength);
    this.socket.send(frame, { binary: true }, (error) => onFlushed(error ?? undefined));
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  terminate(): void {
    this.socket.terminate();
  }

  private batch(bytes: number): void {
    if (bytes > SMALL_FRAME_BYTES) {
      // A bulk frame is a write of its own anyway; holding it (and the pooled buffers behind it, released when
      // written) to the end of the tick starved the frame pool in relay bursts: flush what is held, do not cork.
      if (this.corked) this.uncork(this.corked);
      return;
    }
    if (this.corked) return;
    const raw = (this.socket as unknown as { _socket?: Duplex })._socket;
    if (!raw || typeof raw.cork !== 'function' || raw.destroyed) return;
    this.corked = raw;
    raw.cork();
    process.nextTick(uncorkAtTickEnd, this, raw);
  }

  /** @internal the end of the tick (uncorkAtTickEnd), or a bulk frame. */
  uncork(raw: Duplex): void {
    if (this.corked !== raw) return;
    this.corked = null;
    raw.uncork();
  }
}

function uncorkAtTickEnd(transport: WebSocketTransport, raw: Duplex): void {
  transport.uncork(raw);
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

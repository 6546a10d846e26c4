import { decodeFrame } from '../codec';
import { MAX_MAX_FRAME_BYTES } from '../constants';
import type { Frame } from '../frames';
import type { FrameTransport } from '../transport';

/** A transport that records what a Multiplexer sends, so tests can play the peer byte by byte. */
export class RecordingTransport implements FrameTransport {
  readonly sent: Frame[] = [];
  closedWith: { code: number; reason: string } | undefined;

  send(bytes: Uint8Array, onFlushed: (error?: Error) => void): void {
    const event = decodeFrame(bytes, { maxFrameBytes: MAX_MAX_FRAME_BYTES });
    if (event.kind !== 'frame') throw new Error(`multiplexer sent garbage: ${event.error.message}`);
    this.sent.push(event.frame);
    onFlushed();
  }

  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }

  /** Removes and returns the frames recorded so far. */
  take(): Frame[] {
    return this.sent.splice(0, this.sent.length);
  }
}

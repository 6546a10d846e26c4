import { decodeFrameBody, parseFrameHeader, type CodecOptions, type DecodeEvent, type FrameHeader } from './codec';
import { FRAME_HEADER_BYTES, MAX_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES } from './constants';
import { TunnelProtocolError } from './errors';

/**
 * Decoder for the tunnel frames carried over a *byte stream* (a TCP socket, a pipe, a file), where
 * chunks are cut anywhere (STYLE C7 decoder contract). Over a WebSocket use `decodeFrame`: one
 * message is one frame.
 *
 * Differences from the resyncing decoders of the protocol libs (docs/tunnel.md §3.3):
 * a tunnel frame has no end delimiter and no checksum, and its magic byte can occur anywhere inside
 * DATA payloads, which carry arbitrary terminal bytes. After a header error the decoder cannot know
 * where the next frame starts, and scanning for the next plausible header would let bytes chosen
 * by a terminal or a relay peer be parsed as tunnel frames (frame injection). So a header error is
 * fatal: the decoder reports every buffered byte as garbage with reaction `close-tunnel`, enters the
 * `failed` state, reports later input as garbage too, and decodes again only after `reset()`.
 * Payload errors inside a frame whose header is valid are not fatal: the boundary is known, the
 * frame is reported as garbage and decoding continues with the next frame.
 */
export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private header: FrameHeader | undefined;
  private failure: TunnelProtocolError | undefined;

  constructor(options: CodecOptions) {
    const { maxFrameBytes } = options;
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < MIN_MAX_FRAME_BYTES || maxFrameBytes > MAX_MAX_FRAME_BYTES) {
      throw new RangeError(`maxFrameBytes must be an integer in ${MIN_MAX_FRAME_BYTES}..${MAX_MAX_FRAME_BYTES}`);
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held for an incomplete frame; never above `maxFrameBytes` between calls. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The fatal header error, once the stream is unusable. */
  get failed(): TunnelProtocolError | undefined {
    return this.failure;
  }

  push(chunk: Uint8Array): DecodeEvent[] {
    if (chunk.length === 0) return [];
    if (this.failure) return [{ kind: 'garbage', bytes: chunk, error: this.failure }];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const events: DecodeEvent[] = [];
    for (;;) {
      if (!this.header) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const header = parseFrameHeader(this.peek(FRAME_HEADER_BYTES), this.maxFrameBytes);
        if (header instanceof TunnelProtocolError) {
          this.failure = header;
          events.push({ kind: 'garbage', bytes: this.take(this.buffered), error: header });
          break;
        }
        this.header = header;
      }
      const frameLength = FRAME_HEADER_BYTES + this.header.payloadLength;
      if (this.buffered < frameLength) break;
      const bytes = this.take(frameLength);
      const header = this.header;
      this.header = undefined;
      events.push(decodeFrameBody(header, bytes.subarray(FRAME_HEADER_BYTES), bytes));
    }
    return events;
  }

  /** Forgets buffered bytes and a previous failure (e.g. on a new connection). */
  reset(): void {
    this.chunks = [];
    this.buffered = 0;
    this.header = undefined;
    this.failure = undefined;
  }

  /** The first `length` bytes, contiguous, without consuming them. */
  private peek(length: number): Uint8Array {
    const first = this.chunks[0];
    if (first.length >= length) return first.subarray(0, length);
    return this.gather(length, false);
  }

  /** Removes and returns the first `length` bytes, contiguous. */
  private take(length: number): Uint8Array {
    const first = this.chunks[0];
    if (first.length === length) {
      this.chunks.shift();
      this.buffered -= length;
      return first;
    }
    if (first.length > length) {
      this.chunks[0] = first.subarray(length);
      this.buffered -= length;
      return first.subarray(0, length);
    }
    return this.gather(length, true);
  }

  private gather(length: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(length);
    let filled = 0;
    let index = 0;
    while (filled < length) {
      const chunk = this.chunks[index];
      const part = Math.min(chunk.length, length - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (consume) {
        if (part === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(part);
      } else {
        index++;
      }
    }
    if (consume) this.buffered -= length;
    return out;
  }
}

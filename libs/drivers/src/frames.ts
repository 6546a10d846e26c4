import * as joinproto from '@payorch/joinproto';
import * as jpay from '@payorch/jpay';
import { scrubPans } from '@payorch/logging';
import * as ssi from '@payorch/ssi-ecr';

import type { DriverProtocol, ExecuteHooks, OperationFrame } from './types';

/** Longest `masked` text of a frame in the journal; a receipt or report beyond it is cut (and says so). */
export const MAX_MASKED_FRAME_CHARS = 2048;

/** The part of a byte transport the tap needs (every protocol library's ByteTransport has this shape). */
interface TappableTransport {
  write(bytes: Uint8Array): void;
  onData(listener: (chunk: Uint8Array) => void): void;
  onClose(listener: (error?: Error) => void): void;
  close(): void;
}

/** Frames of one direction of one connection: bytes in, masked frames out. */
type FrameReader = (chunk: Uint8Array) => { summary: string; masked: string }[];

/**
 * Decodes a copy of the bytes a driver exchanges with its terminal, frame by frame and per direction, and
 * hands each frame — masked by its protocol library's `maskFrame`, then every Luhn-valid card number that
 * survived scrubbed, then bounded (`bound`) — to the `onFrame` hook of the command running.
 * Bytes are decoded only while a command with `onFrame` runs (each command starts with fresh decoders:
 * the protocols here are request/response, nothing is in flight between commands). Control bytes (ACK,
 * NAK, EOT) and garbage are not frames and are not reported. The tap never throws into the session: a
 * frame it cannot render is reported as undecodable, a hook that throws loses that frame only.
 */
export class FrameTap {
  private hooks: ExecuteHooks | undefined;
  private readonly readers = new Set<{ out: FrameReader; in: FrameReader }>();

  constructor(private readonly protocol: DriverProtocol) {}

  /** Reports the frames to `hooks.onFrame` until the returned function is called (none if the hook is absent). */
  attach(hooks: ExecuteHooks): () => void {
    if (hooks.onFrame === undefined) return () => undefined;
    this.hooks = hooks;
    for (const reader of this.readers) Object.assign(reader, this.newReaders());
    return () => {
      if (this.hooks === hooks) this.hooks = undefined;
    };
  }

  /** The transport, with both directions copied to the tap. */
  wrap(transport: TappableTransport): TappableTransport {
    const readers = this.newReaders();
    this.readers.add(readers);
    // Registered before the session's own listener: an answer is journaled before what it causes.
    transport.onData((chunk) => this.see('in', readers.in, chunk));
    transport.onClose(() => this.readers.delete(readers));
    return {
      write: (bytes) => {
        this.see('out', readers.out, bytes);
        transport.write(bytes);
      },
      onData: (listener) => transport.onData(listener),
      onClose: (listener) => transport.onClose(listener),
      close: () => transport.close(),
    };
  }

  private see(direction: OperationFrame['direction'], read: FrameReader, chunk: Uint8Array): void {
    const hooks = this.hooks;
    if (hooks?.onFrame === undefined) return;
    let frames: { summary: string; masked: string }[];
    try {
      frames = read(chunk);
    } catch {
      frames = [{ summary: 'undecodable bytes', masked: `<${chunk.length} bytes, not decoded>` }];
    }
    for (const frame of frames) {
      try {
        hooks.onFrame({ direction, protocol: this.protocol, summary: bound(scrubPans(frame.summary)).slice(0, 200), masked: bound(scrubPans(frame.masked)) });
      } catch {
        // The journal is informational: a failing hook must not disturb the command.
      }
    }
  }

  private newReaders(): { out: FrameReader; in: FrameReader } {
    return { out: frameReader(this.protocol), in: frameReader(this.protocol) };
  }
}

function frameReader(protocol: DriverProtocol): FrameReader {
  switch (protocol) {
    case 'JOINPROTO': {
      const decoder = new joinproto.FrameDecoder({ maxFrameBytes: joinproto.DEFAULT_MAX_FRAME_BYTES });
      return (chunk) => decoder.push(chunk).flatMap((event) => (event.kind === 'frame' ? [joinproto.maskFrame(event.frame)] : []));
    }
    case 'JPAY': {
      const decoder = new jpay.FrameDecoder({ maxFrameBytes: jpay.DEFAULT_MAX_FRAME_BYTES });
      return (chunk) => decoder.push(chunk).flatMap((event) => (event.kind === 'frame' ? [jpay.maskFrame(event.frame)] : []));
    }
    case 'SSI_ECR': {
      const decoder = new ssi.FrameDecoder();
      return (chunk) => decoder.push(chunk).flatMap((event) => (event.kind === 'frame' ? [ssi.maskFrame(event.frame)] : []));
    }
  }
}

/**
 * Cut to MAX_MASKED_FRAME_CHARS, control characters but line breaks and tabs shown as `\uFFFD` (PostgreSQL's
 * jsonb refuses NUL, and a step that cannot be stored would take its batch down with it).
 */
function bound(raw: string): string {
  const text = raw.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\uFFFD');
  if (text.length <= MAX_MASKED_FRAME_CHARS) return text;
  return `${text.slice(0, MAX_MASKED_FRAME_CHARS)}… [${text.length - MAX_MASKED_FRAME_CHARS} more characters not kept]`;
}

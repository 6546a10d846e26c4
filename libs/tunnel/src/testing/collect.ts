import type { TunnelStreamError } from '../errors';
import type { TunnelStream } from '../stream';

export interface Collected {
  data: Buffer;
  ended: boolean;
  error: TunnelStreamError | undefined;
}

/** Reads a stream to its close. */
export function collect(stream: TunnelStream): Promise<Collected> {
  const chunks: Buffer[] = [];
  let ended = false;
  stream.onData((chunk) => chunks.push(Buffer.from(chunk)));
  stream.onEnd(() => {
    ended = true;
  });
  return new Promise((resolve) => stream.onClose((error) => resolve({ data: Buffer.concat(chunks), ended, error })));
}

/** Writes `data` in chunks of `chunkSize`, honouring `write() === false` / drain, then ends. */
export async function writeAll(stream: TunnelStream, data: Uint8Array, chunkSize = 16 * 1024): Promise<void> {
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    if (!stream.write(data.subarray(offset, offset + chunkSize))) {
      await new Promise<void>((resolve) => {
        const off = stream.onDrain(() => {
          off();
          resolve();
        });
      });
    }
  }
  stream.end();
}

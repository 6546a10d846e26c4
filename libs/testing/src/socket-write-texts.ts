import net from 'node:net';

/**
 * The text (latin1) of every socket write this process makes while `fn` runs, one entry per write (a corked batch
 * is one): pg's wire messages carry their SQL in clear, so a test can tell which statements left together.
 * Wraps `net.Socket.prototype._writeGeneric` (where Node's `_write` and `_writev` both end) and restores it.
 */
export async function socketWriteTexts(fn: () => Promise<unknown>): Promise<string[]> {
  const writes: string[] = [];
  const proto = net.Socket.prototype as unknown as { _writeGeneric: (this: net.Socket, writev: boolean, data: unknown, ...rest: unknown[]) => unknown };
  const original = proto._writeGeneric;
  proto._writeGeneric = function recorded(this: net.Socket, writev: boolean, data: unknown, ...rest: unknown[]) {
    const chunks = writev ? (data as { chunk: Buffer | string }[]).map((c) => c.chunk) : [data as Buffer | string];
    writes.push(chunks.map((c) => (typeof c === 'string' ? c : c.toString('latin1'))).join(''));
    return original.call(this, writev, data, ...rest);
  };
  try {
    await fn();
  } finally {
    proto._writeGeneric = original;
  }
  return writes;
}

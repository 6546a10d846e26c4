/**
 * Counts the writes a bench's process makes on its TCP sockets, per kind of socket (pg, redis, http, terminal, …).
 * Every `net.Socket` write, a single buffer or a corked batch, ends in `Socket.prototype._writeGeneric` (Node ≥ 18:
 * `_write` and `_writev` both call it), which hands it to libuv as one write: on a loopback socket about one system
 * call, plus the peer's wake-up, each. The operations profile showed those writes, not the bytes, to be what costs:
 * count them per business event next to the SQL (bench/support/sql-counter.ts). Install before the sockets are
 * made; the kind of a socket is decided once, at its first write, by `classify`.
 */
import net from 'node:net';

/** Writes per kind of socket. */
export type SocketWriteCounts = Record<string, number>;

type Classify = (local: number | undefined, remote: number | undefined) => string;

const counts: SocketWriteCounts = {};
const kinds = new WeakMap<net.Socket, string>();
let classify: Classify = () => 'other';
let installed = false;

/**
 * Wraps `net.Socket.prototype._writeGeneric` once per process. `kindOf` names a socket from its local and remote
 * ports (e.g. the remote port 5432 is `pg`); it may be replaced later with `classifySockets` (ports known after start).
 */
export function installSocketWriteCounter(kindOf?: Classify): void {
  if (kindOf !== undefined) classify = kindOf;
  if (installed) return;
  installed = true;
  const proto = net.Socket.prototype as unknown as { _writeGeneric: (this: net.Socket, ...args: unknown[]) => unknown };
  const original = proto._writeGeneric;
  if (typeof original !== 'function') throw new Error('net.Socket.prototype._writeGeneric is missing: cannot count socket writes on this Node');
  proto._writeGeneric = function counted(this: net.Socket, ...args: unknown[]) {
    let kind = kinds.get(this);
    if (kind === undefined) {
      kind = classify(this.localPort, this.remotePort);
      // A socket not connected yet (its write is queued until it is), or whose port is not known yet (a
      // keep-alive socket opened before the measurement), is classified again at its next write.
      if (this.remotePort !== undefined && kind !== 'other') kinds.set(this, kind);
    }
    counts[kind] = (counts[kind] ?? 0) + 1;
    return original.apply(this, args);
  };
}

/** Replaces the classifier (sockets already classified keep their kind). */
export function classifySockets(kindOf: Classify): void {
  classify = kindOf;
}

export function socketWriteSnapshot(): SocketWriteCounts {
  return { ...counts };
}

/** Writes per event between two snapshots, per kind and in total (`all`), one decimal. */
export function writesPerEvent(before: SocketWriteCounts, after: SocketWriteCounts, events: number): SocketWriteCounts {
  const n = Math.max(1, events);
  const result: SocketWriteCounts = {};
  let all = 0;
  for (const kind of Object.keys(after).sort()) {
    const writes = (after[kind] ?? 0) - (before[kind] ?? 0);
    if (writes === 0) continue;
    all += writes;
    result[kind] = Math.round((writes / n) * 10) / 10;
  }
  result.all = Math.round((all / n) * 10) / 10;
  return result;
}

/** `pg 9.0, redis 5.0, http 1.0 (all 15.0)`. */
export function writesText(perEvent: SocketWriteCounts): string {
  const parts = Object.entries(perEvent)
    .filter(([kind]) => kind !== 'all')
    .map(([kind, n]) => `${kind} ${n.toFixed(1)}`);
  return `${parts.join(', ')} (all ${(perEvent.all ?? 0).toFixed(1)})`;
}

/**
 * At most `limit` slots held per key (a tenant's live event streams, its waiting `?wait=` requests on one gateway): `take`
 * hands out one as a release function (idempotent: later calls do nothing), or null when the key holds them all. An
 * idle key holds no memory.
 */
export class KeyedSlots {
  private readonly held = new Map<string, number>();

  constructor(private readonly limit: number) {}

  take(key: string): (() => void) | null {
    const count = this.held.get(key) ?? 0;
    if (count >= this.limit) return null;
    this.held.set(key, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(key) ?? 1) - 1;
      if (left > 0) this.held.set(key, left);
      else this.held.delete(key);
    };
  }

  /** Slots `key` holds now. */
  of(key: string): number {
    return this.held.get(key) ?? 0;
  }

  /** Slots held now, all keys together. */
  get total(): number {
    let total = 0;
    for (const count of this.held.values()) total += count;
    return total;
  }
}

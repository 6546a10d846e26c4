/**
 * A deterministic generator of floats in [0, 1) from `seed` (mulberry32): fault specs replay a run from its
 * FAULT_SEED, and benches give the agents the same backoff draws against the baseline and the product.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

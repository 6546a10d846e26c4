import { describe, expect, it } from '@jest/globals';

import { FreshReads } from './fresh-reads';

/** A read answered when the test says. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('FreshReads: a read answered after a live event does not undo it', () => {
  it('applies the events seen while a read was in flight again after its answer, in order', async () => {
    const reads = new FreshReads();
    let state = 'unknown';
    const answer = deferred<string>();
    const loading = reads.load(
      () => answer.promise,
      (value) => (state = value),
    );
    // The read was made while the terminal was offline; its online event arrives before the answer.
    reads.patch(() => (state = 'online'));
    expect(state).toBe('online');
    answer.resolve('offline');
    await loading;
    expect(state).toBe('online');
    // With no read in flight, a patch is applied once and never again.
    let applied = 0;
    reads.patch(() => (applied += 1));
    await reads.load(
      async () => 'offline',
      (value) => (state = value),
    );
    expect([state, applied]).toEqual(['offline', 1]);
  });

  it('applies only the answer of the latest read started, however the answers come back', async () => {
    const reads = new FreshReads();
    const applied: string[] = [];
    const first = deferred<string>();
    const second = deferred<string>();
    const a = reads.load(
      () => first.promise,
      (value) => applied.push(value),
    );
    const b = reads.load(
      () => second.promise,
      (value) => applied.push(value),
    );
    second.resolve('newer');
    await b;
    first.resolve('older');
    await a;
    expect(applied).toEqual(['newer']);
  });

  it('passes a failed read on, and forgets it', async () => {
    const reads = new FreshReads();
    await expect(
      reads.load(
        () => Promise.reject(new Error('503')),
        () => undefined,
      ),
    ).rejects.toThrow('503');
    let patched = 0;
    reads.patch(() => (patched += 1));
    await reads.load(
      async () => 1,
      () => undefined,
    );
    expect(patched).toBe(1);
  });
});

import { BatchedLookup } from './batched-lookup';

/** A load the test settles by hand, recording each batch it was given. */
function controlledLoad() {
  const batches: string[][] = [];
  const pending: Array<{ resolve: (found: Map<string, number>) => void; reject: (error: Error) => void; keys: string[] }> = [];
  const load = (keys: string[]) =>
    new Promise<Map<string, number>>((resolve, reject) => {
      batches.push(keys);
      pending.push({ resolve, reject, keys });
    });
  const until = async (n: number) => {
    while (pending.length < n) await new Promise((resolve) => setImmediate(resolve));
  };
  return { batches, pending, load, until };
}

describe(BatchedLookup.name, () => {
  it('reads the keys asked for in one tick with one load, each key once, and answers each caller', async () => {
    const { batches, pending, load, until } = controlledLoad();
    const sut = new BatchedLookup(load);
    const answers = Promise.all(['a', 'b', 'a', 'c'].map((key) => sut.get(key)));
    await until(1);
    pending[0]!.resolve(
      new Map([
        ['a', 1],
        ['c', 3],
      ]),
    );
    await expect(answers).resolves.toEqual([1, undefined, 1, 3]);
    expect(batches).toEqual([['a', 'b', 'c']]);
  });

  it('runs one load at a time: keys asked for meanwhile form the next batch, split at maxBatch', async () => {
    const { batches, pending, load, until } = controlledLoad();
    const sut = new BatchedLookup(load, { maxBatch: 2 });
    const first = sut.get('a');
    await until(1);
    const later = ['b', 'c', 'd'].map((key) => sut.get(key));
    await new Promise((resolve) => setImmediate(resolve));
    expect(pending).toHaveLength(1);
    pending[0]!.resolve(new Map([['a', 1]]));
    await expect(first).resolves.toBe(1);
    await until(2);
    expect(batches[1]).toEqual(['b', 'c']);
    pending[1]!.resolve(
      new Map([
        ['b', 2],
        ['c', 3],
      ]),
    );
    await until(3);
    expect(batches[2]).toEqual(['d']);
    pending[2]!.resolve(new Map([['d', 4]]));
    await expect(Promise.all(later)).resolves.toEqual([2, 3, 4]);
  });

  it('rejects every caller of a failed load and reads later keys again', async () => {
    const { pending, load, until } = controlledLoad();
    const sut = new BatchedLookup(load);
    const failed = [sut.get('a'), sut.get('b')];
    await until(1);
    pending[0]!.reject(new Error('connection lost'));
    for (const answer of failed) await expect(answer).rejects.toThrow('connection lost');
    const again = sut.get('a');
    await until(2);
    pending[1]!.resolve(new Map([['a', 1]]));
    await expect(again).resolves.toBe(1);
  });
});

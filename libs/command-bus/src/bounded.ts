/**
 * Waits for `promise`, at most `ms`. Used when stopping a read loop that blocks on a connection the
 * caller owns: a read stuck on a Redis that is away only ends when that connection is closed, which
 * happens after the loop's owner has stopped (the timer never outlives the wait). Resolves false on timeout.
 */
export async function waitAtMost(promise: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  if (!promise) return true;
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return settled;
}

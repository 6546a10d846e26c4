/** Rejects after `ms` unless `promise` settles first; the timer never outlives the race. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A health probe: 'ok', or 'error: <reason>' (2 s budget). */
export async function probe(fn: () => Promise<unknown>): Promise<string> {
  try {
    await withTimeout(fn(), 2000, 'check');
    return 'ok';
  } catch (error) {
    return `error: ${(error as Error).message}`;
  }
}

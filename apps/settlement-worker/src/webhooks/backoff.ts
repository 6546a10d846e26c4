/**
 * Delay before attempt `n + 1` after `n` failed attempts: base × 2^(n-1), capped. With the defaults
 * (base 30 s, cap 12 h, 15 attempts) the retries come after 30 s, 1, 2, 4, 8, 16, 32 min, 1.1, 2.1,
 * 4.3, 8.5 h, then 12 h three times: the 15th and last attempt is ~53 h (2.2 days) after the first.
 */
export function retryDelayMs(failedAttempts: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(Math.max(failedAttempts - 1, 0), 40);
  return Math.min(baseMs * 2 ** exp, maxMs);
}

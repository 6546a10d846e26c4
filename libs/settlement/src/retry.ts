/** First delay before a new close-day when the last one provably did nothing (issue 15: final within 30 s of a fault). */
export const CLOSE_DAY_REDO_MS = 2_000;

/** Why an attempt was deferred; `CLOSE_DAY_FAILED` = the close-day operation ended FAILED or CANCELED. */
export interface SettlementDeferral {
  readonly code: string;
  /** Deferrals so far, this one included (1 for the first). */
  readonly retries: number;
  /** The code of the previous deferral of this settlement, if any. */
  readonly previousCode?: string;
}

/**
 * Delay before a deferred settlement's next attempt: `baseMs × 2^(retries-1)` capped at `maxMs` (an offline or
 * busy terminal, or a close-day whose outcome recovery has not decided yet: never re-sent, only asked again),
 * except after a close-day that provably did nothing — FAILED (never sent, or refused) or CANCELED on the
 * terminal, which the settlement answers with a new close-day anyway. Typically the link dropped under it (a
 * connector or agent restart, a cut) and the terminal is back in seconds: the first such redo comes after
 * CLOSE_DAY_REDO_MS. A close-day that fails again is a terminal that refuses it: the normal backoff then, so a
 * refusing terminal is not hammered.
 */
export function settlementRetryDelayMs(deferral: SettlementDeferral, policy: { readonly baseMs: number; readonly maxMs: number }): number {
  const backoff = Math.min(policy.baseMs * 2 ** (deferral.retries - 1), policy.maxMs);
  const firstRedo = deferral.code === 'CLOSE_DAY_FAILED' && deferral.previousCode !== 'CLOSE_DAY_FAILED';
  return firstRedo ? Math.min(CLOSE_DAY_REDO_MS, backoff) : backoff;
}

import type { TerminalStatus } from './codes';
import type { FinancialMethod, SsiRequest } from './messages';
import type { TransactionResult } from './results';

/**
 * Proof that a GetLastResult / GetResultByUid answer belongs to our operation (issue 5: never attribute
 * an older result to a new operation). Spec 5.1: every accepted financial request overwrites the
 * GetLastResult buffer, so "ours" = different from the buffer read before sending, and consistent with
 * what we asked for (method, amount, transactionUid).
 */
export type MatchVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: MismatchReason };

export type MismatchReason = 'EMPTY' | 'SAME_AS_BEFORE' | 'UID_MISMATCH' | 'METHOD_MISMATCH' | 'AMOUNT_MISMATCH';

export interface MatchContext {
  readonly request: SsiRequest<FinancialMethod>;
  /** The uid we sent, when the terminal supports it (later revision). */
  readonly transactionUid?: string;
  /** GetLastResult before sending: a result, `null` when the buffer was empty (E20), absent if unknown. */
  readonly baseline?: TransactionResult | null;
  /** Amount of the second step of a two-step Purchase, which may differ from step 1. */
  readonly secondStepAmount?: number;
}

/** The fields that identify one terminal operation; two reads of the same buffer give the same value. */
export function resultFingerprint(result: TransactionResult): string {
  return JSON.stringify([
    result.originalTrnName,
    result.invoiceNum,
    result.rrn,
    result.authCode,
    result.date,
    result.time,
    result.transAmount,
    result.transactionResultRaw,
    result.errorCode,
    result.transactionUid,
    result.panMasked,
  ]);
}

function acceptableAmounts(context: MatchContext, result: TransactionResult): number[] | undefined {
  const { request } = context;
  const p = ('params' in request ? request.params : {}) as Record<string, unknown>;
  const amounts = (...xs: unknown[]): number[] => xs.filter((x): x is number => typeof x === 'number');
  switch (request.method) {
    case 'Purchase': {
      // transAmount in the result is "with the discount" (table 4.3.2): accept either side of it.
      const base = amounts(p.transAmount, p.discountedAmount, context.secondStepAmount);
      const discount = result.discount ?? 0;
      return [...base, ...base.map((a) => a - discount)];
    }
    case 'SalePreauth':
      return amounts(p.transAmount, p.endAmount);
    case 'Refund':
    case 'CashBack':
    case 'Preauthorization':
    case 'Cash':
    case 'Deposit':
    case 'PartialVoid':
      return amounts(p.transAmount);
    case 'Balance': // spec 5.5.1: transAmount is always 0 for Balance
    case 'Void':
    case 'VoidPreauth':
    case 'Echo':
      return undefined;
  }
}

export function matchResult(context: MatchContext, result: TransactionResult): MatchVerdict {
  if (result.originalTrnName === undefined && result.transactionUid === undefined) return { ok: false, reason: 'EMPTY' };
  if (context.transactionUid !== undefined && result.transactionUid !== undefined && result.transactionUid !== context.transactionUid) {
    return { ok: false, reason: 'UID_MISMATCH' };
  }
  const uidProven = context.transactionUid !== undefined && result.transactionUid === context.transactionUid;
  if (!uidProven && context.baseline !== null) {
    // Without a uid the before/after comparison is mandatory; an unknown baseline proves nothing.
    if (context.baseline === undefined || resultFingerprint(context.baseline) === resultFingerprint(result)) {
      return { ok: false, reason: 'SAME_AS_BEFORE' };
    }
  }
  if (result.originalTrnName !== undefined && result.originalTrnName.toLowerCase() !== context.request.method.toLowerCase()) {
    return { ok: false, reason: 'METHOD_MISMATCH' };
  }
  const accepted = acceptableAmounts(context, result);
  // A declined or cancelled result may carry 0 instead of the requested amount; no money moved either way.
  const zeroOnFailure = result.error && result.transAmount === 0;
  if (accepted && result.transAmount !== undefined && !zeroOnFailure && !accepted.includes(result.transAmount)) {
    return { ok: false, reason: 'AMOUNT_MISMATCH' };
  }
  return { ok: true };
}

/**
 * What recovery saw on the terminal when the last result was not provably ours: the status before and after
 * re-reading the GetLastResult buffer, and that buffer (`null` when empty, E20).
 */
export interface IdleEvidence {
  /** GetLastResult before sending, as in the ticket: a result, `null` when empty, absent if unknown. */
  readonly baseline?: TransactionResult | null;
  readonly statusBefore: TerminalStatus;
  readonly lastResult: TransactionResult | null;
  readonly statusAfter: TerminalStatus;
}

export type NotExecutedVerdict =
  { readonly proven: true } | { readonly proven: false; readonly reason: 'BASELINE_UNKNOWN' | 'TERMINAL_BUSY' | 'RESULT_CHANGED' };

/**
 * Proof that a financial request never executed (issue 15: a request lost unread with its link). Spec 5.1:
 * every financial request the terminal accepts (error=false) overwrites the GetLastResult buffer, a refused one
 * leaves it unchanged; spec 5.5.1: the buffer survives a reboot; spec 4.3.4: S00 = idle, no operation running.
 * So a terminal idle on both sides of the read, whose buffer still holds the baseline read right before our
 * request was sent, never accepted that request — provided no other request could have run and restored it
 * (payorch sends nothing else to a terminal with an unknown operation, and a standalone operation would change
 * the buffer). Anything else — busy, a changed buffer (ours, or someone's by hand), no baseline — proves nothing.
 */
export function provesNotExecuted(evidence: IdleEvidence): NotExecutedVerdict {
  const { baseline, lastResult } = evidence;
  if (baseline === undefined) return { proven: false, reason: 'BASELINE_UNKNOWN' };
  if (evidence.statusBefore !== 'S00' || evidence.statusAfter !== 'S00') return { proven: false, reason: 'TERMINAL_BUSY' };
  const isEmpty = (result: TransactionResult | null): boolean =>
    result === null || (result.originalTrnName === undefined && result.transactionUid === undefined);
  const unchanged = baseline === null ? isEmpty(lastResult) : lastResult !== null && resultFingerprint(baseline) === resultFingerprint(lastResult);
  return unchanged ? { proven: true } : { proven: false, reason: 'RESULT_CHANGED' };
}

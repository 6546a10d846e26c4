import {
  JOINPROTO_TOTALS_MISMATCH,
  parseTerminalTotals,
  type SettlementOutcomeFields,
  settlementRawFromOutcome,
  SSI_TOTALS_MISMATCH,
  TotalsUnavailable,
} from './parse';
import type { SettlementProtocol, Totals } from './totals';

/**
 * What a close-day answer means for the settlement (docs/reconciliation.md "Close-day answer → outcome"). Every
 * answer of every protocol lands in exactly one of these; only `not_closed` leaves the terminal's day open.
 */
export type CloseDayOutcomeKind =
  /** The terminal closed its day and reported totals (Joinproto 000, JPAY sreport passed, SSI ZReport). */
  | 'closed'
  /** Closed, and the terminal says its totals differ from the host's (Joinproto 915, SSI 95, JPAY orig-amount ≠ amount). */
  | 'closed_with_mismatch'
  /** Closed with zero totals although this batch had none of our operations after a close-day outside a settlement. */
  | 'already_closed'
  /** Closed with zero totals (SSI isBatchEmpty, a receipt saying no operations, an empty JPAY log). */
  | 'empty_day'
  /** Closed, but the answer carries no totals in a form we know (the Joinproto spec's own `данные` receipt, with 000 or 915). */
  | 'closed_without_totals'
  /** The terminal did not close its day (FAILED/CANCELED, or declined without totals: Joinproto XX FAILED, SSI error other than 95). */
  | 'not_closed';

export type CloseDayOutcome =
  | { closed: true; kind: Exclude<CloseDayOutcomeKind, 'not_closed' | 'closed_without_totals'>; totals: Totals }
  | { closed: true; kind: 'closed_without_totals'; unavailable: string; hostMismatch: boolean }
  | { closed: false; kind: 'not_closed'; reason: string };

/** A close-day operation as stored (TerminalOperation of type SETTLEMENT or REPORT_Z, its outcome fields). */
export interface CloseDayOperation extends SettlementOutcomeFields {
  state: string;
  stateReason?: string | null;
}

/** Operation types that close the terminal's day (a batch boundary whichever path sent them). */
export const CLOSE_DAY_TYPES = ['SETTLEMENT', 'REPORT_Z'] as const;

/** The answer carries the protocol's "totals differ from the host's" code (Joinproto DF16 915, SSI response code 95). */
function saysTotalsDiffer(protocol: SettlementProtocol, op: CloseDayOperation): boolean {
  switch (protocol) {
    case 'JOINPROTO':
      return op.responseCode === JOINPROTO_TOTALS_MISMATCH;
    case 'SSI_ECR': {
      const report = (op.data?.report ?? null) as { responseCode?: string; errorCode?: string } | null;
      return [report?.responseCode, report?.errorCode].some((code) => code !== undefined && /^\d+$/.test(code) && Number(code) === SSI_TOTALS_MISMATCH);
    }
    case 'JPAY':
      // JPAY reports a host difference inside an `ok` sreport (orig-amount ≠ amount), read with the totals.
      return false;
  }
}

const isEmpty = (totals: Totals) => Object.values(totals.buckets).every((b) => b.count === 0 && b.amount === 0) && totals.net === 0;

/**
 * Classifies a final close-day operation. APPROVED is always closed. DECLINED is closed when the answer carries the
 * protocol's "totals differ" code with totals (Joinproto 915, SSI 95): the day *is* closed, the difference is a
 * reconciliation finding, never a failed settlement. Anything else declined, failed or canceled is not closed.
 */
export function closeDayOutcome(protocol: SettlementProtocol, op: CloseDayOperation, context: { closedOutsideSince?: boolean } = {}): CloseDayOutcome {
  if (op.state !== 'APPROVED' && op.state !== 'DECLINED') {
    return { closed: false, kind: 'not_closed', reason: op.stateReason ?? op.state };
  }
  let totals: Totals;
  try {
    totals = parseTerminalTotals(settlementRawFromOutcome(protocol, op));
  } catch (error) {
    if (!(error instanceof TotalsUnavailable)) throw error;
    const differ = saysTotalsDiffer(protocol, op);
    if (op.state === 'DECLINED' && !differ) {
      return { closed: false, kind: 'not_closed', reason: `the terminal declined the close-day: ${op.stateReason ?? op.responseCode ?? ''}`.trim() };
    }
    return { closed: true, kind: 'closed_without_totals', unavailable: error.message, hostMismatch: differ };
  }
  const settlementResult =
    protocol === 'JPAY' ? ((op.data?.sreport ?? op.data?.report) as { settlementResult?: string } | null | undefined)?.settlementResult : undefined;
  if (settlementResult !== undefined && settlementResult !== 'passed') {
    // §8.12: `settlement-result` failed = the settlement was not performed (the log is kept).
    return { closed: false, kind: 'not_closed', reason: `the terminal's settlement-result is ${settlementResult}` };
  }
  if (op.state === 'DECLINED' && !totals.hostMismatch) {
    // Declined without the protocol's mismatch code: the figures (if any) are not a closed batch's.
    return { closed: false, kind: 'not_closed', reason: `the terminal declined the close-day: ${op.stateReason ?? op.responseCode ?? ''}`.trim() };
  }
  if (totals.hostMismatch) return { closed: true, kind: 'closed_with_mismatch', totals };
  if (isEmpty(totals)) return { closed: true, kind: context.closedOutsideSince ? 'already_closed' : 'empty_day', totals };
  return { closed: true, kind: 'closed', totals };
}

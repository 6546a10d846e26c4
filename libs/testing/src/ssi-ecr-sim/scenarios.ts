import type { TerminalErrorCode, TerminalStatus, TransactionResultValue } from '@payorch/ssi-ecr';

/**
 * Deterministic outcomes, chosen by the last two digits (the kopecks) of `transAmount`. The same
 * table is in README.md; keep them in step.
 */
export interface Scenario {
  readonly name: string;
  /** Status script after the ack; the operation completes after the last entry (then S00). */
  readonly script: readonly TerminalStatus[];
  /** Rejected at the ack (nothing starts; GetLastResult unchanged, spec 5.1). */
  readonly ackError?: TerminalErrorCode;
  readonly result?: TransactionResultValue;
  readonly errorCode?: TerminalErrorCode;
  readonly responseCode?: string;
  /** Close every connection when the script enters this status (the operation goes on). */
  readonly dropConnectionsAt?: TerminalStatus;
  /** Two-step Purchase (later revision): S08 after step 1, step 2 continues the script. */
  readonly twoStep?: boolean;
}

const hold = (status: TerminalStatus, polls: number): TerminalStatus[] => Array<TerminalStatus>(polls).fill(status);
const CARD_FLOW: readonly TerminalStatus[] = ['S01', 'S02', 'S03', 'S04', 'S05', 'S07'];

export const DEFAULT_SCENARIO: Scenario = { name: 'approved', script: CARD_FLOW, result: 'APPROVED_ONLINE', responseCode: '00' };

export const SCENARIOS: Readonly<Record<number, Scenario>> = {
  51: { name: 'declined by the bank', script: CARD_FLOW, result: 'DECLINED_ONLINE', errorCode: 'E21', responseCode: '51' },
  52: { name: 'wrong PIN', script: ['S01', 'S02', 'S03', 'S07'], result: 'PIN_ERROR', errorCode: 'E11', responseCode: '55' },
  53: { name: 'no connection to the bank', script: ['S01', 'S02', 'S03', 'S04', 'S07'], result: 'NO_CONNECTION', errorCode: 'E10' },
  54: { name: 'card read error', script: ['S01', 'S02'], result: 'FAILED', errorCode: 'E16' },
  55: { name: 'card never presented (terminal times out)', script: ['S01', ...hold('S02', 40)], result: 'CANCELLED', errorCode: 'E12' },
  56: { name: 'two-step purchase', script: ['S01', 'S02', 'S03', 'S08', 'S04', 'S05'], result: 'APPROVED_ONLINE', responseCode: '00', twoStep: true },
  57: { name: 'connection drops at S02, approved', script: CARD_FLOW, result: 'APPROVED_ONLINE', responseCode: '00', dropConnectionsAt: 'S02' },
  58: { name: 'printer out of paper', script: [], ackError: 'E18' },
  59: { name: 'approved offline', script: ['S01', 'S02', 'S05'], result: 'APPROVED_OFFLINE', responseCode: 'Y1' },
  61: { name: 'slow bank (S04 held)', script: ['S01', 'S02', 'S03', ...hold('S04', 10), 'S05'], result: 'APPROVED_ONLINE', responseCode: '000' },
};

/** Amount above which the ack is E19 "Transaction amount out of limit". */
export const DEFAULT_AMOUNT_LIMIT = 10_000_000;

export function scenarioFor(amount: number | undefined): Scenario {
  if (amount === undefined) return DEFAULT_SCENARIO;
  return SCENARIOS[amount % 100] ?? DEFAULT_SCENARIO;
}

/** Reports: no card, just the bank and the printer. */
export const REPORT_SCRIPT: readonly TerminalStatus[] = ['S01', 'S04', 'S05'];

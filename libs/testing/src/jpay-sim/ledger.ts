/**
 * The simulator's transaction log: receipt numbers, void lookups, report totals and settlement.
 * Card and SBP transactions have separate receipt counters (§8.10 "Номер транзакции в поле seq
 * назначается независимо"). Only approved card entries count in the report and settlement totals (SBP is the SBP
 * agent's, listed in a full report but outside the totals; a partial void is a reversal of the part voided, §8.9).
 */
import type { CardTypeTotals, GrandTotals, ReportTransaction, SettlementReport, TerminalParameters, XReport } from '@payorch/jpay';

import { SIM_CARD } from './scenarios';

export type LogType = 'purchase' | 'refund' | 'purchase-with-cashback' | 'purchasereversal' | 'refundreversal';

export interface LogEntry {
  readonly seq: string;
  readonly type: LogType;
  readonly status: 'approved' | 'declined';
  readonly amount: number;
  readonly amountOther?: number;
  readonly currency: string;
  readonly rrn: string;
  readonly authNumber: string;
  readonly time: string;
  readonly iface: 'card' | 'sbp';
  /** Fully voided (a partial void leaves it voidable for the rest). */
  reversed: boolean;
  /** Sum of the approved voids (full or partial) of this entry, minor units. */
  voidedAmount: number;
}

export const SIM_TID = '1000000001';
export const SIM_MID = '012345678912345';

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

export class SimLedger {
  private entries: LogEntry[] = [];
  private cardSeq = 0;
  private sbpSeq = 0;
  private rrnCounter = 100000000000;
  /**
   * Test control: the host's balance differs from the terminal's by this much (minor units) at the next settlements:
   * the sreport's `amount` (host) ≠ `orig-amount` (terminal, §8.12). The log is settled and emptied all the same.
   */
  hostDelta = 0;

  constructor(private readonly now: () => Date) {}

  get log(): readonly LogEntry[] {
    return this.entries;
  }

  get parameters(): TerminalParameters {
    return {
      sn: '000000000009',
      app: '1.0.67.6',
      tid: SIM_TID,
      mid: SIM_MID,
      acqid: 'simulator',
      devid: 'SIM-0000000001',
    };
  }

  /** yyMMddHHmmss of the terminal clock (UTC in the simulator). */
  timestamp(): string {
    const d = this.now();
    return (
      pad(d.getUTCFullYear() % 100, 2) +
      pad(d.getUTCMonth() + 1, 2) +
      pad(d.getUTCDate(), 2) +
      pad(d.getUTCHours(), 2) +
      pad(d.getUTCMinutes(), 2) +
      pad(d.getUTCSeconds(), 2)
    );
  }

  record(entry: Omit<LogEntry, 'seq' | 'rrn' | 'authNumber' | 'time' | 'reversed' | 'voidedAmount'>): LogEntry {
    const seq = entry.iface === 'sbp' ? ++this.sbpSeq : ++this.cardSeq;
    const logged: LogEntry = {
      ...entry,
      seq: pad(seq, 6),
      rrn: String(++this.rrnCounter),
      authNumber: `A${pad(seq, 5)}`,
      time: this.timestamp(),
      reversed: false,
      voidedAmount: 0,
    };
    this.entries.push(logged);
    return logged;
  }

  /** The last approved, not reversed card purchase/refund/cashback, or the one with this receipt number. */
  findForVoid(number: string): LogEntry | undefined {
    const candidates = this.entries.filter((e) => e.iface === 'card' && !e.type.endsWith('reversal'));
    if (number === 'last') return candidates.at(-1);
    return candidates.find((e) => Number(e.seq) === Number(number));
  }

  clear(): void {
    this.entries = [];
  }

  /**
   * The report. SBP transactions are settled by the SBP agent (own tid/mid and receipt counter, §8.10): a `full`
   * report lists them (the driver's recovery finds them there), but the totals and the settlement are the card batch's.
   */
  xreport(type: 'brief' | 'full'): XReport {
    const card = this.entries.filter((e) => e.iface === 'card');
    const cardTotals: CardTypeTotals = { rid: SIM_CARD.rid, name: SIM_CARD.name, ...totals(card) };
    return {
      header: {
        mid: SIM_MID,
        tid: SIM_TID,
        title: ['Payorch simulator'],
        currency: '643',
        time: this.timestamp(),
      },
      transactions: type === 'full' ? this.entries.map(toReportTransaction) : [],
      totals: card.length > 0 ? [cardTotals] : [],
      grandTotals: totals(card),
    };
  }

  /** Settlement (`clearLog` after success, §8.12) or clear (§8.13). */
  settle(includeRange: boolean): SettlementReport {
    const card = this.entries.filter((e) => e.iface === 'card');
    const grand = totals(card);
    const report: SettlementReport = {
      respCode: '000',
      approvalNumber: 'SIM001',
      rrn: String(++this.rrnCounter),
      origAmount: grand.totalSum,
      amount: (grand.totalSum ?? 0) + this.hostDelta,
      datetime: this.timestamp(),
      tid: SIM_TID,
      mid: SIM_MID,
      ...(includeRange
        ? {
            currency: '643',
            from: card[0]?.time ?? this.timestamp(),
            to: card.at(-1)?.time ?? this.timestamp(),
            tnum: card.length,
            settlementResult: 'passed',
          }
        : {}),
    };
    this.entries = [];
    return report;
  }
}

function toReportTransaction(e: LogEntry): ReportTransaction {
  return {
    status: e.status,
    state: 'active',
    type: e.type,
    seq: e.seq,
    amount: e.amount,
    amountOther: e.amountOther,
    rrn: e.rrn,
    time: e.time,
    authNumber: e.authNumber,
    respCode: e.status === 'approved' ? '000' : '005',
    currency: e.currency,
    pan: e.iface === 'card' ? SIM_CARD.maskedPan : undefined,
    aid: e.iface === 'card' ? SIM_CARD.aid : undefined,
  };
}

/** Count/sum per type; the balance is purchases + cashback + refund reversals − refunds − purchase reversals. */
function totals(entries: readonly LogEntry[]): GrandTotals {
  const approved = entries.filter((e) => e.status === 'approved');
  const of = (type: LogType) => {
    const list = approved.filter((e) => e.type === type);
    return { count: list.length, sum: list.reduce((s, e) => s + e.amount, 0) };
  };
  const purchase = of('purchase');
  const refund = of('refund');
  const purchaseWithCashback = of('purchase-with-cashback');
  const purchaseReversal = of('purchasereversal');
  const refundReversal = of('refundreversal');
  return {
    purchase,
    refund,
    purchaseWithCashback,
    purchaseReversal,
    refundReversal,
    totalSum: purchase.sum + purchaseWithCashback.sum + refundReversal.sum - refund.sum - purchaseReversal.sum,
    totalCount: approved.length,
  };
}

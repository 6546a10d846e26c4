import { bucketOf, type RecordedOperation, type SettlementProtocol, type Totals, type TotalsTransaction, totalsOfOperations } from './totals';

/**
 * Every way the two sides can disagree. Bucket-level checks always run; transaction-level ones
 * (`missing_on_*`, per-transaction `amount_mismatch`) only when the terminal listed its transactions.
 */
export type Discrepancy =
  | {
      kind: 'count_mismatch';
      bucket: string;
      ours: number;
      terminal: number;
      /** Which side has more. */ direction: 'missing_on_our_side' | 'missing_on_terminal';
    }
  | { kind: 'amount_mismatch'; bucket: string; ours: number; terminal: number; operationId?: string; rrn?: string }
  | { kind: 'missing_on_our_side'; bucket: string; amount: number; rrn?: string; reference?: string }
  | { kind: 'missing_on_terminal'; bucket: string; amount: number; operationId: string; rrn?: string }
  | { kind: 'host_mismatch'; detail: string }
  | { kind: 'terminal_totals_unavailable'; detail: string };

export interface Reconciliation {
  ours: Totals;
  terminal: Totals | null;
  discrepancies: Discrepancy[];
  /** Our operations covered by this close-day (marked with the settlement id). */
  settledOperationIds: string[];
}

/**
 * Compares the terminal's totals with the approved operations we recorded since the last
 * settlement. Pure: no I/O, deterministic order of discrepancies (buckets in protocol order).
 */
export function reconcile(protocol: SettlementProtocol, terminal: Totals | { unavailable: string }, operations: readonly RecordedOperation[]): Reconciliation {
  const ours = totalsOfOperations(protocol, operations);
  const settledOperationIds = operations.map((o) => o.id);
  if ('unavailable' in terminal) {
    return { ours, terminal: null, discrepancies: [{ kind: 'terminal_totals_unavailable', detail: terminal.unavailable }], settledOperationIds };
  }
  const discrepancies: Discrepancy[] = [];
  const names = terminal.bucketsReported === false ? [] : [...new Set([...Object.keys(ours.buckets), ...Object.keys(terminal.buckets)])];
  for (const bucket of names) {
    const o = ours.buckets[bucket] ?? { count: 0, amount: 0 };
    const t = terminal.buckets[bucket] ?? { count: 0, amount: 0 };
    if (o.count !== t.count) {
      discrepancies.push({
        kind: 'count_mismatch',
        bucket,
        ours: o.count,
        terminal: t.count,
        direction: t.count > o.count ? 'missing_on_our_side' : 'missing_on_terminal',
      });
    }
    if (o.amount !== t.amount) discrepancies.push({ kind: 'amount_mismatch', bucket, ours: o.amount, terminal: t.amount });
  }
  const bucketsAgree = discrepancies.length === 0;
  if (bucketsAgree && ours.net !== terminal.net) {
    discrepancies.push({ kind: 'amount_mismatch', bucket: 'net', ours: ours.net, terminal: terminal.net });
  }
  if (terminal.transactions) discrepancies.push(...matchTransactions(operations, protocol, terminal.transactions));
  if (terminal.hostMismatch) {
    discrepancies.push({ kind: 'host_mismatch', detail: 'the terminal reported that its totals differ from the processing host' });
  }
  return { ours, terminal, discrepancies, settledOperationIds };
}

/** Pairs ours with the terminal's by RRN, then by bucket + amount; the rest are missing on one side. */
function matchTransactions(operations: readonly RecordedOperation[], protocol: SettlementProtocol, listed: readonly TotalsTransaction[]): Discrepancy[] {
  const out: Discrepancy[] = [];
  const remaining = [...listed];
  const unmatched: { op: RecordedOperation; bucket: string }[] = [];
  for (const op of operations) {
    const bucket = bucketOf(protocol, op);
    if (bucket === null) continue;
    const index = op.rrn ? remaining.findIndex((t) => t.rrn === op.rrn) : -1;
    if (index < 0) {
      unmatched.push({ op, bucket });
      continue;
    }
    const [theirs] = remaining.splice(index, 1);
    if (theirs!.amount !== op.amount) {
      out.push({ kind: 'amount_mismatch', bucket, ours: op.amount, terminal: theirs!.amount, operationId: op.id, ...(op.rrn ? { rrn: op.rrn } : {}) });
    }
  }
  for (const { op, bucket } of unmatched) {
    const index = remaining.findIndex((t) => t.bucket === bucket && t.amount === op.amount && (!t.rrn || !op.rrn));
    if (index >= 0) {
      remaining.splice(index, 1);
      continue;
    }
    out.push({ kind: 'missing_on_terminal', bucket, amount: op.amount, operationId: op.id, ...(op.rrn ? { rrn: op.rrn } : {}) });
  }
  for (const t of remaining) {
    out.push({
      kind: 'missing_on_our_side',
      bucket: t.bucket,
      amount: t.amount,
      ...(t.rrn ? { rrn: t.rrn } : {}),
      ...(t.reference ? { reference: t.reference } : {}),
    });
  }
  return out;
}

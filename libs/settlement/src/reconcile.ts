import {
  BUCKETS,
  type CountAmount,
  LISTED_ALIASES,
  placementOf,
  type RecordedOperation,
  type SettlementProtocol,
  type Totals,
  type TotalsTransaction,
  totalsOfOperations,
} from './totals';

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
 * Our buckets as the terminal's form reports them: a bucket the form does not list is counted inside its
 * `foldsInto` bucket (Joinproto voids inside CREDIT for a DEBIT/CREDIT receipt); a bucket the terminal never
 * reports (`reported: false`, JPAY SBP) is not compared at all.
 */
function comparable(
  protocol: SettlementProtocol,
  ours: Record<string, CountAmount>,
  terminal: Totals,
): Map<string, { ours: CountAmount; terminal: CountAmount }> {
  const specs = BUCKETS[protocol];
  const out = new Map<string, { ours: CountAmount; terminal: CountAmount }>();
  const row = (bucket: string) => {
    let r = out.get(bucket);
    if (!r) out.set(bucket, (r = { ours: { count: 0, amount: 0 }, terminal: { ...(terminal.buckets[bucket] ?? { count: 0, amount: 0 }) } }));
    return r;
  };
  for (const bucket of Object.keys(terminal.buckets)) row(bucket);
  for (const [bucket, ca] of Object.entries(ours)) {
    const spec = specs[bucket];
    if (spec && !spec.reported) continue;
    const target = bucket in terminal.buckets || !spec?.foldsInto ? bucket : spec.foldsInto;
    const r = row(target);
    r.ours.count += ca.count;
    r.ours.amount += ca.amount;
  }
  return out;
}

/**
 * Compares the terminal's totals with the approved operations we recorded in the same batch. Pure: no I/O,
 * deterministic order of discrepancies (buckets in protocol order, then transactions in our order).
 */
export function reconcile(protocol: SettlementProtocol, terminal: Totals | { unavailable: string }, operations: readonly RecordedOperation[]): Reconciliation {
  const ours = totalsOfOperations(protocol, operations);
  const settledOperationIds = operations.map((o) => o.id);
  if ('unavailable' in terminal) {
    return { ours, terminal: null, discrepancies: [{ kind: 'terminal_totals_unavailable', detail: terminal.unavailable }], settledOperationIds };
  }
  const discrepancies: Discrepancy[] = [];
  if (terminal.bucketsReported !== false) {
    for (const [bucket, { ours: o, terminal: t }] of comparable(protocol, ours.buckets, terminal)) {
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
  }
  const bucketsAgree = discrepancies.length === 0;
  if (bucketsAgree && ours.net !== terminal.net) {
    discrepancies.push({ kind: 'amount_mismatch', bucket: 'net', ours: ours.net, terminal: terminal.net });
  }
  if (terminal.transactions) discrepancies.push(...matchTransactions(operations, protocol, terminal.transactions));
  if (terminal.hostMismatch) {
    discrepancies.push({
      kind: 'host_mismatch',
      detail:
        terminal.hostNet !== undefined && terminal.hostNet !== terminal.net
          ? `the terminal's balance ${terminal.net} differs from the host's ${terminal.hostNet}`
          : 'the terminal reported that its totals differ from the processing host',
    });
  }
  return { ours, terminal, discrepancies, settledOperationIds };
}

/**
 * Pairs ours with the terminal's by RRN, then by bucket + amount; the rest are missing on one side. Ours in a
 * bucket the terminal never reports (JPAY SBP) may consume a listed entry but are never reported missing.
 */
function matchTransactions(operations: readonly RecordedOperation[], protocol: SettlementProtocol, listed: readonly TotalsTransaction[]): Discrepancy[] {
  const out: Discrepancy[] = [];
  const remaining = [...listed];
  const unmatched: { op: RecordedOperation; bucket: string; amount: number; reported: boolean }[] = [];
  for (const op of operations) {
    const placed = placementOf(protocol, op);
    if (placed === null) continue;
    const spec = BUCKETS[protocol][placed.bucket];
    const reported = spec?.reported !== false;
    const index = op.rrn ? remaining.findIndex((t) => t.rrn === op.rrn) : -1;
    if (index < 0) {
      unmatched.push({ op, bucket: placed.bucket, amount: placed.amount, reported });
      continue;
    }
    const [theirs] = remaining.splice(index, 1);
    // A listed amount may be the gross one (SSI lists a CashBack with its transAmount).
    if (reported && theirs!.amount !== placed.amount && theirs!.amount !== op.amount) {
      out.push({
        kind: 'amount_mismatch',
        bucket: placed.bucket,
        ours: placed.amount,
        terminal: theirs!.amount,
        operationId: op.id,
        ...(op.rrn ? { rrn: op.rrn } : {}),
      });
    }
  }
  for (const { op, bucket, amount, reported } of unmatched) {
    const folded = BUCKETS[protocol][bucket]?.foldsInto;
    const listedAs = (t: TotalsTransaction) => t.bucket === bucket || t.bucket === folded || LISTED_ALIASES[protocol][t.bucket]?.includes(bucket) === true;
    const index = remaining.findIndex((t) => listedAs(t) && t.amount === amount && (!t.rrn || !op.rrn));
    if (index >= 0) {
      remaining.splice(index, 1);
      continue;
    }
    if (reported) out.push({ kind: 'missing_on_terminal', bucket, amount, operationId: op.id, ...(op.rrn ? { rrn: op.rrn } : {}) });
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

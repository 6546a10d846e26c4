/**
 * Protocol-neutral totals of one close-day. Each protocol reports counts and sums in its own buckets
 * (Joinproto: debit/credit on the DF0A receipt; JPAY: purchase/refund/… grand totals; SSI: sale/refund/…
 * `total*` keys). We keep the terminal's own buckets and compute ours into the same ones, so a
 * comparison never depends on a lossy mapping of the terminal's side. Amounts are integer minor units.
 */

export type SettlementProtocol = 'JOINPROTO' | 'JPAY' | 'SSI_ECR';

export interface CountAmount {
  count: number;
  /** Unsigned sum of the bucket, minor units. */
  amount: number;
}

/** One transaction as the terminal listed it (JPAY full report, SSI detail report). */
export interface TotalsTransaction {
  bucket: string;
  amount: number;
  rrn?: string;
  authCode?: string;
  /** Terminal's receipt/invoice number. */
  reference?: string;
}

export interface Totals {
  protocol: SettlementProtocol;
  buckets: Record<string, CountAmount>;
  /** false when the terminal gave only a balance (JPAY sreport without a report): buckets are then not compared. */
  bucketsReported?: boolean;
  /** Signed balance of the buckets (debits +, credits −), or the terminal's own signed total. */
  net: number;
  /** Listed only when the protocol returns the batch's transactions. */
  transactions?: TotalsTransaction[];
  /** The terminal reported that its totals and the host's differ (Joinproto 915, JPAY settlement-result ≠ passed / orig-amount ≠ amount). */
  hostMismatch?: boolean;
  /** Terminal batch/shift number, when reported. */
  batchNumber?: string;
  /** JPAY `tnum`: transactions in the settled batch as the terminal counts them (all statuses). */
  reportedTransactionCount?: number;
}

/** Buckets of each protocol with their sign in the net balance. */
export const BUCKETS: Record<SettlementProtocol, Record<string, 1 | -1>> = {
  JOINPROTO: { debit: 1, credit: -1 },
  JPAY: { purchase: 1, purchase_with_cashback: 1, refund: -1, purchase_reversal: -1, refund_reversal: 1 },
  SSI_ECR: { sale: 1, fin_auth: 1, cash: 1, refund: -1, payment: -1, void: -1 },
};

export function emptyBuckets(protocol: SettlementProtocol): Record<string, CountAmount> {
  return Object.fromEntries(Object.keys(BUCKETS[protocol]).map((b) => [b, { count: 0, amount: 0 }]));
}

export function netOf(protocol: SettlementProtocol, buckets: Record<string, CountAmount>): number {
  let net = 0;
  for (const [bucket, sign] of Object.entries(BUCKETS[protocol])) net += sign * (buckets[bucket]?.amount ?? 0);
  return net;
}

/** Our operation types (Prisma `OperationType`) that move money, as recorded in TerminalOperation. */
export interface RecordedOperation {
  id: string;
  type: string;
  /** Minor units. */
  amount: number;
  rrn?: string | null;
  approvalCode?: string | null;
  /** Type of the original operation for VOID / PARTIAL_VOID (JPAY reverses purchases and refunds into different buckets). */
  originalType?: string | null;
}

/**
 * Where an approved operation of ours lands in the protocol's report; `null` = not part of the
 * totals (preauth holds, balance, service commands).
 */
export function bucketOf(protocol: SettlementProtocol, op: Pick<RecordedOperation, 'type' | 'originalType'>): string | null {
  switch (protocol) {
    case 'JOINPROTO':
      // Simulator and spec 5.6 receipt: DEBIT = purchase, completion, cash advance; CREDIT = refund, cash deposit.
      if (['PURCHASE', 'PURCHASE_WITH_CASHBACK', 'PREAUTH_CAPTURE', 'CASH_WITHDRAWAL'].includes(op.type)) return 'debit';
      if (['REFUND', 'CASH_DEPOSIT'].includes(op.type)) return 'credit';
      return null;
    case 'JPAY':
      if (op.type === 'PURCHASE' || op.type === 'SBP_PAYMENT') return 'purchase';
      if (op.type === 'PURCHASE_WITH_CASHBACK') return 'purchase_with_cashback';
      if (op.type === 'REFUND' || op.type === 'SBP_REFUND') return 'refund';
      if (op.type === 'VOID') return op.originalType === 'REFUND' || op.originalType === 'SBP_REFUND' ? 'refund_reversal' : 'purchase_reversal';
      return null;
    case 'SSI_ECR':
      if (op.type === 'PURCHASE' || op.type === 'PURCHASE_WITH_CASHBACK') return 'sale';
      if (op.type === 'PREAUTH_CAPTURE') return 'fin_auth';
      if (op.type === 'CASH_WITHDRAWAL') return 'cash';
      if (op.type === 'CASH_DEPOSIT') return 'payment';
      if (op.type === 'REFUND') return 'refund';
      if (op.type === 'VOID' || op.type === 'PARTIAL_VOID' || op.type === 'PREAUTH_CANCEL') return 'void';
      return null;
  }
}

/** Our side in the terminal's buckets. */
export function totalsOfOperations(protocol: SettlementProtocol, ops: readonly RecordedOperation[]): Totals {
  const buckets = emptyBuckets(protocol);
  const transactions: TotalsTransaction[] = [];
  for (const op of ops) {
    const bucket = bucketOf(protocol, op);
    if (bucket === null) continue;
    buckets[bucket]!.count += 1;
    buckets[bucket]!.amount += op.amount;
    transactions.push({ bucket, amount: op.amount, ...(op.rrn ? { rrn: op.rrn } : {}), ...(op.approvalCode ? { authCode: op.approvalCode } : {}) });
  }
  return { protocol, buckets, net: netOf(protocol, buckets), transactions };
}

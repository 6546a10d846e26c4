/**
 * Protocol-neutral totals of one close-day (docs/reconciliation.md). Each protocol reports counts and sums in its
 * own buckets (Joinproto: debit/credit/void lines of the DF0A receipt; JPAY: purchase/refund/… grand totals; SSI:
 * sale/refund/… `total*` keys). We keep the terminal's own buckets and compute ours into the same ones, so a
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
  /** false when the terminal gave only a balance (JPAY sreport without a report, Joinproto DF05 only): buckets are then not compared. */
  bucketsReported?: boolean;
  /** Signed balance of the compared buckets (debits +, credits −), or the terminal's own signed total. */
  net: number;
  /** Listed only when the protocol returns the batch's transactions. */
  transactions?: TotalsTransaction[];
  /** The terminal reported that its totals and the host's differ (Joinproto 915, SSI 95, JPAY orig-amount ≠ amount / settlement-result ≠ passed). */
  hostMismatch?: boolean;
  /** JPAY `amount`: the host's balance, kept beside the terminal's own (`net` = `orig-amount`). */
  hostNet?: number;
  /** Terminal batch/shift number, when reported (SSI batchNumber, Joinproto DF12). */
  batchNumber?: string;
  /** JPAY `tnum`: transactions in the settled batch as the terminal counts them (all statuses). */
  reportedTransactionCount?: number;
  /** Which totals form of the protocol's spec the figures were read from (docs/reconciliation.md, "Totals forms"). */
  form?: string;
}

export interface BucketSpec {
  /** Sign in the net balance. */
  sign: 1 | -1;
  /** false = the terminal never reports this bucket (JPAY SBP: settled by the SBP agent): ours is listed, never compared. */
  reported: boolean;
  /** A terminal form that does not report this bucket counts it inside this one (Joinproto: voids are refunds on the wire). */
  foldsInto?: string;
}

/** Buckets of each protocol, in report order. */
export const BUCKETS: Record<SettlementProtocol, Record<string, BucketSpec>> = {
  JOINPROTO: {
    debit: { sign: 1, reported: true },
    credit: { sign: -1, reported: true },
    void: { sign: -1, reported: true, foldsInto: 'credit' },
  },
  JPAY: {
    purchase: { sign: 1, reported: true },
    purchase_with_cashback: { sign: 1, reported: true },
    refund: { sign: -1, reported: true },
    purchase_reversal: { sign: -1, reported: true },
    refund_reversal: { sign: 1, reported: true },
    sbp_payment: { sign: 1, reported: false },
    sbp_refund: { sign: -1, reported: false },
  },
  SSI_ECR: {
    sale: { sign: 1, reported: true },
    fin_auth: { sign: 1, reported: true },
    cash: { sign: 1, reported: true },
    refund: { sign: -1, reported: true },
    payment: { sign: -1, reported: true },
    void: { sign: -1, reported: true },
  },
};

/**
 * Names a terminal's transaction list gives to entries that may be in more than one of our buckets. JPAY lists a void as
 * `void` (Appendix B "Типы транзакций") or `reversal` (aQsi: "отмена без указания типа отменяемой операции") without
 * saying whether it reversed a purchase or a refund: such an entry pairs with ours of either reversal bucket.
 */
export const LISTED_ALIASES: Record<SettlementProtocol, Readonly<Record<string, readonly string[]>>> = {
  JOINPROTO: {},
  JPAY: { reversal: ['purchase_reversal', 'refund_reversal'] },
  SSI_ECR: {},
};

export function emptyBuckets(protocol: SettlementProtocol): Record<string, CountAmount> {
  return Object.fromEntries(Object.keys(BUCKETS[protocol]).map((b) => [b, { count: 0, amount: 0 }]));
}

/**
 * Whether a bucket is compared with the terminal's: the one definition of what the nets ({@link netOf}) and the counts
 * of a day's totals (the gateway's summary and settlements CSV, {@link UNCOMPARED_BUCKETS}) cover. A bucket the
 * terminal never reports (`reported: false`, JPAY SBP) is in neither; one the protocol does not know is.
 */
export function isComparedBucket(protocol: SettlementProtocol, bucket: string): boolean {
  return BUCKETS[protocol][bucket]?.reported !== false;
}

/**
 * Every bucket no terminal reports ({@link isComparedBucket} false), as `PROTOCOL:bucket`: what SQL over stored totals
 * (their `protocol` and bucket names) leaves out of a count, as {@link netOf} leaves it out of the net.
 */
export const UNCOMPARED_BUCKETS: readonly string[] = (Object.keys(BUCKETS) as SettlementProtocol[]).flatMap((protocol) =>
  Object.keys(BUCKETS[protocol])
    .filter((bucket) => !isComparedBucket(protocol, bucket))
    .map((bucket) => `${protocol}:${bucket}`),
);

/** Signed balance over the buckets the terminal reports (a bucket it never reports is not part of its balance). */
export function netOf(protocol: SettlementProtocol, buckets: Record<string, CountAmount>): number {
  let net = 0;
  for (const [bucket, spec] of Object.entries(BUCKETS[protocol])) if (isComparedBucket(protocol, bucket)) net += spec.sign * (buckets[bucket]?.amount ?? 0);
  return net;
}

/** Our operation types (Prisma `OperationType`) that move money, as recorded in TerminalOperation. */
export interface RecordedOperation {
  id: string;
  type: string;
  /** Minor units: what the operation moved (a void: the voided amount; a partial void: the part voided). */
  amount: number;
  /** PURCHASE_WITH_CASHBACK: the cash part inside `amount`, minor units. */
  cashbackAmount?: number | null;
  rrn?: string | null;
  approvalCode?: string | null;
  /** Type of the original operation for VOID / PARTIAL_VOID (JPAY reverses purchases and refunds into different buckets). */
  originalType?: string | null;
}

/** Where an approved operation of ours lands in the protocol's report, and with which amount. */
export interface Placement {
  bucket: string;
  amount: number;
}

const isRefund = (type: string | null | undefined) => type === 'REFUND' || type === 'SBP_REFUND';

/**
 * Where an approved operation of ours lands in the protocol's report; `null` = not part of the totals (preauth
 * holds and their cancels, balance, service commands). docs/reconciliation.md "Buckets" is this table.
 */
export function placementOf(
  protocol: SettlementProtocol,
  op: Pick<RecordedOperation, 'type' | 'originalType' | 'amount' | 'cashbackAmount'>,
): Placement | null {
  const at = (bucket: string, amount = op.amount): Placement => ({ bucket, amount });
  switch (protocol) {
    case 'JOINPROTO':
      // DF0A receipt forms: DEBIT = purchase (the card is debited purchase + cash), completion, cash advance;
      // CREDIT = refund, cash deposit; a void is a refund on the wire (DF06 + DF08), listed as VOID/ОТМЕНА where the form has it.
      switch (op.type) {
        case 'PURCHASE':
        case 'PURCHASE_WITH_CASHBACK':
        case 'PREAUTH_CAPTURE':
        case 'CASH_WITHDRAWAL':
          return at('debit');
        case 'REFUND':
        case 'CASH_DEPOSIT':
          return at('credit');
        case 'VOID':
        case 'PARTIAL_VOID':
          return at('void');
        default:
          return null;
      }
    case 'JPAY':
      switch (op.type) {
        case 'PURCHASE':
          return at('purchase');
        case 'PURCHASE_WITH_CASHBACK':
          return at('purchase_with_cashback');
        case 'REFUND':
          return at('refund');
        case 'SBP_PAYMENT':
          return at('sbp_payment');
        case 'SBP_REFUND':
          return at('sbp_refund');
        case 'VOID':
        case 'PARTIAL_VOID':
          // §8.9: a void with an amount is a partial void; both are reversals of the original's kind.
          return at(isRefund(op.originalType) ? 'refund_reversal' : 'purchase_reversal');
        default:
          return null;
      }
    case 'SSI_ECR':
      switch (op.type) {
        case 'PURCHASE':
          return at('sale');
        case 'PURCHASE_WITH_CASHBACK':
          // Spec 5.2.4 / 5.5.4: the cash handed out is not a card sale; the sale total holds the card part only.
          return at('sale', op.amount - (op.cashbackAmount ?? 0));
        case 'PREAUTH_CAPTURE':
          return at('fin_auth');
        case 'CASH_WITHDRAWAL':
          return at('cash');
        case 'CASH_DEPOSIT':
          return at('payment');
        case 'REFUND':
          return at('refund');
        case 'VOID':
        case 'PARTIAL_VOID':
          return at('void');
        default:
          // PREAUTH and PREAUTH_CANCEL (VoidPreauth): a hold and its release never reach the totals.
          return null;
      }
  }
}

/** The bucket of an approved operation of ours, or null (see {@link placementOf}). */
export function bucketOf(protocol: SettlementProtocol, op: Pick<RecordedOperation, 'type' | 'originalType'>): string | null {
  return placementOf(protocol, { ...op, amount: 0 })?.bucket ?? null;
}

/** Our side in the terminal's buckets. */
export function totalsOfOperations(protocol: SettlementProtocol, ops: readonly RecordedOperation[]): Totals {
  const buckets = emptyBuckets(protocol);
  const transactions: TotalsTransaction[] = [];
  for (const op of ops) {
    const placed = placementOf(protocol, op);
    if (placed === null) continue;
    buckets[placed.bucket]!.count += 1;
    buckets[placed.bucket]!.amount += placed.amount;
    transactions.push({
      bucket: placed.bucket,
      amount: placed.amount,
      ...(op.rrn ? { rrn: op.rrn } : {}),
      ...(op.approvalCode ? { authCode: op.approvalCode } : {}),
    });
  }
  return { protocol, buckets, net: netOf(protocol, buckets), transactions };
}

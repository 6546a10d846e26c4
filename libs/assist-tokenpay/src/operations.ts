/**
 * After-payment operations of an order (assist-notes.md "Other web services"): `/charge/charge.cfm`
 * confirms (captures) a two-stage payment, `/cancel/wscancel.cfm` cancels — releases an authorisation or
 * cancels / refunds a charged order — each for the whole amount or a part (`Amount`).
 *
 * One order carries several operations (TokenPay document: "В рамках одного заказа может быть проведено
 * несколько операций (оплаты, подтверждения оплаты, отмены)"): operationtype 100 Approve, 200 Charge,
 * 300 PaymentCancel. The refusal tables name the cancel flavours with second codes 300 (authorisation cancel)
 * and 301 (refund). Which operation of the list is ours is decided by {@link findOperation}: type, amount,
 * currency, not before the request was sent, not one we already own (its billnumber), and not one that an operation of
 * ours settled without naming its billnumber may stand for ({@link UnnamedClaim}).
 */
import { sameAmount } from './amount';
import type { OperationType } from './enums';
import type { AssistOperation, AssistOrder } from './response';

export const CHARGE_PATH = '/charge/charge.cfm';
export const CANCEL_PATH = '/cancel/wscancel.cfm';

/** What the merchant asks Assist to do to an order. */
export type AfterPaymentKind = 'charge' | 'cancel';

/** The operationtype Assist records for each request. */
export const OPERATION_TYPE_OF_KIND: Readonly<Record<AfterPaymentKind, OperationType>> = { charge: 'Charge', cancel: 'PaymentCancel' };

export interface AfterPaymentRequest {
  /** The order's Assist billnumber (from the payment's answer). */
  readonly billNumber: string;
  /** Our OrderNumber: the answer must describe this order. */
  readonly orderNumber: string;
  /** The original order amount as Assist wrote it (part of the answer's checkvalue), e.g. `100.00`. */
  readonly orderAmount: string;
  /** The amount of this operation (use `toOrderAmount` from minor units); sent as `Amount`. */
  readonly amount: string;
  readonly currency: string;
  /** When we sent it (the operation must not be older). Default: now. */
  readonly sentAt?: Date;
  /** Billnumbers of operations already accounted for (never matched again). */
  readonly knownBillNumbers?: readonly string[];
  /**
   * Our operation's own billnumber, once an answer named it (e.g. "In Process"): resolving then looks for exactly
   * that operation, which `knownBillNumbers` must not exclude.
   */
  readonly operationBillNumber?: string;
  /** Our other operations of this type and amount settled without naming their record (see {@link UnnamedClaim}). */
  readonly unnamedClaims?: readonly UnnamedClaim[];
}

/**
 * One of our operations of the same type and amount that was settled without naming its record's billnumber — a
 * person's verdict given without one (`succeeded`: the back office lists it as Success; `failed`: as Failure, or not at
 * all), or a failure concluded without a record. Its record, if it has one, is among the order's operations no
 * billnumber claims, dated between its sending and its settling (± {@link CLOCK_SKEW_MS}): a `succeeded` claim stands
 * for exactly one such record that is not a Failure, a `failed` one for at most one Failure.
 */
export interface UnnamedClaim {
  readonly result: 'succeeded' | 'failed';
  readonly sentAt: Date;
  /** When it was settled (a verdict's instant): the person saw its record by then. */
  readonly settledAt: Date;
}

export interface OperationCriteria {
  readonly type: OperationType;
  readonly amount: string;
  readonly currency: string;
  /** Operations dated before this (minus {@link CLOCK_SKEW_MS}) are not ours. */
  readonly notBefore: Date;
  readonly knownBillNumbers?: readonly string[];
  /** Assist already named our operation: only the one with this billnumber (and our type, amount, currency) is ours. */
  readonly operationBillNumber?: string;
  /** Our operations of this type and amount settled without naming their record: their records are never taken for ours. */
  readonly unnamedClaims?: readonly UnnamedClaim[];
  /** The order is Assist's answer to our own request (charge / cancel), not an orderstate read: our operation is on it. */
  readonly answersOurRequest?: boolean;
}

/**
 * What {@link findOperation} concluded: our operation (`matched`), none listed (`none`: the answer lists the order's
 * operations and every record of our type and amount was read), or `ambiguous` — whether and which record is ours
 * cannot be told (`billNumbers`: the records in doubt), because (`cause`):
 * - `claims`: records that could be ours could as well be the ones our {@link UnnamedClaim}s stand for, and which are
 *   free cannot be told;
 * - `unlisted`: the answer carries no operation list (`AssistOrder.operationsListed`), so it shows neither ours nor
 *   that ours is missing (`billNumbers` empty);
 * - `undated`: a record of our type and amount has an `operationdate` that cannot be read: it may be ours, or one
 *   dated before our request.
 * Ambiguous is never a conclusion about our operation, least of all "not found".
 */
export type OperationMatch =
  | { readonly kind: 'matched'; readonly operation: AssistOperation }
  | { readonly kind: 'none' }
  | { readonly kind: 'ambiguous'; readonly billNumbers: readonly string[]; readonly cause: 'claims' | 'unlisted' | 'undated' };

/** Tolerance between our clock and Assist's `operationdate` (whole seconds, GMT). */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** `DD.MM.YYYY HH:mm:ss` (GMT) → Date; undefined when unreadable. */
export function parseOperationDate(text: string): Date | undefined {
  const m = /^(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const [, dd, mm, yyyy, hh, mi, ss] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(yyyy, mm - 1, dd, hh, mi, ss);
  const date = new Date(ms);
  // Date.UTC rolls impossible fields over (31.02 → 3 March, 24:00 → the next day): such a date is unreadable, not
  // another moment (until 2026-12-07 it was taken as one).
  const exact =
    date.getUTCFullYear() === yyyy &&
    date.getUTCMonth() === mm - 1 &&
    date.getUTCDate() === dd &&
    date.getUTCHours() === hh &&
    date.getUTCMinutes() === mi &&
    date.getUTCSeconds() === ss;
  return exact ? date : undefined;
}

/**
 * The operation of `order` that is the one we asked for: same type, amount and currency, dated at or after
 * `notBefore` (minus the clock skew), not already known. The earliest such one wins (a later identical one
 * belongs to a later request). With `operationBillNumber`, only the operation Assist already named as ours is.
 * Without unnamed claims; see {@link findOperation} for the full rule. `undefined` is "none" as well as "cannot be
 * told" (no operation list, a record like ours without a readable date): never conclude "not found" from it — use
 * {@link findOperation}, which tells them apart.
 */
export function matchOperation(order: AssistOrder, c: Omit<OperationCriteria, 'unnamedClaims' | 'answersOurRequest'>): AssistOperation | undefined {
  const found = findOperation(order, c);
  return found.kind === 'matched' ? found.operation : undefined;
}

interface Dated {
  readonly op: AssistOperation;
  readonly at: Date;
}

/**
 * {@link matchOperation}'s rule, plus the records our {@link UnnamedClaim}s may stand for, which are never taken for
 * ours (a person's `succeeded` verdict without a billnumber left its record unclaimed by any billnumber; taking it for a
 * later identical operation that never reached Assist counted one Charge or PaymentCancel twice):
 *
 * - A Failure a `failed` claim may stand for is left out: whether it is theirs or ours, no money moved.
 * - The records a `succeeded` claim may stand for (not Failure, dated in its window): when there are exactly as many as
 *   such claims (each claim can have its own), they are all taken. When there are more, some are free but which is
 *   unknown: our operation is matched only if at least one of its candidates is certainly free (outside every window,
 *   or more candidates in the windows than claims; or the order is Assist's answer to our own request, which lists
 *   ours) and all its candidates read the same (Success / Failure / In Process); the record chosen leaves every claim
 *   one of its own. When there are fewer (a claim's record is not where it should be), any candidate could be it.
 * - Otherwise `ambiguous`: never guessed, never concluded "not found".
 *
 * `none` only from an answer that lists the order's operations and whose every record of our type and amount (not
 * held by a known billnumber) has a readable date; otherwise `ambiguous` (`unlisted`, `undated`). Before, an answer
 * without an operation list read as an empty list and a record of unreadable date was dropped: ours was "none", and
 * past the grace period a capture or refund that had reached Assist was reported "never reached Assist" — and sent again.
 */
export function findOperation(order: AssistOrder, c: OperationCriteria): OperationMatch {
  // Nothing listed is not "nothing there": the answer cannot show ours, nor that it is missing.
  if (order.operationsListed === false) return { kind: 'ambiguous', billNumbers: [], cause: 'unlisted' };
  const same = (op: AssistOperation) => op.type === c.type && sameAmount(op.amount, c.amount) && (op.currency === '' || op.currency === c.currency);
  if (c.operationBillNumber !== undefined) {
    const named = order.operations.find((op) => op.billNumber === c.operationBillNumber && same(op));
    return named ? { kind: 'matched', operation: named } : { kind: 'none' };
  }
  const known = new Set(c.knownBillNumbers ?? []);
  const from = c.notBefore.getTime() - CLOCK_SKEW_MS;
  const alike = order.operations.filter((op) => same(op) && !known.has(op.billNumber)).map((op) => ({ op, at: parseOperationDate(op.operationDate) }));
  // A record like ours of unknown date may be ours (or one sent before ours): neither it nor a later one can be taken
  // for ours, and ours cannot be concluded missing.
  const undated = alike.filter((d) => d.at === undefined);
  if (undated.length > 0) return { kind: 'ambiguous', billNumbers: undated.map((d) => d.op.billNumber), cause: 'undated' };
  const unclaimed = alike.filter((d): d is Dated => d.at !== undefined).sort((a, b) => a.at.getTime() - b.at.getTime());
  const claims = c.unnamedClaims ?? [];
  const failedClaims = claims.filter((claim) => claim.result === 'failed');
  const succeededClaims = claims.filter((claim) => claim.result === 'succeeded');
  const isFailure = (d: Dated) => operationResultOf(d.op) === 'failed';
  // A Failure a failed claim may stand for: no money moved whoever's it is, so ours is never read from it.
  const candidates = unclaimed.filter((d) => d.at.getTime() >= from && !(isFailure(d) && failedClaims.some((claim) => within(d, claim))));
  const earliest = (list: readonly Dated[]): OperationMatch => (list[0] ? { kind: 'matched', operation: list[0].op } : { kind: 'none' });
  if (succeededClaims.length === 0) return earliest(candidates);

  const n = succeededClaims.length;
  const theirs = unclaimed.filter((d) => !isFailure(d) && succeededClaims.some((claim) => within(d, claim)));
  const inTheirs = new Set(theirs);
  const doubtful = candidates.filter((d) => inTheirs.has(d));
  const free = candidates.filter((d) => !inTheirs.has(d));
  const ambiguous = (list: readonly Dated[]): OperationMatch => ({ kind: 'ambiguous', billNumbers: list.map((d) => d.op.billNumber), cause: 'claims' });
  // A claim without a record in its window: its record is elsewhere, perhaps among our candidates.
  if (maxClaimMatching(succeededClaims, theirs) < n) return candidates.length > 0 ? ambiguous(candidates) : { kind: 'none' };
  if (doubtful.length === 0) return earliest(candidates);
  // Each claim has its own record and there are no others: every one of them is taken. (An answer to our own request
  // listing none besides them contradicts a verdict: a person looks.)
  if (theirs.length === n) return free.length > 0 || !c.answersOurRequest ? earliest(free) : ambiguous(doubtful);
  // More records than claims: some are free, but which? Ours is certain only if a candidate is certainly free, or the
  // order is the answer to our own request.
  if (!c.answersOurRequest && free.length === 0 && doubtful.length <= n) return ambiguous(doubtful);
  const result = operationResultOf(candidates[0]!.op);
  if (candidates.some((d) => operationResultOf(d.op) !== result)) return ambiguous(candidates);
  if (free.length > 0) return earliest(free);
  // Take one that leaves every claim a record of its own.
  const others = (d: Dated) => theirs.filter((t) => t !== d);
  const leavesEveryClaimOne = (d: Dated) => maxClaimMatching(succeededClaims, others(d)) === n;
  const pick = doubtful.find(leavesEveryClaimOne);
  return pick ? { kind: 'matched', operation: pick.op } : ambiguous(doubtful);
}

const within = (d: Dated, claim: UnnamedClaim) =>
  d.at.getTime() >= claim.sentAt.getTime() - CLOCK_SKEW_MS && d.at.getTime() <= claim.settledAt.getTime() + CLOCK_SKEW_MS;

/**
 * How many claims can each have a record of their own in their window (interval–point matching: the claim whose window
 * closes first takes the earliest record in it; `records` sorted by date).
 */
function maxClaimMatching(claims: readonly UnnamedClaim[], records: readonly Dated[]): number {
  const used = new Set<Dated>();
  let matched = 0;
  for (const claim of [...claims].sort((a, b) => a.settledAt.getTime() - b.settledAt.getTime())) {
    const record = records.find((d) => !used.has(d) && within(d, claim));
    if (record) {
      used.add(record);
      matched++;
    }
  }
  return matched;
}

/** Our reading of one matched operation. */
export type OperationResult = 'succeeded' | 'failed' | 'in_process';

export function operationResultOf(op: AssistOperation): OperationResult {
  if (op.state === 'Success') return 'succeeded';
  if (op.state === 'Failure' || op.state === 'TimeOut') return 'failed';
  // assist-notes.md: `AS000` approved, whatever the state column says.
  return op.responseCode === 'AS000' ? 'succeeded' : 'in_process';
}

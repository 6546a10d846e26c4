import { ApiError } from '@payorch/domain';

/** A reversal of the original that is not known to have failed: approved, in flight or in doubt. */
export interface LiveReversal {
  id: string;
  /** OperationType enum name, e.g. `REFUND`. */
  type: string;
  /** OperationState enum name. */
  state: string;
  amount: bigint | null;
}

/** States of a reversal that moved no money and never will: it frees what it had taken of the original. */
export const ENDED_WITHOUT_EFFECT = ['FAILED', 'DECLINED', 'CANCELED'] as const;

/** Types that take an amount back from the original (a `void` without an amount records the original's). */
const TAKES_AMOUNT = new Set(['REFUND', 'PARTIAL_VOID', 'VOID', 'SBP_REFUND']);
/** Types that close a preauthorisation: at most one of them per preauthorisation. */
const CLOSES_PREAUTH = new Set(['PREAUTH_CAPTURE', 'PREAUTH_CANCEL']);

/** What a reversal may do: `amount` is what it takes of the original (null: nothing to count). */
export type ReversalDecision = { refusal: null; amount: bigint | null } | { refusal: ApiError; amount?: undefined };

/**
 * What an original operation still allows, given its live reversals (every one not FAILED / DECLINED / CANCELED: an
 * approved one took its amount, and one in flight or `unknown` may have, so it counts until it is known not to —
 * never more can be given back than was taken):
 *  - refund, partial_void, void, sbp_refund: their amount at most what is left of the original after the live reversals
 *    that took an amount (AMOUNT_EXCEEDS_ORIGINAL, 422). A void without an amount takes what the terminal's void
 *    reverses (`voidReverses`, the protocol's Capability): the original's whole amount (Joinproto's void is a refund
 *    of the full amount, SSI's cancels the whole transaction), so nothing may have been reversed yet; or the rest
 *    (JPAY, §8.9), so something must be left;
 *  - preauth_capture: at most the preauthorised amount (AMOUNT_EXCEEDS_ORIGINAL); preauth_capture and preauth_cancel: not
 *    once a capture or cancel of the preauthorisation is live (ORIGINAL_ALREADY_CLOSED, 409).
 * `amount` is the request's (minor units), undefined when it has none.
 */
export function decideReversal(
  type: string,
  amount: number | undefined,
  original: { id: string; amount: bigint | null },
  live: readonly LiveReversal[],
  voidReverses: 'whole' | 'rest' = 'whole',
): ReversalDecision {
  const upper = type.toUpperCase();
  const originalAmount = original.amount;
  const asked = amount === undefined ? null : BigInt(amount);
  if (CLOSES_PREAUTH.has(upper)) {
    const closing = live.filter((r) => CLOSES_PREAUTH.has(r.type));
    if (closing.length > 0) {
      return refuse(
        new ApiError('ORIGINAL_ALREADY_CLOSED', `the preauthorisation is already ${describe(closing[0]!)}`, {
          originalOperationId: original.id,
          by: closing.map(({ id, type: t, state }) => ({ id, type: t.toLowerCase(), state: state.toLowerCase() })),
        }),
      );
    }
    if (upper === 'PREAUTH_CAPTURE' && asked !== null && originalAmount !== null && asked > originalAmount) {
      return refuse(exceeds(original.id, asked, originalAmount, 0n, 'the capture is more than was preauthorised'));
    }
    return { refusal: null, amount: asked ?? originalAmount };
  }
  if (!TAKES_AMOUNT.has(upper) || originalAmount === null) return { refusal: null, amount: asked };
  const taken = live.filter((r) => TAKES_AMOUNT.has(r.type)).reduce((sum, r) => sum + (r.amount ?? originalAmount), 0n);
  const left = originalAmount - taken;
  const takes = asked ?? (upper === 'VOID' && voidReverses === 'rest' ? left : originalAmount);
  if (takes > 0n && takes <= left) return { refusal: null, amount: takes };
  return refuse(exceeds(original.id, takes, originalAmount, taken, `the ${type} is more than is left of the original`));
}

function refuse(refusal: ApiError): ReversalDecision {
  return { refusal };
}

function exceeds(originalOperationId: string, asked: number | bigint, originalAmount: bigint, taken: bigint, message: string): ApiError {
  const left = originalAmount - taken > 0n ? originalAmount - taken : 0n;
  return new ApiError('AMOUNT_EXCEEDS_ORIGINAL', `${message} (${asked} asked, ${left} left of ${originalAmount})`, {
    field: 'amount',
    originalOperationId,
    originalAmount: Number(originalAmount),
    reversedAmount: Number(taken),
    remainingAmount: Number(left),
  });
}

function describe(reversal: LiveReversal): string {
  const what = reversal.type === 'PREAUTH_CAPTURE' ? 'captured' : 'canceled';
  return reversal.state === 'APPROVED' ? what : `being ${what} (operation ${reversal.id} is ${reversal.state.toLowerCase()})`;
}

/**
 * What a wallet payment's or operation's `error.code` means and what the operator does about it, for every code the API
 * can return: the table is keyed by the contract's `WalletErrorCode` enum (libs/wallet-payments error-codes.ts → the
 * gateway's OpenAPI → `@payorch/client/schema`), so a code added there fails the console's typecheck until it has a hint
 * here (and `wallet-errors.spec.ts` reads the committed contract too). Wording as in docs/wallet-payments.md and
 * docs/runbooks/unknown-outcomes.md.
 */
import type { WalletErrorCode } from './api';
import { type ErrorHint, errorHints } from './error-hints';

/** `means` is also the error-code filter's suggestion label. */
export interface WalletErrorHint extends ErrorHint {
  /**
   * The resolution job keeps reading Assist but never decides it: left to a person (the codes the worker counts in
   * `payorch_unknown_outcomes_needing_human`, apps/settlement-worker/src/system/unknown-outcomes.ts).
   */
  readonly person?: true;
}

/** The payment's outcome is open and the job resolves it from Assist's order state. */
const RESOLVED_BY_THE_JOB =
  "Nothing to do while the resolution job reads the outcome from Assist's order state (never by paying again); if it stays unknown, see the runbook for unknown outcomes.";
/** An answer that fails payorch's checks is never trusted, so nothing is concluded from it. */
const UNTRUSTED =
  "Check the merchant's Assist settings (secrets, Assist's public key, server URL) with the tenant: until they are right, every answer of the account fails the same way. Resolve the payment or operation by hand from Assist's back office if it stays unknown.";
/** A definitive refusal by Assist. */
const REFUSED = 'Assist refused it: nothing was charged and no money moved.';
const FIX_REQUEST = 'Correct the request (the error names the parameter) and send a new one, with a new Idempotency-Key.';
const MERCHANT_SETUP = "Check the merchant's Assist account and settings with the tenant and Assist.";

export const WALLET_ERROR_HINTS: { readonly [C in WalletErrorCode]: WalletErrorHint } = {
  // payorch's conclusions (`source: payorch`)
  ORDER_NOT_PROVEN: {
    means:
      "Assist holds an order under this number that payorch cannot prove is this payment's (the number used twice, or another tenant or website on the same Assist account).",
    todo: "Look the order up in Assist's back office by its number, compare amount, time and card with the payment, and resolve the payment by hand (with the order's billnumber if it was paid).",
    person: true,
  },
  OPERATION_NOT_PROVEN: {
    means:
      "Assist lists records of this operation's type and amount, but an earlier operation of the payment was resolved by hand without a billnumber and may stand for one of them: which one is this operation's cannot be told.",
    todo: "Find this operation in Assist's back office by its time (the message names the billnumbers in doubt) and resolve it by hand, giving its billnumber.",
    person: true,
  },
  ORDER_MISMATCH: {
    means: 'Every answer of Assist about this order describes another order (number, billnumber, amount or currency): none is trusted.',
    todo: UNTRUSTED,
    person: true,
  },
  ORDER_NOT_FOUND: {
    means: 'Assist has no order under this number, long after the payment was made: the payment request never reached Assist and nothing was charged.',
    todo: 'Nothing to undo. If the customer still wants to pay, make a new payment under a new order number.',
  },
  ORDER_NUMBER_TAKEN: {
    means: "The order Assist holds under this number is another payment's, and this payment's request charged nothing.",
    todo: 'Make a new payment under a new order number; never reuse an order number.',
  },
  OPERATION_NOT_FOUND: {
    means:
      'Assist has no record of this capture / release / refund, long after it was sent: the request never reached Assist and no money moved (the operation failed; the payment is unchanged).',
    todo: 'If it is still wanted, send it again with a new Idempotency-Key.',
  },
  RESOLVED_MANUALLY: {
    means: "A person resolved it by hand after reading Assist's back office; the message is their note.",
    todo: 'Nothing: a verdict is final. Who and when are in its resolution and in the audit log.',
  },
  VALIDATION_FAILED: {
    means: "The request broke a rule of Assist's parameter table and was never sent: nothing was charged and no money moved.",
    todo: FIX_REQUEST,
  },

  // why an answer was lost or not read (`source: transport`, `protocol`): the outcome is open
  TIMEOUT: { means: 'Assist did not answer in time: the outcome is open (the money may or may not have moved).', todo: RESOLVED_BY_THE_JOB },
  NETWORK: { means: 'The connection to Assist failed mid-request: the outcome is open.', todo: RESOLVED_BY_THE_JOB },
  HTTP_STATUS: { means: 'Assist answered with an HTTP error instead of a result: the outcome is open.', todo: RESOLVED_BY_THE_JOB },
  RESPONSE_TOO_LARGE: { means: "Assist's answer was larger than payorch reads: the outcome is open.", todo: RESOLVED_BY_THE_JOB },
  MALFORMED_RESPONSE: { means: "Assist's answer could not be read as its specification describes it: the outcome is open.", todo: RESOLVED_BY_THE_JOB },
  UNRECOGNIZED_VALUE: { means: "Assist's answer held a value its specification does not list: the outcome is open.", todo: RESOLVED_BY_THE_JOB },

  // answers that fail payorch's checks (`source: integrity`): never trusted
  CHECKVALUE_MISMATCH: { means: "Assist's answer failed its checkvalue and was not trusted: the outcome is open.", todo: UNTRUSTED },
  CHECKVALUE_MISSING: { means: "Assist's answer carried no checkvalue and was not trusted: the outcome is open.", todo: UNTRUSTED },
  SIGNATURE_MISMATCH: { means: "Assist's answer failed its signature check and was not trusted: the outcome is open.", todo: UNTRUSTED },
  SIGNATURE_MISSING: {
    means: "Assist's answer was not signed although the merchant has Assist's public key configured: not trusted, the outcome is open.",
    todo: UNTRUSTED,
  },

  // Assist's first codes (`source: assist`); 1, 2 and 16 leave the outcome open, the others are refusals
  SUCCESS: { means: "Assist's code for success (firstcode 0), not a refusal.", todo: 'Nothing.' },
  ERROR: { means: 'Assist answered with a general error (firstcode 1): the outcome is open.', todo: RESOLVED_BY_THE_JOB },
  INTERNAL_ERROR: { means: 'Assist reported an internal error (firstcode 2): the outcome is open.', todo: RESOLVED_BY_THE_JOB },
  OPERATION_TIMED_OUT: {
    means: 'Assist reports the operation timed out (firstcode 16), e.g. a 3-D Secure step the payer did not finish: the outcome is open.',
    todo: RESOLVED_BY_THE_JOB,
  },
  MISSING_PARAMETER: { means: `${REFUSED} A required parameter was missing (firstcode 3).`, todo: FIX_REQUEST },
  INVALID_FORMAT: { means: `${REFUSED} A parameter's format was wrong (firstcode 4).`, todo: FIX_REQUEST },
  INVALID_VALUE: { means: `${REFUSED} A parameter's value was invalid (firstcode 5).`, todo: FIX_REQUEST },
  INCOMPATIBLE_VERSION: { means: `${REFUSED} Assist reports an incompatible system version (firstcode 6).`, todo: MERCHANT_SETUP },
  AUTHENTICATION_FAILED: { means: `${REFUSED} Assist did not accept the merchant's credentials (firstcode 7).`, todo: MERCHANT_SETUP },
  AUTHORIZATION_FAILED: { means: `${REFUSED} The merchant's account may not do this at Assist (firstcode 8).`, todo: MERCHANT_SETUP },
  ENCRYPTION_ERROR: { means: `${REFUSED} Assist could not decrypt the request or the wallet token (firstcode 9).`, todo: MERCHANT_SETUP },
  OBJECT_NOT_FOUND: {
    means: `${REFUSED} Assist has no such object (firstcode 10; the second code says which).`,
    todo: 'Check the order number or billnumber sent.',
  },
  DUPLICATE_OBJECT: {
    means:
      "Assist refused the request as a duplicate (firstcode 11): it already has an order with this number, and this request created none and charged nothing. The resolution job settles the payment (rejected, ORDER_NUMBER_TAKEN, once the order is proven another's).",
    todo: 'Make the payment under a new order number; never reuse an order number.',
  },
  OBJECT_LOCKED: {
    means: `${REFUSED} The order was locked at Assist (firstcode 12), e.g. another operation on it was running.`,
    todo: 'Send it again later with a new Idempotency-Key.',
  },
  FORBIDDEN_OBJECT: { means: `${REFUSED} Assist forbids this object (firstcode 14; the second code says which).`, todo: MERCHANT_SETUP },
  FORBIDDEN_OPERATION: {
    means: `${REFUSED} Assist does not allow this operation on the order (firstcode 15).`,
    todo: "Check the order's state in Assist's back office.",
  },
  LIMIT_EXCEEDED: {
    means: `${REFUSED} A limit was exceeded (firstcode 17): the card's, the merchant's or Assist's.`,
    todo: 'The customer may pay another way, or later.',
  },
  SUSPECTED_FRAUD: { means: `${REFUSED} Assist's fraud checks stopped it (firstcode 18).`, todo: 'Nothing to retry; the customer may contact their bank.' },
  ACCESS_DENIED: { means: `${REFUSED} Access denied (firstcode 19).`, todo: MERCHANT_SETUP },
  THREE_DS_FAILED: { means: `${REFUSED} The payer failed 3-D Secure authentication (firstcode 20).`, todo: 'The customer may try again with a new payment.' },
  OPERATION_DECLINED: { means: `${REFUSED} The issuer or Assist declined it (firstcode 21).`, todo: 'The customer may pay with another card.' },
  UNRECOGNIZED: {
    means:
      "Assist answered with a first code its specification does not list: read the message and the second code; the payment's state says whether anything was concluded.",
    todo: 'Ask Assist what the code means.',
  },
};

/** A wallet code's hint (a stored row may carry any text), and the hint as one text (what it means, then what to do). */
export const { hint: walletErrorHint, text: walletErrorText } = errorHints(WALLET_ERROR_HINTS);

/** The error-code filter's suggestions: the codes left to a person first, then every other, A–Z. */
export const WALLET_ERROR_SUGGESTIONS: readonly WalletErrorCode[] = (Object.keys(WALLET_ERROR_HINTS) as WalletErrorCode[]).sort(
  (a, b) => Number(WALLET_ERROR_HINTS[b].person ?? false) - Number(WALLET_ERROR_HINTS[a].person ?? false) || a.localeCompare(b),
);

/**
 * What each `error.code` of the API's error envelope means and what the operator does about it, shown under the error
 * wherever the console shows one (the alert region, the sign-in form). The table is keyed by the contract's `ErrorCode`
 * enum (libs/domain `ApiErrorCode` → the gateway's OpenAPI, apps/api-gateway/src/common/openapi.ts → `@payorch/client/schema`),
 * so a code added there fails the console's typecheck until it has a hint here (and `api-errors.spec.ts` reads the
 * committed contract too). Each meaning is taken from where the gateway raises the code. The same mechanism as the
 * wallet hints (error-hints.ts); an answer without an envelope (`http_<status>`) has none.
 */
import type { ApiErrorCode } from './api';
import { type ErrorHint, errorHints } from './error-hints';

/** A correctable request: the message (and `details`) name what to change. */
const CORRECT_IT = 'Correct what the message names and send it again.';
/** The state changed, or was never what the request expected. */
const RELOAD = 'Reload to see the current state before doing anything else.';
/** A wallet amount over what the payment holds (planOperation, wallet-payments.service.ts). */
const AT_MOST_AVAILABLE = 'Enter at most that amount, or leave the amount empty for all of it.';

export const API_ERROR_HINTS: { readonly [C in ApiErrorCode]: ErrorHint } = {
  // Who may call (auth.guard.ts, rate-limit.guard.ts)
  UNAUTHENTICATED: {
    means: 'The API key is missing, invalid, revoked or expired (the API does not say which).',
    todo: 'Sign in with a working key (whoever holds an admin key can create one under API keys). An operation already started goes on.',
  },
  FORBIDDEN: {
    means: 'The API key lacks a scope this needs, or tried to give a new key a scope it does not hold (the message names the scopes); nothing was done.',
    todo: 'Sign in with a key that holds the scope the message names, or ask an admin for one.',
  },
  RATE_LIMITED: {
    means:
      "Too many requests: the API key's or the whole tenant's budget for the minute is spent (details.scope), or this address failed to sign in too often; nothing was done.",
    todo: 'Wait the seconds the message (and Retry-After) gives, then try again; the same key or tenant used elsewhere counts too.',
  },
  TOO_MANY_STREAMS: {
    means: 'The tenant already holds its most live event streams on this gateway (details.limit).',
    todo: 'Close a console tab or another stream client of the tenant; a slot frees when one of them closes.',
  },

  // Idempotency-Key (idempotency.interceptor.ts; operations and wallet payments keep theirs for ever)
  IDEMPOTENCY_KEY_REQUIRED: {
    means: 'A change was sent without an Idempotency-Key header; nothing was done.',
    todo: 'The console sends one with every change: report it with the request id.',
  },
  IDEMPOTENCY_KEY_REUSED: {
    means:
      'This Idempotency-Key was already used for a different request (details name the operation or payment it made): this one was not carried out, the first one stands.',
    todo: 'Look at what the first request did. Send this one again (a new key) only if it is wanted as well; if it was to replace the first, undo the first instead.',
  },
  IDEMPOTENCY_KEY_IN_PROGRESS: {
    means: 'The first request with this Idempotency-Key is still being carried out.',
    todo: "Wait the seconds of Retry-After and send it again with the same key (confirm again): it is answered with the first request's outcome. Never a new key: that would do it twice.",
  },

  // The request itself (ZodPipe, error-envelope.ts httpFailure, the services)
  VALIDATION_FAILED: {
    means: "The request broke the API's rules for its fields (details.issues name each field) or was malformed; nothing was done.",
    todo: CORRECT_IT,
  },
  UNPROCESSABLE: {
    means:
      'The request is well-formed but cannot be done as asked, e.g. a refund or void of an operation that is not an approved one of this terminal and currency, an operation the protocol does not support, or a store or selector that matches nothing.',
    todo: CORRECT_IT,
  },
  NOT_FOUND: {
    means: "No such resource: it does not exist, was deleted, or is another tenant's (the API does not say which).",
    todo: 'Check the id or the link; reload, it may have been deleted meanwhile.',
  },
  CONFLICT: {
    means:
      "The request clashes with the resource's current state or with another resource: already decided or canceled meanwhile, the same name or number already taken, or a tenant limit reached (the message says which).",
    todo: `${RELOAD} Then change the request as the message says (free a slot, pick another number) rather than repeating it.`,
  },
  RESOURCE_IN_USE: {
    means: 'It cannot be deleted while other resources still refer to it (e.g. a store its agents or terminals belong to).',
    todo: 'Move or delete what refers to it first, then delete it.',
  },
  EGRESS_DENIED: {
    means:
      "The destination (a webhook or Assist URL, a relay host or range) is refused by the platform's egress policy: https only, and no private, internal or otherwise denied address.",
    todo: "Use a public https destination, or ask the platform's operators for an egress grant for this tenant and channel (runbook: egress).",
  },
  ASSIST_MERCHANT_DUPLICATE: {
    means:
      'The tenant already has settings for this Assist merchant account (same server and Merchant_ID, details.existingId), or these settings are a duplicate kept only for their old payments.',
    todo: 'Change the existing settings instead of adding another: Assist order numbers are unique per account.',
  },

  // The platform
  SERVICE_UNAVAILABLE: {
    means: 'PostgreSQL or Redis (the queues, the terminal command bus) is unavailable for a moment: the request was refused.',
    todo: "Wait the seconds of Retry-After and try again. If it lasts, tell the platform's operators.",
  },
  INTERNAL: {
    means: 'An unexpected failure in payorch (a bug): this answer does not say whether the change was made.',
    todo: "Check the state of what was changed before trying again, and report it with the request id to the platform's operators.",
  },

  // Terminals and their operations (operable-terminal.ts, reversal-budget.ts)
  TERMINAL_DISABLED: {
    means: 'The terminal is disabled: no new operation or settlement starts on it.',
    todo: 'Use another terminal, or have it enabled again (PATCH /v1/terminals/{id} with disabled: false) if it should work.',
  },
  AGENT_REVOKED: {
    means: "The terminal's agent (its bridge) is revoked: no new operation or settlement starts on it.",
    todo: 'Move the terminal to an active agent (a new one if need be), then try again.',
  },
  TERMINAL_RECOVERING: {
    means:
      'An earlier operation of the terminal has an unknown outcome (details.operationId): new work waits until recovery reads it from the terminal or a person resolves it.',
    todo: "Try again after Retry-After. If it stays unknown, resolve that operation by hand from the terminal's journal or the bank (runbook for unknown outcomes).",
  },
  AMOUNT_EXCEEDS_ORIGINAL: {
    means:
      'The refund, void or preauthorisation capture asks for more than is left of the original operation (details: the original amount and what was already reversed); nothing was sent to the terminal.',
    todo: 'Send it again for at most what is left.',
  },
  ORIGINAL_ALREADY_CLOSED: {
    means: 'The preauthorisation is already captured or canceled by another operation (details.by); it is closed once.',
    todo: 'Nothing more to do on it: open the operation that closed it to see its outcome.',
  },

  // Wallet payments (wallet-payments.service.ts)
  WALLET_PAYMENT_ONE_STAGE: {
    means: 'A one-stage payment is captured when it is paid: only two-stage payments are captured.',
    todo: 'Nothing to capture; Cancel / refund gives money back.',
  },
  WALLET_PAYMENT_NOT_CAPTURABLE: {
    means:
      'There is no authorised remainder to capture (details.state), or Assist gave the payment no billnumber, so it cannot be operated on through payorch; nothing was sent to Assist.',
    todo: `${RELOAD} Without a billnumber, act in Assist's back office.`,
  },
  WALLET_PAYMENT_NOT_CANCELABLE: {
    means: 'Only an authorised or paid payment is released or refunded; this one is not (details.state); nothing was sent to Assist.',
    todo: 'Nothing to cancel. An unknown payment is decided first, by the resolution job or by hand.',
  },
  WALLET_PAYMENT_ALREADY_CANCELED: {
    means: 'The payment is already canceled or fully refunded: nothing is left to capture, release or refund.',
    todo: 'Nothing to do.',
  },
  WALLET_OPERATION_IN_PROGRESS: {
    means:
      'Another capture, release or refund of this payment is still pending or unknown (details.operationId): one runs at a time; nothing was sent to Assist.',
    todo: 'Try again once it has ended (the resolution job reads an unknown one from Assist, or a person resolves it).',
  },
  WALLET_AMOUNT_EXCEEDS_AUTHORIZED: {
    means: 'The capture or release asks for more than the authorised remainder (details.available); nothing was sent to Assist.',
    todo: AT_MOST_AVAILABLE,
  },
  WALLET_AMOUNT_EXCEEDS_CAPTURED: {
    means: 'The refund asks for more than was captured and not yet refunded (details.available); nothing was sent to Assist.',
    todo: AT_MOST_AVAILABLE,
  },
  WALLET_PAYMENT_NOT_UNKNOWN: {
    means: 'Only an unknown payment is resolved by hand, and this one no longer is (details.state): the resolution job or another person decided first.',
    todo: 'Nothing to decide: the page shows what it became.',
  },
  WALLET_OPERATION_NOT_UNKNOWN: {
    means: 'Only an unknown operation is resolved by hand, and this one no longer is (details.state): the resolution job or another person decided first.',
    todo: 'Nothing to decide: the page shows what it became.',
  },
  WALLET_RESOLUTION_STATE_MISMATCH: {
    means: 'A paid verdict must match the payment: approved for a one-stage payment, authorized for a two-stage one (details.twoStage).',
    todo: 'Choose the paid outcome this payment offers.',
  },
};

/** An envelope code's hint (any text: an answer without an envelope is `http_<status>`), and the hint as one text. */
export const { hint: apiErrorHint, text: apiErrorText } = errorHints(API_ERROR_HINTS);

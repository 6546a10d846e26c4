import { STATUS_CODES } from 'node:http';

import { type ApiErrorCode, assertUnreachable } from '../errors';

/**
 * The one error body of every HTTP answer, the gateway's and the device connector's alike (their exception filters,
 * and the answers written on a raw socket): the request id is also in `X-Request-Id`.
 */
export interface ErrorBody {
  error: { code: string; message: string; details: unknown; requestId: string };
}

/**
 * Retry-After (seconds) of a request refused because PostgreSQL (or, at the gateway, Redis) is unavailable: the pool
 * reconnects on the next request. The gateway's and the connector's filters, and the event stream's refusal, say the same.
 */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** The HTTP status of each API error code: exhaustive, so a new code cannot be answered 500 by accident. */
export function statusOf(code: ApiErrorCode): number {
  switch (code) {
    case 'VALIDATION_FAILED':
    case 'IDEMPOTENCY_KEY_REQUIRED':
    case 'EGRESS_DENIED':
      return 400;
    case 'UNAUTHENTICATED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'CONFLICT':
    case 'RESOURCE_IN_USE':
    case 'IDEMPOTENCY_KEY_REUSED':
    case 'IDEMPOTENCY_KEY_IN_PROGRESS':
    case 'TERMINAL_DISABLED':
    case 'TERMINAL_RECOVERING':
    case 'AGENT_REVOKED':
    case 'ASSIST_MERCHANT_DUPLICATE':
    case 'ORIGINAL_ALREADY_CLOSED':
    case 'WALLET_OPERATION_IN_PROGRESS':
    case 'WALLET_OPERATION_NOT_UNKNOWN':
    case 'WALLET_PAYMENT_ALREADY_CANCELED':
    case 'WALLET_PAYMENT_NOT_CAPTURABLE':
    case 'WALLET_PAYMENT_NOT_CANCELABLE':
    case 'WALLET_PAYMENT_NOT_UNKNOWN':
    case 'WALLET_PAYMENT_ONE_STAGE':
      return 409;
    case 'UNPROCESSABLE':
    case 'AMOUNT_EXCEEDS_ORIGINAL':
    case 'WALLET_AMOUNT_EXCEEDS_AUTHORIZED':
    case 'WALLET_AMOUNT_EXCEEDS_CAPTURED':
    case 'WALLET_RESOLUTION_STATE_MISMATCH':
      return 422;
    case 'RATE_LIMITED':
    case 'TOO_MANY_STREAMS':
      return 429;
    case 'INTERNAL':
      return 500;
    case 'SERVICE_UNAVAILABLE':
      return 503;
    default:
      return assertUnreachable(code);
  }
}

const HTTP_CODES: Record<number, ApiErrorCode> = {
  400: 'VALIDATION_FAILED',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'VALIDATION_FAILED',
  415: 'VALIDATION_FAILED',
  422: 'UNPROCESSABLE',
  429: 'RATE_LIMITED',
  503: 'SERVICE_UNAVAILABLE',
};

/** Why body-parser refused a request (its http-errors `type`), as we tell it: never its own message. */
const PARSER_REFUSALS: Record<string, string> = {
  'entity.parse.failed': 'malformed request: the body is not valid JSON',
  'request.aborted': 'malformed request: the body ended before its Content-Length',
  'request.size.invalid': 'malformed request: the body length differs from its Content-Length',
  'charset.unsupported': 'JSON bodies must be UTF-8',
  'encoding.unsupported': 'unsupported Content-Encoding',
};

/**
 * The code and message of an error the HTTP stack raised before any handler ran (Nest hands it over as an
 * HttpException with the original error as `cause`): the JSON parser (400 malformed, 413 too large, 415 charset),
 * the router (404, and 400 for a path with broken %-encoding), `requireJsonBody` (415). The texts are fixed: the
 * parser's own messages quote the request (`Unexpected token 'x', "{"token": x…" is not valid JSON`,
 * `unsupported charset "…"`) and so did the router's 404 (`Cannot GET /path`); nothing of the request is shown back
 * (connector finding 2).
 */
export function httpFailure(status: number, cause: unknown, method: string): { code: ApiErrorCode; message: string } {
  const code = HTTP_CODES[status] ?? (status >= 500 ? 'INTERNAL' : 'VALIDATION_FAILED');
  const { type, limit } = (typeof cause === 'object' && cause !== null ? cause : {}) as { type?: unknown; limit?: unknown };
  const refusal = typeof type === 'string' ? PARSER_REFUSALS[type] : undefined;
  if (refusal) return { code, message: refusal };
  switch (status) {
    case 400:
      return { code, message: cause instanceof URIError ? 'malformed request: invalid %-encoding in the path' : 'malformed request' };
    case 404:
      // The method is one of Node's parser's fixed list (http.METHODS), not free text.
      return { code, message: `no route for ${method} at this path` };
    case 413:
      return { code, message: typeof limit === 'number' ? `request body too large (at most ${limit} bytes)` : 'request body too large' };
    case 415:
      return { code, message: 'request bodies must be application/json' };
    default:
      return { code, message: (STATUS_CODES[status] ?? 'error').toLowerCase() };
  }
}

import { SetMetadata } from '@nestjs/common';

export const IDEMPOTENCY_KEPT_BY_RESOURCE_KEY = 'payorch:idempotency-kept-by-resource';

/**
 * The route keeps its Idempotency-Key in the resource it creates (a unique key per tenant plus a hash of the
 * request, e.g. `TerminalOperation.idempotencyKey`) and answers a repeat itself: same key and request → the
 * same resource in its current state, a different request → 409. The IdempotencyInterceptor then only checks
 * that the header is present and well formed, and writes no IdempotencyRecord: two transactions fewer on the
 * route (claim and stored answer), and a repeat shows the resource as it is now instead of a stale first answer.
 */
export const IdempotencyKeptByResource = () => SetMetadata(IDEMPOTENCY_KEPT_BY_RESOURCE_KEY, true);

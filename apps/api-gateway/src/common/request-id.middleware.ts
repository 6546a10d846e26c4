/**
 * The request id helpers are @payorch/domain's, shared with the device connector (its errors carry the same
 * requestId); the gateway's modules take them from here.
 */
export { assignRequestId, requestIdMiddleware, requestIdOf } from '@payorch/domain';

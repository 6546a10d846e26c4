import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

const ACCEPTED = /^[A-Za-z0-9._:-]{8,128}$/;

/** The caller's `X-Request-Id` when well-formed, otherwise a new one. */
export function requestIdOf(given: string | string[] | undefined): string {
  return typeof given === 'string' && ACCEPTED.test(given) ? given : randomUUID();
}

/**
 * The request's id, decided once: the caller's well-formed `X-Request-Id` or a new one, kept as
 * `req.requestId` (guards, filters, TenantContext) and `req.id` (pino-http), echoed in `X-Request-Id`.
 * Also nestjs-pino's `genReqId` in the gateway, so its request line and `req.log` carry the same id.
 */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const request = req as IncomingMessage & { requestId?: string; id?: unknown };
  if (request.requestId) return request.requestId;
  request.requestId = requestIdOf(req.headers['x-request-id']);
  request.id = request.requestId;
  res.setHeader('X-Request-Id', request.requestId);
  return request.requestId;
}

/** Assigns the request id before anything else runs, so every answer (parser errors included) carries it. */
export function requestIdMiddleware(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  assignRequestId(req, res);
  next();
}

import { RequestMethod } from '@nestjs/common';
import type { Response } from 'express';
import type { Params } from 'nestjs-pino';

import { httpLogging, type Logger } from '@payorch/logging';

import type { PayorchRequest } from './request-context';
import { assignRequestId } from './request-id.middleware';

/**
 * Where the request logger is mounted: every path (nestjs-pino's own default, made explicit). Nest mounts
 * it as an Express route, so a request no controller matched still has it as `req.route`.
 */
const EVERY_ROUTE = '{/*splat}';

/** The matched route's pattern (`/v1/stores/:id`) for logs and metric labels; `unmatched` for a 404. */
export function routeOf(req: PayorchRequest): string {
  const path = req.route?.path as string | undefined;
  return path === undefined || path === EVERY_ROUTE ? 'unmatched' : path;
}

/**
 * nestjs-pino's LoggerModule options: one `request` line per request through pino-http on our logger
 * (libs/logging `httpLogging`: ids only, redaction kept), with the request id of `X-Request-Id`
 * (assigned first in bootstrap.ts, so `genReqId` finds it), the tenant and the route.
 */
export function requestLogging(logger: Logger): Params<PayorchRequest, Response> {
  return {
    forRoutes: [{ path: EVERY_ROUTE, method: RequestMethod.ALL }],
    pinoHttp: httpLogging<PayorchRequest, Response>({
      logger,
      genReqId: assignRequestId,
      fields: (req) => ({ tenantId: req.tenant?.tenantId, route: routeOf(req) }),
    }),
  };
}

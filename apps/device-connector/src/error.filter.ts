import type { IncomingMessage } from 'node:http';

import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { Response } from 'express';

import { isDatabaseUnavailable } from '@payorch/db';
import { ApiError, assignRequestId, DATABASE_RETRY_AFTER_SECONDS, type ErrorBody, httpFailure, statusOf } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

/**
 * The connector's one exception filter (global, bootstrap.ts), for its few HTTP routes and everything the HTTP stack
 * refuses before them: the gateway's envelope `{error:{code,message,details,requestId}}`, the id also in
 * X-Request-Id, the statuses and fixed texts of @payorch/domain (`statusOf`, `httpFailure`). Before, only the
 * enrollment controller's own errors had the envelope (without a requestId); a malformed body, an oversize one, a
 * form or an unknown route came back in Nest's default shape, the parser's message quoting the body (finding 2).
 */
@Catch()
export class ConnectorErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<IncomingMessage>();
    const res = http.getResponse<Response>();
    const requestId = assignRequestId(req, res);
    const { status, code, message, details } = describe(exception, req.method ?? 'GET');
    if (status >= 500 && code !== 'SERVICE_UNAVAILABLE') this.logger.error({ err: exception, requestId }, 'request failed');
    if (res.headersSent) return;
    if (code === 'SERVICE_UNAVAILABLE') res.setHeader('Retry-After', String(DATABASE_RETRY_AFTER_SECONDS));
    const body: ErrorBody = { error: { code, message, details: details ?? null, requestId } };
    res.status(status).type('application/json').json(body);
  }
}

function describe(exception: unknown, method: string): { status: number; code: string; message: string; details?: unknown } {
  if (exception instanceof ApiError) {
    return { status: statusOf(exception.code), code: exception.code, message: exception.message, details: exception.details };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    return { status, ...httpFailure(status, exception.cause, method) };
  }
  if (isDatabaseUnavailable(exception)) {
    return {
      status: 503,
      code: 'SERVICE_UNAVAILABLE',
      message: 'the service is temporarily unavailable (database); retry later',
      details: { retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS },
    };
  }
  return { status: 500, code: 'INTERNAL', message: 'internal error' };
}

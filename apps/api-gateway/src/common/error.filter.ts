import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Inject } from '@nestjs/common';
import type { Response } from 'express';

import { isRedisUnavailable } from '@payorch/command-bus';
import { isDatabaseUnavailable } from '@payorch/db';
import { ApiError, DATABASE_RETRY_AFTER_SECONDS, type ErrorBody, httpFailure, statusOf } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import type { PayorchRequest } from './request-context';
import { LOGGER } from './tokens';

/** Each code's status and the outage's Retry-After: @payorch/domain's, shared with the device connector's filter; the gateway's modules take them from here. */
export { DATABASE_RETRY_AFTER_SECONDS, statusOf };

/** The one exception filter: domain codes → HTTP status, one body shape for every error. */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<PayorchRequest>();
    const res = http.getResponse<Response>();
    const { status, code, message, details } = this.describe(exception, req);
    if (code === 'SERVICE_UNAVAILABLE') {
      // An outage, not a bug: one warn line per refused request, with the cause's code, not its stack.
      this.logger.warn({ requestId: req.requestId, method: req.method, path: req.path, cause: causeOf(exception) }, 'request refused: service unavailable');
    } else if (status >= 500) {
      this.logger.error({ err: exception, requestId: req.requestId }, 'request failed');
    }
    const body: ErrorBody = { error: { code, message, details: details ?? null, requestId: req.requestId } };
    if (res.headersSent) return;
    // An error that says when to come back (TERMINAL_RECOVERING) carries it in details.retryAfterSeconds.
    const retryAfter = retryAfterOf(details);
    if (retryAfter !== undefined && !res.hasHeader('Retry-After')) res.setHeader('Retry-After', String(retryAfter));
    // A route's own @Header (e.g. text/csv + attachment on export.csv) was set before the handler ran: an error is JSON, not a download.
    res.removeHeader('Content-Disposition');
    res.status(status).type('application/json').json(body);
  }

  private describe(exception: unknown, req: PayorchRequest) {
    if (exception instanceof ApiError) {
      return { status: statusOf(exception.code), code: exception.code, message: exception.message, details: exception.details };
    }
    if (exception instanceof HttpException) {
      // Raised by the HTTP stack (body parser, router, requireJsonBody), the original error as `cause`: fixed texts, no echo.
      const status = exception.getStatus();
      return { status, ...httpFailure(status, exception.cause, req.method), details: null };
    }
    if (isDatabaseUnavailable(exception)) {
      return {
        status: 503,
        code: 'SERVICE_UNAVAILABLE',
        message: 'the service is temporarily unavailable (database); retry with the same Idempotency-Key',
        details: { retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS },
      };
    }
    if (isRedisUnavailable(exception)) {
      // Queues and the command bus: nothing was enqueued; the same Idempotency-Key retried later completes the request.
      return {
        status: 503,
        code: 'SERVICE_UNAVAILABLE',
        message: 'the service is temporarily unavailable (queue / command bus); retry with the same Idempotency-Key',
        details: { retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS },
      };
    }
    return { status: 500, code: 'INTERNAL', message: 'internal error', details: null };
  }
}

/** `P1001`, `57P01`, `ECONNREFUSED` or the first line of the message: enough to tell outages apart in logs. */
function causeOf(exception: unknown): string {
  if (exception === null || typeof exception !== 'object') return String(exception);
  const { code, message } = exception as { code?: unknown; message?: unknown };
  if (typeof code === 'string') return code;
  return typeof message === 'string' ? message.trim().split('\n')[0]!.slice(0, 200) : 'unknown';
}

function retryAfterOf(details: unknown): number | undefined {
  if (details === null || typeof details !== 'object') return undefined;
  const value = (details as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

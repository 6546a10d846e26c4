import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { Response } from 'express';

import { isDatabaseUnavailable } from '@payorch/db';
import { ApiError } from '@payorch/domain';

const STATUS: Partial<Record<string, number>> = { UNAUTHENTICATED: 401, VALIDATION_FAILED: 400, NOT_FOUND: 404 };
/** As the gateway: while PostgreSQL is unavailable the agent retries after this many seconds. */
const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Same error body as the gateway for the connector's few HTTP routes. */
@Catch()
export class ConnectorErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    if (exception instanceof ApiError) {
      res.status(STATUS[exception.code] ?? 500).json({ error: { code: exception.code, message: exception.message, details: null } });
    } else if (isDatabaseUnavailable(exception)) {
      res.setHeader('Retry-After', String(DATABASE_RETRY_AFTER_SECONDS));
      res.status(503).json({
        error: {
          code: 'SERVICE_UNAVAILABLE',
          message: 'the service is temporarily unavailable (database); retry later',
          details: { retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS },
        },
      });
    } else if (exception instanceof HttpException) {
      res.status(exception.getStatus()).json({ error: { code: 'VALIDATION_FAILED', message: exception.message, details: null } });
    } else {
      res.status(500).json({ error: { code: 'INTERNAL', message: 'internal error', details: null } });
    }
  }
}

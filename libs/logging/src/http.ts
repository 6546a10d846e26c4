import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Logger } from 'pino';
import type { Options } from 'pino-http';

export interface HttpLoggingOptions<Req extends IncomingMessage, Res extends ServerResponse> {
  /** A logger from createLogger: its redaction and PAN scrubbing apply to every HTTP line. */
  logger: Logger;
  /** The request's id, logged as `requestId` (pino-http keeps it as `req.id`). */
  genReqId: (req: Req, res: Res) => string;
  /** Ids the `request` line carries besides requestId, method, status and ms (route, tenantId, …). */
  fields?: (req: Req, res: Res) => Record<string, unknown>;
}

/**
 * pino-http options for nestjs-pino's `LoggerModule.forRoot({ pinoHttp })`: one `info` line per request,
 * `{"msg":"request","requestId","method",…fields,"status","ms"}`, whatever the status (a 5xx is logged with
 * its cause by the error filter). Ids only: neither the request (headers, `Authorization`, query, body) nor
 * the response is serialized, and the child logger bound to `req.log` carries only `requestId`. The
 * logger's redaction paths (`REDACT_PATHS`) still cover anything logged through it.
 */
export function httpLogging<Req extends IncomingMessage, Res extends ServerResponse>(options: HttpLoggingOptions<Req, Res>): Options<Req, Res> {
  const line = (req: Req, res: Res, ms: unknown) => ({ requestId: req.id, method: req.method, ...options.fields?.(req, res), status: res.statusCode, ms });
  return {
    logger: options.logger,
    genReqId: options.genReqId,
    customAttributeKeys: { reqId: 'requestId', responseTime: 'ms' },
    quietReqLogger: true,
    quietResLogger: true,
    useLevel: 'info',
    customSuccessMessage: () => 'request',
    customErrorMessage: () => 'request',
    customSuccessObject: (req, res, value: { ms: number }) => line(req, res, value.ms),
    customErrorObject: (req, res, _error, value: { ms: number }) => line(req, res, value.ms),
  };
}

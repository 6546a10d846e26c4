import type { IncomingHttpHeaders } from 'node:http';

/** Media types a request body may have (the JSON parser's `type` too); anything else → 415 before parsing. */
export const JSON_MEDIA_TYPES = ['application/json', 'application/*+json'];

/** What `requireJsonBody` reads of a request: its method, headers and Express's `req.is` (type-is). */
export interface BodyRequest {
  method?: string;
  headers: IncomingHttpHeaders;
  is(types: string[]): string | false | null;
}

const hasBody = (req: BodyRequest) => {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
};

/**
 * Every API body is JSON: a body of another type (form-encoded, text, multipart, none declared) is 415
 * before anything parses it. Bodyless requests and GET/HEAD/OPTIONS pass. The error has the shape of
 * body-parser's own (http-errors: `status`, `statusCode`, `expose`, `type`), so Nest's Express adapter hands it to
 * the exception filter as an HttpException, as it does theirs, and `httpFailure` words it.
 */
export function requireJsonBody(req: BodyRequest, _res: unknown, next: (error?: Error) => void): void {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS' || !hasBody(req) || req.is(JSON_MEDIA_TYPES)) return next();
  next(Object.assign(new Error('request bodies must be application/json'), { status: 415, statusCode: 415, expose: true, type: 'content-type.unsupported' }));
}

import { httpFailure } from './error-envelope';

describe(httpFailure.name, () => {
  /** body-parser's errors (http-errors): a status, a `type`, and a message that may quote the request. */
  const parserError = (status: number, type: string, extra: object = {}) => Object.assign(new Error('quoted zq7marker'), { status, type, ...extra });

  it.each<[string, number, unknown, { code: string; message: string }]>([
    ['malformed JSON', 400, parserError(400, 'entity.parse.failed'), { code: 'VALIDATION_FAILED', message: 'malformed request: the body is not valid JSON' }],
    [
      'a cut body',
      400,
      parserError(400, 'request.aborted'),
      { code: 'VALIDATION_FAILED', message: 'malformed request: the body ended before its Content-Length' },
    ],
    [
      'a broken path',
      400,
      new URIError('Failed to decode param zq7marker'),
      { code: 'VALIDATION_FAILED', message: 'malformed request: invalid %-encoding in the path' },
    ],
    [
      'a body too large',
      413,
      parserError(413, 'entity.too.large', { limit: 16384 }),
      { code: 'VALIDATION_FAILED', message: 'request body too large (at most 16384 bytes)' },
    ],
    ['an unknown charset', 415, parserError(415, 'charset.unsupported'), { code: 'VALIDATION_FAILED', message: 'JSON bodies must be UTF-8' }],
    ['an unknown encoding', 415, parserError(415, 'encoding.unsupported'), { code: 'VALIDATION_FAILED', message: 'unsupported Content-Encoding' }],
    [
      'a body that is not JSON',
      415,
      parserError(415, 'content-type.unsupported'),
      { code: 'VALIDATION_FAILED', message: 'request bodies must be application/json' },
    ],
    ['an unknown route', 404, undefined, { code: 'NOT_FOUND', message: 'no route for POST at this path' }],
    ['anything else', 405, undefined, { code: 'VALIDATION_FAILED', message: 'method not allowed' }],
  ])('%s → %i in fixed words', (_what, status, cause, expected) => {
    expect(httpFailure(status, cause, 'POST')).toEqual(expected);
  });
});

import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

import type { ApiErrorCode, ErrorBody } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

/**
 * A complete HTTP/1.1 error response in the envelope `{error:{code,message,details,requestId}}`, for the
 * places that answer on the raw socket, outside Express and the ErrorFilter: the HTTP parser's
 * `clientError` (431, malformed requests) and refused WebSocket upgrades.
 */
export function rawErrorResponse(
  status: number,
  error: { code: ApiErrorCode; message: string; details?: unknown; requestId: string },
  headers: Record<string, string> = {},
): string {
  const body: ErrorBody = { error: { code: error.code, message: error.message, details: error.details ?? null, requestId: error.requestId } };
  const json = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(json)}`,
    `X-Request-Id: ${error.requestId}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    'Connection: close',
  ];
  return `${lines.join('\r\n')}\r\n\r\n${json}`;
}

/** Writes `response` and closes the socket once it is flushed. */
export function endSocket(socket: Duplex, response: string): void {
  socket.end(response, () => socket.destroy());
}

const CLIENT_ERRORS: Record<string, { status: number; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, message: 'request header fields too large (16 KB at most)' },
  HPE_HEADERS_TIMEOUT: { status: 408, message: 'request headers not received in time' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'request not received in time' },
};

/**
 * Node's HTTP parser answers some requests itself, before Express runs: header fields over
 * `maxHeaderSize` (431), unparseable requests (400), timeouts (408) — with an empty body. With a
 * `clientError` listener Node leaves the answer to us: the same status, in the envelope, with a new
 * requestId (logged). Nothing is written when a response on this socket has already started.
 */
export function answerClientErrors(server: Server, logger: Logger): void {
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex & { _httpMessage?: ServerResponse | null }) => {
    if (err.code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent) {
      socket.destroy();
      return;
    }
    const requestId = randomUUID();
    const { status, message } = CLIENT_ERRORS[err.code ?? ''] ?? { status: 400, message: 'malformed HTTP request' };
    logger.warn({ requestId, status, code: err.code }, 'HTTP request refused by the parser');
    endSocket(socket, rawErrorResponse(status, { code: 'VALIDATION_FAILED', message, requestId }));
  });
}

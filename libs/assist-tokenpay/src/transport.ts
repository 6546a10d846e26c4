/**
 * One form POST (spec: "методом HTTP POST (в кодировке UTF-8)") with a hard deadline covering the
 * whole exchange, headers and body, and a bound on the answer's size. Every failure becomes an
 * {@link AssistTransportError}; the caller decides what it means for the payment (always `unknown`).
 */
import { AssistTransportError } from './errors';

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface PostOptions {
  readonly fetch: FetchLike;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
}

export async function postForm(url: string, form: URLSearchParams, options: PostOptions): Promise<string> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  try {
    const response = await options.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8', accept: 'application/json' },
      body: form.toString(),
      signal,
      redirect: 'error',
    });
    if (response.status < 200 || response.status > 299) {
      await response.body?.cancel().catch(() => undefined);
      throw new AssistTransportError('HTTP_STATUS', `server answered HTTP ${response.status}`, response.status);
    }
    return await readBounded(response, options.maxResponseBytes);
  } catch (error) {
    if (error instanceof AssistTransportError) throw error;
    if (signal.aborted) {
      throw new AssistTransportError('TIMEOUT', `no complete answer within ${options.timeoutMs} ms`, undefined, { cause: error });
    }
    throw new AssistTransportError('NETWORK', 'request failed before a complete answer arrived', undefined, { cause: error });
  }
}

async function readBounded(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new AssistTransportError('RESPONSE_TOO_LARGE', `answer exceeds ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

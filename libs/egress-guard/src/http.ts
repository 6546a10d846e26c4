import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';

import { formatAddress, parseAddressLiteral } from './address';
import type { EgressPolicy } from './policy';
import { EgressError, type Resolver, resolveDestination } from './resolve';

export interface GuardedHttpRequest {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Deadline from the DNS lookup to the last byte of the answer. */
  timeoutMs: number;
  policy: EgressPolicy;
  /** Plain `http:` (development only; operator setting). */
  allowHttp?: boolean;
  resolver?: Resolver;
  /**
   * Bytes of the answer's body read (default 64 KiB). Once the body goes past them the connection is closed
   * and the answer resolves with the first `maxResponseBytes` (`truncated`): the rest is never read, so an
   * endless body costs neither the deadline nor the bandwidth. 0 reads no body at all: the answer resolves
   * as soon as its status line and headers are in.
   */
  maxResponseBytes?: number;
  /** Aborts the request early (besides the deadline). */
  signal?: AbortSignal;
  /** Whose request this is (the tenant id): the process's DNS lookups serve tenants in turn. */
  owner?: string;
}

export interface GuardedHttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The connection was closed before the body's end: it went past `maxResponseBytes` (or was not read, with 0). */
  truncated: boolean;
}

/**
 * One HTTP(S) request to a tenant-given URL through the egress policy: `https` only (unless the
 * operator allows `http`), the host resolved once with every address checked, the socket opened to
 * the checked address itself (TLS still verifies the certificate against the URL's host name via
 * SNI), redirects never followed (a 3xx is just a status). Every failure is an EgressError whose
 * `publicReason` is generic ("destination not allowed", "no HTTP response"), so a tenant cannot use
 * it to tell open from closed ports; the internal detail stays in `message` for our logs.
 */
export async function guardedHttpRequest(req: GuardedHttpRequest): Promise<GuardedHttpResponse> {
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    throw new EgressError('DENIED', `not a URL: ${req.url}`, 'destination not allowed');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && req.allowHttp)) {
    throw new EgressError('DENIED', `${url.protocol} URL refused (https only)`, 'https required');
  }
  if (url.username || url.password) throw new EgressError('DENIED', 'URL with credentials refused', 'destination not allowed');
  const deadline = Date.now() + req.timeoutMs;
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const [address] = await resolveDestination(url.hostname, req.policy, { resolver: req.resolver, timeoutMs: req.timeoutMs, owner: req.owner, port });
  const isName = parseAddressLiteral(url.hostname) === null;
  const options: RequestOptions & { servername?: string } = {
    agent: false,
    headers: { ...req.headers, host: url.host },
    hostname: formatAddress(address!),
    // Node's default, pinned (a process flag could raise it): a receiver's endless headers end the request there.
    maxHeaderSize: 16 * 1024,
    method: req.method ?? 'POST',
    path: `${url.pathname}${url.search}`,
    port,
    signal: req.signal
      ? AbortSignal.any([req.signal, AbortSignal.timeout(Math.max(1, deadline - Date.now()))])
      : AbortSignal.timeout(Math.max(1, deadline - Date.now())),
  };
  if (isName && url.protocol === 'https:') options.servername = url.hostname.replace(/\.$/, '');
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const limit = req.maxResponseBytes ?? 64 * 1024;
  return new Promise<GuardedHttpResponse>((resolve, reject) => {
    const fail = (error: Error) =>
      reject(
        new EgressError(
          'CONNECT_FAILED',
          `${url.host} (${formatAddress(address!)}): ${(error as NodeJS.ErrnoException).code ?? error.name}: ${error.message}`,
          'no HTTP response',
        ),
      );
    const outgoing = send(options, (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      const answer = (truncated: boolean) => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), truncated });
        // Nothing more is read: the socket is closed (agent: false, it serves this request only).
        outgoing.destroy();
      };
      res.on('error', fail);
      if (limit === 0) return answer(!res.complete);
      res.on('data', (chunk: Buffer) => {
        if (kept + chunk.length <= limit) {
          chunks.push(chunk);
          kept += chunk.length;
          return;
        }
        chunks.push(chunk.subarray(0, limit - kept));
        kept = limit;
        answer(true);
      });
      res.on('end', () => answer(false));
    });
    outgoing.on('error', fail);
    outgoing.end(req.body);
  });
}

const FETCH_BACKSTOP_SLACK_MS = 5_000;

/**
 * A `fetch`-shaped function over {@link guardedHttpRequest} for clients that take one (the Assist
 * client): same policy, no redirects, the answer buffered up to `maxResponseBytes` (the rest is not read). `policy` may be a
 * function, asked before every request (the tenant's grants are read then, not when the client is built).
 */
export function guardedFetch(
  options: Pick<GuardedHttpRequest, 'allowHttp' | 'resolver' | 'maxResponseBytes' | 'owner'> & {
    policy: EgressPolicy | (() => Promise<EgressPolicy>);
    timeoutMs: number;
  },
) {
  return async (url: string, init: RequestInit): Promise<Response> => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => (headers[key] = value));
    const policy = typeof options.policy === 'function' ? await options.policy() : options.policy;
    const res = await guardedHttpRequest({
      ...options,
      policy,
      // The caller's signal is the deadline it reports (a client maps its own abort to TIMEOUT); ours is
      // only a backstop, so it must never fire first.
      timeoutMs: init.signal ? options.timeoutMs + FETCH_BACKSTOP_SLACK_MS : options.timeoutMs,
      url,
      method: init.method ?? 'GET',
      headers,
      body: typeof init.body === 'string' ? init.body : init.body == null ? undefined : String(init.body),
      signal: init.signal ?? undefined,
    });
    const responseHeaders = new Headers();
    for (const [key, value] of Object.entries(res.headers)) {
      if (value !== undefined) responseHeaders.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    return new Response(res.status === 204 || res.status === 304 ? null : new Uint8Array(res.body), { status: res.status, headers: responseHeaders });
  };
}

import { randomUUID } from 'node:crypto';

import createClient, { type Client, type ClientOptions, type Middleware } from 'openapi-fetch';

import type { components, paths } from './generated/openapi';

export type Schemas = components['schemas'];

/** The contract requires `Idempotency-Key` on mutating calls; the client sends one itself, so callers may leave it out. */
type KeyOptional<P> = P extends { header: infer H } ? Omit<P, 'header'> & { header?: Omit<H, 'Idempotency-Key'> & { 'Idempotency-Key'?: string } } : P;
type ClientOperation<O> = O extends { parameters: infer P } ? Omit<O, 'parameters'> & { parameters: KeyOptional<P> } : O;
/** `paths` of the generated types, with `Idempotency-Key` optional (createPayorchClient adds it). */
export type ClientPaths = { [Path in keyof paths]: { [Method in keyof paths[Path]]: ClientOperation<paths[Path][Method]> } };
export type PayorchApi = Client<ClientPaths>;

export interface PayorchClientOptions {
  /** The gateway, e.g. `http://localhost:3000` (no `/v1`). */
  baseUrl: string;
  /** An API key `pok_…` (`Authorization: Bearer`). */
  apiKey: string;
  /** Default: globalThis.fetch. */
  fetch?: ClientOptions['fetch'];
  /** Default: a random UUID per call. Give the same key to retry a call safely. */
  idempotencyKey?: () => string;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Thrown by `unwrap` for an error answer: the envelope's fields, plus the HTTP status. */
export class PayorchApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: Schemas['ErrorCode'],
    message: string,
    readonly details: Record<string, unknown> | null,
    readonly requestId: string,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = 'PayorchApiError';
  }
}

/**
 * A typed client of the payorch API (openapi-fetch over the generated `paths`): every call is
 * `client.GET('/v1/operations/{id}', { params: { path: { id } } })` with the contract's types.
 * Mutating calls get an `Idempotency-Key` (a fresh UUID) unless the call sets one:
 * `client.POST('/v1/stores', { body, params: { header: { 'Idempotency-Key': key } } })`.
 */
export function createPayorchClient(options: PayorchClientOptions): PayorchApi {
  const client = createClient<ClientPaths>({ baseUrl: options.baseUrl.replace(/\/$/, ''), fetch: options.fetch });
  const newKey = options.idempotencyKey ?? randomUUID;
  const auth: Middleware = {
    onRequest({ request }) {
      request.headers.set('Authorization', `Bearer ${options.apiKey}`);
      if (MUTATING.has(request.method) && !request.headers.has('Idempotency-Key')) request.headers.set('Idempotency-Key', newKey());
      return request;
    },
  };
  client.use(auth);
  return client;
}

/** The data of a successful answer; a `PayorchApiError` for an error answer. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const envelope = (error as { error?: Schemas['Error']['error'] } | undefined)?.error;
  throw new PayorchApiError(
    response.status,
    envelope?.code ?? 'INTERNAL',
    envelope?.message ?? response.statusText,
    (envelope?.details as Record<string, unknown> | null | undefined) ?? null,
    envelope?.requestId ?? response.headers.get('X-Request-Id') ?? '',
  );
}

/**
 * Every item of a cursor-paginated list, page after page:
 * `for await (const op of paginate((cursor) => client.GET('/v1/operations', { params: { query: { cursor, limit: 200 } } })))`.
 */
export async function* paginate<T>(
  page: (cursor: string | undefined) => Promise<{ data?: { data: T[]; nextCursor: string | null }; error?: unknown; response: Response }>,
): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const body = await unwrap(page(cursor));
    yield* body.data;
    cursor = body.nextCursor ?? undefined;
  } while (cursor);
}

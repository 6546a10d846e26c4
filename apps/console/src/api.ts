/**
 * The console's calls to the gateway's REST API (the same origin), typed by the generated contract of
 * `@payorch/client` (openapi-typescript over docs/openapi.json) and made by openapi-fetch. Only the
 * generated *types* are imported (`@payorch/client/schema`, erased at build): the client's own entry point
 * uses node:crypto (idempotency keys, webhook signatures), which has no place in the browser bundle. The
 * API key lives in sessionStorage only and is never logged.
 */
import createClient, { type Middleware } from 'openapi-fetch';

import type { components, paths } from '@payorch/client/schema';

export type Schemas = components['schemas'];
export type Store = Schemas['Store'];
export type Agent = Schemas['Agent'];
export type Terminal = Schemas['Terminal'];
export type PresenceStatus = Terminal['status'];
export type Operation = Schemas['Operation'];
export type OperationState = Operation['state'];
export type OperationEvent = Schemas['OperationEvent'];
export type RelaySession = Schemas['RelaySession'];
export type Settlement = Schemas['Settlement'];
export type SettlementStatus = Schemas['SettlementStatus'];
export type WalletPayment = Schemas['WalletPayment'];
export type WalletOperation = Schemas['WalletOperation'];
export type WalletResolution = NonNullable<WalletPayment['resolution']>;
/** Every `error.code` of a wallet payment or operation the API can return (hints: wallet-errors.ts). */
export type WalletErrorCode = Schemas['WalletErrorCode'];
/** Every `error.code` of the API's error envelope (`ErrorCode`, libs/domain `ApiErrorCode`; hints: api-errors.ts). */
export type ApiErrorCode = Schemas['ErrorCode'];
export type Webhook = Schemas['Webhook'];
export type Delivery = Schemas['WebhookDelivery'];
export type ApiKey = Schemas['ApiKey'];
export type AuditEntry = Schemas['AuditEntry'];
export type Campaign = Schemas['Campaign'];
export type OperationStats = Schemas['OperationStats'];
export type NewOperation = Schemas['CreateOperationRequest'];

export type Role = 'read' | 'operate' | 'admin';

/**
 * What `GET /console/session` answers: the console's own route (apps/api-gateway/src/console), not part of
 * the public contract, so its type is written here.
 */
export interface Session {
  keyId: string;
  tenantId: string;
  scopes: string[];
}

/** The envelope's fields; `code` is an `ApiErrorCode`, or `http_<status>` when an answer carried no envelope (a proxy's 502). */
export interface ApiErrorBody {
  code: string;
  message: string;
  details?: unknown;
  requestId?: string;
}

/** The API's error envelope, thrown by every call that did not answer 2xx. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.message);
  }

  get forbidden(): boolean {
    return this.status === 403;
  }
}

/**
 * The `ApiError` of an answer that was not 2xx, from its parsed JSON body: the envelope's `error`, or `http_<status>`
 * when it carried none (a proxy's 502, a body that is not JSON).
 */
export function apiError(response: Response, body: unknown): ApiError {
  const envelope = (body as { error?: ApiErrorBody } | undefined)?.error;
  return new ApiError(response.status, envelope ?? { code: `http_${response.status}`, message: response.statusText || 'request failed' });
}

/** The same, reading the body of a raw `fetch` answer (the calls openapi-fetch does not make: the session, the event stream). */
export const readApiError = async (response: Response): Promise<ApiError> => apiError(response, await response.json().catch(() => undefined));

const KEY_STORAGE = 'payorch.console.apiKey';

export const keyStore = {
  get: (): string | null => sessionStorage.getItem(KEY_STORAGE),
  set: (key: string) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The contract requires `Idempotency-Key` on mutating calls; the middleware sends a fresh one, so calls leave it out. */
type KeyOptional<P> = P extends { header: infer H } ? Omit<P, 'header'> & { header?: Omit<H, 'Idempotency-Key'> & { 'Idempotency-Key'?: string } } : P;
type ClientOperation<O> = O extends { parameters: infer P } ? Omit<O, 'parameters'> & { parameters: KeyOptional<P> } : O;
type ClientPaths = { [Path in keyof paths]: { [Method in keyof paths[Path]]: ClientOperation<paths[Path][Method]> } };

/** A fresh `Idempotency-Key` (the contract's 8–128 characters of A-Z a-z 0-9 . _ : -), from the browser's crypto. */
export const newIdempotencyKey = (): string => `console-${crypto.randomUUID()}`;

const auth: Middleware = {
  onRequest({ request }) {
    const key = keyStore.get();
    if (key && !request.headers.has('Authorization')) request.headers.set('Authorization', `Bearer ${key}`);
    // One key per user action: a click is never sent twice by the console, so a fresh key each call is right. A
    // call that may be confirmed again after a lost answer (a human verdict) passes the key of its confirmation.
    if (MUTATING.has(request.method) && !request.headers.has('Idempotency-Key')) request.headers.set('Idempotency-Key', newIdempotencyKey());
    return request;
  },
};

/** The typed client: `client.GET('/v1/operations/{id}', { params: { path: { id } } })`, the key from this tab's session. */
export const client = createClient<ClientPaths>({ baseUrl: '', headers: { Accept: 'application/json' } });
client.use(auth);

/** The data of a 2xx answer; an `ApiError` with the envelope otherwise. */
async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  throw apiError(response, error);
}

/** Every page of a list, up to `max` rows. */
async function all<T>(
  page: (cursor: string | undefined) => Promise<{ data?: { data: T[]; nextCursor: string | null }; error?: unknown; response: Response }>,
  max = 1000,
) {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const body = await ok(page(cursor));
    out.push(...body.data);
    cursor = body.nextCursor ?? undefined;
  } while (cursor && out.length < max);
  return out;
}

type Query<P extends keyof paths> = paths[P]['get'] extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;
const id = (value: string) => ({ path: { id: value } });

export const api = {
  session: async (key?: string): Promise<Session> => {
    const res = await fetch('/console/session', { headers: { Accept: 'application/json', Authorization: `Bearer ${key ?? keyStore.get() ?? ''}` } });
    const body = (await res.json().catch(() => undefined)) as { error?: ApiErrorBody } | Session | undefined;
    if (!res.ok) throw apiError(res, body);
    return body as Session;
  },
  stores: () => all((cursor) => client.GET('/v1/stores', { params: { query: { cursor, limit: 100 } } })),
  agents: () => all((cursor) => client.GET('/v1/agents', { params: { query: { cursor, limit: 100 } } })),
  terminals: () => all((cursor) => client.GET('/v1/terminals', { params: { query: { cursor, limit: 100 } } })),
  terminal: (terminalId: string) => ok(client.GET('/v1/terminals/{id}', { params: id(terminalId) })),
  operations: (query: Query<'/v1/operations'> = {}) => ok(client.GET('/v1/operations', { params: { query: { limit: 50, ...query } } })),
  operation: (operationId: string) => ok(client.GET('/v1/operations/{id}', { params: id(operationId) })),
  /** The operation's recorded steps, oldest first (all pages: an operation has tens). */
  operationEvents: (operationId: string) =>
    all((cursor) => client.GET('/v1/operations/{id}/events', { params: { path: { id: operationId }, query: { cursor, limit: 200 } } })),
  startOperation: (terminalId: string, body: NewOperation) => ok(client.POST('/v1/terminals/{id}/operations', { params: id(terminalId), body })),
  cancelOperation: (operationId: string) => ok(client.POST('/v1/operations/{id}/cancel', { params: id(operationId) })),
  resolveOperation: (operationId: string, body: Schemas['ResolveOperationRequest']) =>
    ok(client.POST('/v1/operations/{id}/resolve', { params: id(operationId), body })),
  relaySessions: (terminalId: string) => ok(client.GET('/v1/relay-sessions', { params: { query: { terminalId, limit: 20 } } })),
  settlements: (query: Query<'/v1/settlements'> = {}) => ok(client.GET('/v1/settlements', { params: { query: { limit: 100, ...query } } })),
  /** Every settlement matching `query` (a store's month: at most terminals × 31). */
  allSettlements: (query: Query<'/v1/settlements'>) =>
    all((cursor) => client.GET('/v1/settlements', { params: { query: { ...query, cursor, limit: 200 } } }), 5000),
  settlement: (settlementId: string) => ok(client.GET('/v1/settlements/{id}', { params: id(settlementId) })),
  rerunSettlement: (terminalId: string, businessDate: string) =>
    ok(client.POST('/v1/terminals/{id}/settlements', { params: id(terminalId), body: { businessDate } })),
  walletPayments: (query: Query<'/v1/wallet-payments'> = {}) => ok(client.GET('/v1/wallet-payments', { params: { query: { limit: 50, ...query } } })),
  walletPayment: (paymentId: string) => ok(client.GET('/v1/wallet-payments/{id}', { params: id(paymentId) })),
  captureWallet: (paymentId: string, amount?: number) =>
    ok(client.POST('/v1/wallet-payments/{id}/capture', { params: id(paymentId), body: amount ? { amount } : {} })),
  /** Releases an authorisation, or refunds a paid payment (Assist wscancel). */
  cancelWallet: (paymentId: string, amount?: number) =>
    ok(client.POST('/v1/wallet-payments/{id}/cancel', { params: id(paymentId), body: amount ? { amount } : {} })),
  /**
   * A person's verdict on an `unknown` payment (docs/wallet-payments.md, "Human resolution"). `idempotencyKey`: one
   * per confirmed verdict, so confirming it again after a lost answer is answered with the first answer.
   */
  resolveWallet: (paymentId: string, body: Schemas['ResolveWalletPaymentRequest'], idempotencyKey: string) =>
    ok(client.POST('/v1/wallet-payments/{id}/resolve', { params: { ...id(paymentId), header: { 'Idempotency-Key': idempotencyKey } }, body })),
  /** A person's verdict on an `unknown` capture / cancel / refund of the payment; answers the payment. */
  resolveWalletOperation: (paymentId: string, operationId: string, body: Schemas['ResolveWalletOperationRequest'], idempotencyKey: string) =>
    ok(
      client.POST('/v1/wallet-payments/{id}/operations/{operationId}/resolve', {
        params: { path: { id: paymentId, operationId }, header: { 'Idempotency-Key': idempotencyKey } },
        body,
      }),
    ),
  webhooks: () => all((cursor) => client.GET('/v1/webhooks', { params: { query: { cursor, limit: 100 } } })),
  deliveries: (webhookId: string) => ok(client.GET('/v1/webhooks/{id}/deliveries', { params: { path: { id: webhookId }, query: { limit: 50 } } })),
  redeliver: (webhookId: string, deliveryId: string) =>
    ok(client.POST('/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver', { params: { path: { id: webhookId, deliveryId } } })),
  apiKeys: () => all((cursor) => client.GET('/v1/api-keys', { params: { query: { cursor, limit: 100 } } })),
  createApiKey: (body: Schemas['CreateApiKeyRequest']) => ok(client.POST('/v1/api-keys', { body })),
  revokeApiKey: (keyId: string) => ok(client.POST('/v1/api-keys/{id}/revoke', { params: id(keyId) })),
  auditLog: (query: Query<'/v1/audit-log'> = {}) => ok(client.GET('/v1/audit-log', { params: { query: { limit: 100, ...query } } })),
  campaigns: () => ok(client.GET('/v1/campaigns', { params: { query: { limit: 50 } } })),
  campaign: (campaignId: string) => ok(client.GET('/v1/campaigns/{id}', { params: id(campaignId) })),
  campaignAction: (campaignId: string, action: 'pause' | 'resume' | 'cancel') => {
    switch (action) {
      case 'pause':
        return ok(client.POST('/v1/campaigns/{id}/pause', { params: id(campaignId) }));
      case 'resume':
        return ok(client.POST('/v1/campaigns/{id}/resume', { params: id(campaignId) }));
      case 'cancel':
        return ok(client.POST('/v1/campaigns/{id}/cancel', { params: id(campaignId) }));
    }
  },
  operationStats: (hours = 24, bucketMinutes = 60) => ok(client.GET('/v1/stats/operations', { params: { query: { hours, bucketMinutes } } })),
  /** The discrepancy report as CSV text (downloaded through a Blob: the key never goes into a URL). */
  discrepanciesCsv: (settlementId: string) =>
    ok(client.GET('/v1/settlements/{id}/discrepancies.csv', { params: id(settlementId), headers: { Accept: 'text/csv' }, parseAs: 'text' })) as Promise<string>,
};

export type WriteScope = 'operations:write' | 'settlements:write' | 'wallet:write' | 'terminals:write' | 'webhooks:write' | 'admin';
const OPERATE_GRANTS: readonly WriteScope[] = ['operations:write', 'settlements:write', 'wallet:write'];

/**
 * What a key may do, from its scopes (libs/domain/src/scopes.ts): `admin` everything, `operate` operations,
 * settlements and wallet payments, a fine scope itself; `read` no write. The API still decides (403).
 */
export function can(scopes: readonly string[], needed: WriteScope): boolean {
  if (scopes.includes('admin') || scopes.includes(needed)) return true;
  return scopes.includes('operate') && OPERATE_GRANTS.includes(needed);
}

export function roleOf(scopes: readonly string[]): Role {
  if (scopes.includes('admin')) return 'admin';
  if (scopes.includes('operate')) return 'operate';
  return 'read';
}

/**
 * A thin typed layer over the gateway's REST API (`fetch`, the same origin). The types mirror the live
 * API's JSON (lower snake_case enums); they are the console's own until the generated client
 * (`@payorch/client`) replaces them. The API key lives in sessionStorage only and is never logged.
 */

export type Role = 'read' | 'operate' | 'admin';

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export interface ApiErrorBody {
  code: string;
  message: string;
  details?: unknown;
  requestId?: string;
}

export interface Store {
  id: string;
  name: string;
  address: string | null;
  reference: string | null;
  timeZone: string;
  labels: Record<string, string>;
}

export type PresenceStatus = 'unknown' | 'online' | 'offline' | 'disabled';

export interface Agent {
  id: string;
  name: string;
  storeId: string | null;
  status: string;
  lastSeenAt: string | null;
  [key: string]: unknown;
}

export interface Terminal {
  id: string;
  name: string;
  storeId: string;
  agentId: string | null;
  protocol: string;
  dialect: string | null;
  status: PresenceStatus;
  lastSeenAt: string | null;
  terminalId: string | null;
  merchantId: string | null;
  department: string | null;
  connection: Record<string, unknown>;
  labels: Record<string, string>;
  info: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
}

export type OperationState = 'pending' | 'sent' | 'in_progress' | 'approved' | 'declined' | 'canceled' | 'failed' | 'unknown';

export interface Operation {
  id: string;
  terminalId: string;
  storeId: string;
  type: string;
  state: OperationState;
  subStatus: string | null;
  stateReason: string | null;
  amount: number | null;
  currency: string | null;
  originalOperationId: string | null;
  maskedPan: string | null;
  rrn: string | null;
  approvalCode: string | null;
  responseCode: string | null;
  responseMessage: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
}

export interface RelaySession {
  id: string;
  terminalId: string;
  operationId: string | null;
  host: string;
  port: number;
  state: 'open' | 'ended';
  outcome: string;
  reason: string | null;
  bytesToHost: number;
  bytesFromHost: number;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
}

export interface Settlement {
  id: string;
  terminalId: string;
  storeId: string;
  businessDate: string;
  status: string;
  hasDiscrepancies: boolean;
  discrepancies: Record<string, unknown>[];
  trigger: string;
  attempts: number;
  createdAt: string;
  finishedAt: string | null;
  [key: string]: unknown;
}

export interface WalletPayment {
  id: string;
  orderNumber: string;
  amount: number;
  currency: string;
  amounts: { authorized: number; captured: number; refunded: number; released: number };
  state: string;
  tokenType: string;
  twoStage: boolean;
  maskedPan: string | null;
  merchantId: string;
  createdAt: string;
  operations: { kind?: string; state?: string; amount?: number; [key: string]: unknown }[];
}

export interface Webhook {
  id: string;
  url: string;
  description: string | null;
  enabled: boolean;
  eventTypes: string[];
  createdAt: string;
}

export interface Delivery {
  id: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'delivered' | 'retrying' | 'failed';
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface AuditEntry {
  id: string;
  action: string;
  actorType: string;
  actorId: string | null;
  resourceType: string;
  resourceId: string | null;
  requestId: string | null;
  details: Record<string, unknown> | null;
  createdAt: string;
}

export interface CampaignCounts {
  total: number;
  pending: number;
  running: number;
  retrying: number;
  succeeded: number;
  failed: number;
  skipped: number;
}

export interface Campaign {
  id: string;
  name: string;
  state: string;
  pauseReason: string | null;
  operation: { type: string; params: Record<string, unknown> };
  counts: CampaignCounts;
  waves: { index: number; size: number; canary: boolean; state: string; counts: CampaignCounts }[];
  createdAt: string;
  eta: string | null;
}

export interface OperationStats {
  from: string;
  to: string;
  bucketMinutes: number;
  buckets: {
    start: string;
    total: number;
    approved: number;
    declined: number;
    failed: number;
    unknown: number;
    approvalRate: number | null;
    perMinute: number;
    terminalsWentOffline: number;
  }[];
  timings: { start: string; protocol: string; finished: number; p50Ms: number; p99Ms: number }[];
}

export interface Session {
  keyId: string;
  tenantId: string;
  scopes: string[];
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

const KEY_STORAGE = 'payorch.console.apiKey';

export const keyStore = {
  get: (): string | null => sessionStorage.getItem(KEY_STORAGE),
  set: (key: string) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

let idempotencyCounter = 0;
const idempotencyKey = () => `console-${Date.now().toString(36)}-${(idempotencyCounter++).toString(36)}-${crypto.randomUUID()}`;

type Query = Record<string, string | number | undefined>;

function url(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function call<T>(method: string, path: string, options: { query?: Query; body?: unknown; key?: string } = {}): Promise<T> {
  const key = options.key ?? keyStore.get();
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (method !== 'GET') headers['Idempotency-Key'] = idempotencyKey();
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url(path, options.query), {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const error = (json as { error?: ApiErrorBody } | undefined)?.error ?? { code: `http_${res.status}`, message: res.statusText || 'request failed' };
    throw new ApiError(res.status, error);
  }
  return json as T;
}

/** Every page of a list, up to `max` rows. */
async function all<T>(path: string, query: Query = {}, max = 1000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await call<Page<T>>('GET', path, { query: { ...query, limit: 100, cursor } });
    out.push(...page.data);
    cursor = page.nextCursor ?? undefined;
  } while (cursor && out.length < max);
  return out;
}

export interface NewOperation {
  type: string;
  amount?: number;
  currency?: string;
  originalOperationId?: string;
}

export const api = {
  session: (key?: string) => call<Session>('GET', '/console/session', { key }),
  stores: () => all<Store>('/v1/stores'),
  agents: () => all<Agent>('/v1/agents'),
  terminals: () => all<Terminal>('/v1/terminals'),
  terminal: (id: string) => call<Terminal>('GET', `/v1/terminals/${encodeURIComponent(id)}`),
  operations: (query: Query = {}) => call<Page<Operation>>('GET', '/v1/operations', { query: { limit: 50, ...query } }),
  operation: (id: string) => call<Operation>('GET', `/v1/operations/${encodeURIComponent(id)}`),
  startOperation: (terminalId: string, body: NewOperation) => call<Operation>('POST', `/v1/terminals/${encodeURIComponent(terminalId)}/operations`, { body }),
  cancelOperation: (id: string) => call<Operation>('POST', `/v1/operations/${encodeURIComponent(id)}/cancel`),
  resolveOperation: (id: string, state: 'approved' | 'declined' | 'failed', note: string) =>
    call<Operation>('POST', `/v1/operations/${encodeURIComponent(id)}/resolve`, { body: { state, note } }),
  relaySessions: (terminalId: string) => call<Page<RelaySession>>('GET', '/v1/relay-sessions', { query: { terminalId, limit: 20 } }),
  settlements: (query: Query = {}) => call<Page<Settlement>>('GET', '/v1/settlements', { query: { limit: 100, ...query } }),
  settlement: (id: string) => call<Settlement>('GET', `/v1/settlements/${encodeURIComponent(id)}`),
  rerunSettlement: (terminalId: string, businessDate: string) =>
    call<Settlement>('POST', `/v1/terminals/${encodeURIComponent(terminalId)}/settlements`, { body: { businessDate } }),
  walletPayments: (query: Query = {}) => call<Page<WalletPayment>>('GET', '/v1/wallet-payments', { query: { limit: 50, ...query } }),
  walletPayment: (id: string) => call<WalletPayment>('GET', `/v1/wallet-payments/${encodeURIComponent(id)}`),
  captureWallet: (id: string, amount?: number) =>
    call<WalletPayment>('POST', `/v1/wallet-payments/${encodeURIComponent(id)}/capture`, { body: amount ? { amount } : {} }),
  /** Releases an authorisation, or refunds a paid payment (Assist wscancel). */
  cancelWallet: (id: string, amount?: number) =>
    call<WalletPayment>('POST', `/v1/wallet-payments/${encodeURIComponent(id)}/cancel`, { body: amount ? { amount } : {} }),
  webhooks: () => all<Webhook>('/v1/webhooks'),
  deliveries: (webhookId: string) => call<Page<Delivery>>('GET', `/v1/webhooks/${encodeURIComponent(webhookId)}/deliveries`, { query: { limit: 50 } }),
  redeliver: (webhookId: string, deliveryId: string) =>
    call<Delivery>('POST', `/v1/webhooks/${encodeURIComponent(webhookId)}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`),
  apiKeys: () => all<ApiKey>('/v1/api-keys'),
  createApiKey: (body: { name: string; scopes: string[]; expiresInDays?: number }) =>
    call<ApiKey & { apiKey: string | null }>('POST', '/v1/api-keys', { body }),
  revokeApiKey: (id: string) => call<ApiKey>('POST', `/v1/api-keys/${encodeURIComponent(id)}/revoke`),
  auditLog: (query: Query = {}) => call<Page<AuditEntry>>('GET', '/v1/audit-log', { query: { limit: 100, ...query } }),
  campaigns: () => call<Page<Campaign>>('GET', '/v1/campaigns', { query: { limit: 50 } }),
  campaign: (id: string) => call<Campaign>('GET', `/v1/campaigns/${encodeURIComponent(id)}`),
  campaignAction: (id: string, action: 'pause' | 'resume' | 'cancel') => call<Campaign>('POST', `/v1/campaigns/${encodeURIComponent(id)}/${action}`),
  operationStats: (hours = 24, bucketMinutes = 60) => call<OperationStats>('GET', '/v1/stats/operations', { query: { hours, bucketMinutes } }),
  /** The discrepancy report as CSV text (downloaded through a Blob: the key never goes into a URL). */
  discrepanciesCsv: async (id: string): Promise<string> => {
    const res = await fetch(`/v1/settlements/${encodeURIComponent(id)}/discrepancies.csv`, {
      headers: { Authorization: `Bearer ${keyStore.get() ?? ''}`, Accept: 'text/csv' },
    });
    if (!res.ok) {
      const body = (await res.json().catch(() => undefined)) as { error?: ApiErrorBody } | undefined;
      throw new ApiError(res.status, body?.error ?? { code: `http_${res.status}`, message: res.statusText });
    }
    return res.text();
  },
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

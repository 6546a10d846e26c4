import type { Schemas } from './api';

/** Hash routes of the console (`#/fleet`, `#/terminals/<id>`, …). */
export interface Route {
  page: 'fleet' | 'terminal' | 'operations' | 'pay' | 'settlements' | 'settlement' | 'wallet' | 'webhooks' | 'api-keys' | 'audit' | 'campaigns' | 'plots';
  id?: string;
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?');
  const [head, id] = path.split('/');
  const params = new URLSearchParams(query);
  switch (head) {
    case 'terminals':
      return id ? { page: 'terminal', id, params } : { page: 'fleet', params };
    case 'operations':
      return { page: 'operations', params };
    case 'pay':
      return { page: 'pay', params };
    case 'settlements':
      return id ? { page: 'settlement', id, params } : { page: 'settlements', params };
    case 'wallet':
    case 'webhooks':
    case 'api-keys':
    case 'audit':
    case 'campaigns':
    case 'plots':
      return { page: head, params };
    default:
      return { page: 'fleet', params };
  }
}

export type WalletState = Schemas['WalletPaymentState'];
export type WalletOperationState = Schemas['WalletOperationState'];

/** Every state of the contract, in the order the filter offers them (a record, so a state added to the contract fails the build). */
const WALLET_STATE_ORDER: Record<WalletState, number> = {
  pending: 0,
  processing: 1,
  requires_action: 2,
  authorized: 3,
  partially_captured: 4,
  approved: 5,
  partially_refunded: 6,
  refunded: 7,
  canceled: 8,
  declined: 9,
  rejected: 10,
  unknown: 11,
};
const WALLET_OPERATION_STATE_ORDER: Record<WalletOperationState, number> = { pending: 0, succeeded: 1, failed: 2, unknown: 3 };
const sorted = <T extends string>(order: Record<T, number>) => (Object.keys(order) as T[]).sort((a, b) => order[a] - order[b]);
export const WALLET_STATES: readonly WalletState[] = sorted(WALLET_STATE_ORDER);
export const WALLET_OPERATION_STATES: readonly WalletOperationState[] = sorted(WALLET_OPERATION_STATE_ORDER);
/** What the API accepts as `errorCode` (apps/api-gateway/src/wallet-payments/dto), after upper-casing. */
export const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The wallet page's filters and open payment: `#/wallet?state=unknown&errorCode=ORDER_NOT_PROVEN&operationState=unknown&payment=<id>`. */
export interface WalletView {
  state: WalletState | '';
  errorCode: string;
  operationState: WalletOperationState | '';
  payment: string;
}

/** An error code as typed (`order_not_proven `) → as the API matches it (`ORDER_NOT_PROVEN`); '' when it is not one. */
export function normalizeErrorCode(text: string): string {
  const code = text.trim().toUpperCase();
  return ERROR_CODE.test(code) ? code : '';
}

/** What a wallet URL asks for, keeping only values the API accepts (a link typed by hand never makes a 400). */
export function walletView(params: URLSearchParams): WalletView {
  const state = params.get('state') ?? '';
  const operationState = params.get('operationState') ?? '';
  const payment = params.get('payment') ?? '';
  return {
    state: Object.hasOwn(WALLET_STATE_ORDER, state) ? (state as WalletState) : '',
    errorCode: normalizeErrorCode(params.get('errorCode') ?? ''),
    operationState: Object.hasOwn(WALLET_OPERATION_STATE_ORDER, operationState) ? (operationState as WalletOperationState) : '',
    payment: UUID.test(payment) ? payment.toLowerCase() : '',
  };
}

/** The settlements calendar's store, month and open day: `#/settlements?store=<id>&month=YYYY-MM&day=YYYY-MM-DD`. */
export interface SettlementsView {
  store: string;
  /** '' when the URL names none (or an invalid one). */
  month: string;
  day: string;
}

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;
const DAY = /^(\d{4})-(0[1-9]|1[0-2])-(\d{2})$/;

/** A calendar day that exists (`2026-02-30` does not). */
function isDay(text: string): boolean {
  const match = DAY.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * What a settlements URL asks for, keeping only a store id, a month and a day that exist. A hand-typed or hostile link
 * (`month=x`, a `day` with quotes) used to break the page: the calendar could not lay out the month, and the keyboard
 * navigation built a selector from the day.
 */
export function settlementsView(params: URLSearchParams): SettlementsView {
  const store = params.get('store') ?? '';
  const month = params.get('month') ?? '';
  const day = params.get('day') ?? '';
  return { store: UUID.test(store) ? store.toLowerCase() : '', month: MONTH.test(month) ? month : '', day: isDay(day) ? day : '' };
}

/** The URL of a wallet view (empty fields left out), which `walletView` reads back. */
export function walletHash(view: WalletView): string {
  const params = new URLSearchParams();
  for (const key of ['state', 'errorCode', 'operationState', 'payment'] as const) if (view[key]) params.set(key, view[key]);
  const query = params.toString();
  return query ? `#/wallet?${query}` : '#/wallet';
}

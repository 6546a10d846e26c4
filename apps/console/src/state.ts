import { ApiError, can, roleOf, type Role, type Session } from './api';
import { apiErrorText } from './api-errors';
import { EventStream, type LiveEvent } from './events';

/** What the alert region shows: a result or an error, and for an API error what its code means and what to do. */
export interface Notice {
  kind: 'error' | 'info';
  text: string;
  /** '' when there is none (not an API error, or a code the console does not know). */
  hint: string;
}

/** What every page shares: the signed-in key's session, the live event stream and the notice area. */
export const shell = {
  session: null as Session | null,
  stream: new EventStream(),
  notice: null as Notice | null,
  noticeListeners: new Set<() => void>(),
};

export const role = (): Role => roleOf(shell.session?.scopes ?? []);
export const may = (needed: Parameters<typeof can>[1]): boolean => can(shell.session?.scopes ?? [], needed);

/** Shows a message in the page's alert region (role="alert"); an API error shows its status and code, then its hint. */
export function notify(kind: 'error' | 'info', text: string, hint = ''): void {
  shell.notice = { kind, text, hint };
  shell.noticeListeners.forEach((l) => l());
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    const prefix = err.status === 403 ? 'Not allowed (403)' : `Error ${err.status}`;
    return `${prefix} ${err.body.code}: ${err.body.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** What an API error's code means and what to do (api-errors.ts); '' for anything else. */
export const errorHint = (err: unknown): string => (err instanceof ApiError ? apiErrorText(err.body.code) : '');

export const reportError = (err: unknown) => notify('error', describeError(err), errorHint(err));

/** Minor units → "1 234.50 RUB". */
export function money(amount: number | null, currency: string | null = null): string {
  if (amount === null) return '—';
  const sign = amount < 0 ? '-' : '';
  const abs = Math.abs(amount);
  const major = Math.floor(abs / 100).toLocaleString('en-US');
  return `${sign}${major}.${String(abs % 100).padStart(2, '0')}${currency ? ` ${currency}` : ''}`;
}

/** "12.5" / "12,50" → 1250 minor units, exactly (no floating point); null when not a positive amount. */
export function parseAmount(text: string): number | null {
  const m = /^\s*(\d{1,10})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  if (!m) return null;
  const minor = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  return minor > 0 ? minor : null;
}

export function ago(iso: string | null): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(iso).toLocaleString();
}

export const FINAL_STATES = new Set(['approved', 'declined', 'canceled', 'failed']);

/** Every `operation.*` event seen since sign-in, per operation (the timeline of each card), newest last. */
export const timelines = new Map<string, LiveEvent[]>();
shell.stream.onEvent((e) => {
  if (!e.type.startsWith('operation.')) return;
  const id = String(e.data.operationId ?? e.subjectId ?? '');
  if (!id) return;
  const list = timelines.get(id) ?? [];
  list.push(e);
  if (list.length > 200) list.shift();
  timelines.set(id, list);
  if (timelines.size > 500) timelines.delete(timelines.keys().next().value!);
});

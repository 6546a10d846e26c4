import { html, nothing } from 'lit';

import type { ApiError } from '../api';
import type { StreamState } from '../events';
import { describeError, errorHint, type Notice } from '../state';

/**
 * What an error's code means and what to do, under the error (the `.hint` of a wallet error's detail too); nothing
 * when there is no hint.
 */
export function hintView(hint: string, testId: string) {
  return hint ? html`<span class="hint" data-testid=${testId}>${hint}</span>` : nothing;
}

/**
 * The alert region at the top of every page (role="alert", kept in the page while empty so a screen reader announces
 * what comes): a result or an error, an API error with its status, code and message, then its hint.
 */
export function noticeView(notice: Notice | null, dismiss: () => void) {
  return notice
    ? html`<div class="notice ${notice.kind}" role="alert" data-testid="notice">
        <div>${notice.text}${hintView(notice.hint, 'notice-hint')}</div>
        <button type="button" aria-label="Dismiss" @click=${dismiss}>×</button>
      </div>`
    : html`<div role="alert" class="notice-empty"></div>`;
}

/** The live event stream's badge in the header: its state, and the code of the gateway's refusal while there is one. */
export function streamBadgeView(state: StreamState, error: ApiError | undefined) {
  return html`<span class="badge stream-${state}" data-testid="stream-state" title="Live event stream">${state}${error ? ` · ${error.body.code}` : ''}</span>`;
}

/**
 * Under the header while the gateway refuses the live event stream (events.ts `lastError`, gone once it is live
 * again): the refusal's status, code and message, then its hint. A status, not an alert: it stays while it holds.
 */
export function streamErrorView(error: ApiError | undefined) {
  return error
    ? html`<div class="notice error" role="status" data-testid="stream-error">
        <div>Live event stream: ${describeError(error)}${hintView(errorHint(error), 'stream-error-hint')}</div>
      </div>`
    : nothing;
}

import { html, nothing } from 'lit';

import type { Notice } from '../state';

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

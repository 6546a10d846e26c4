import { describe, expect, it } from '@jest/globals';
import { nothing, type TemplateResult } from 'lit';

import { ApiError } from '../api';
import { apiErrorText } from '../api-errors';
import { notify, reportError, shell } from '../state';
import { hintView, noticeView, streamBadgeView, streamErrorView } from './notice';

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The markup a Lit template stands for, as the browser would build it from it: each value in a text node or an
 * attribute value (escaped, quoted), nested templates in place, `nothing` and event handlers as nothing.
 */
function markup(value: unknown): string {
  if (value === nothing || value === null || value === undefined || value === false || typeof value === 'function') return '';
  if (Array.isArray(value)) return value.map(markup).join('');
  if (typeof value === 'object' && '_$litType$' in value) {
    const { strings, values } = value as TemplateResult;
    return strings.reduce((out, s, i) => {
      if (i >= values.length) return out + s;
      const v = markup(values[i]);
      return out + s + (/=$/.test(s) ? `"${v}"` : v);
    }, '');
  }
  return escape(String(value));
}

const shown = () => markup(noticeView(shell.notice, () => undefined)).replace(/\s+/g, ' ');

describe('the alert region', () => {
  it("shows an API error's status, code and message, then what the code means and what to do", () => {
    reportError(
      new ApiError(409, {
        code: 'IDEMPOTENCY_KEY_REUSED',
        message: 'Idempotency-Key "console-1" was already used for a different request (POST /v1/wallet-payments/p1/capture)',
        requestId: 'r1',
      }),
    );
    expect(shown()).toBe(
      '<div class="notice error" role="alert" data-testid="notice"> <div>' +
        escape('Error 409 IDEMPOTENCY_KEY_REUSED: Idempotency-Key "console-1" was already used for a different request (POST /v1/wallet-payments/p1/capture)') +
        `<span class="hint" data-testid="notice-hint">${escape(apiErrorText('IDEMPOTENCY_KEY_REUSED'))}</span></div>` +
        ' <button type="button" aria-label="Dismiss" @click="">×</button> </div>',
    );
    expect(apiErrorText('IDEMPOTENCY_KEY_REUSED')).toMatch(/the first one stands/);
  });

  it('says to wait per Retry-After under a 429, and the 403 of a missing scope says what key to use', () => {
    reportError(new ApiError(429, { code: 'RATE_LIMITED', message: 'rate limit of 600 requests per minute exceeded; retry in 12s' }));
    expect(shown()).toContain(
      `Error 429 RATE_LIMITED: rate limit of 600 requests per minute exceeded; retry in 12s<span class="hint" data-testid="notice-hint">`,
    );
    expect(shown()).toMatch(/data-testid="notice-hint">Too many requests: .*Retry-After.*<\/span>/);
    reportError(new ApiError(403, { code: 'FORBIDDEN', message: 'API key lacks scope(s): operations:read' }));
    expect(shown()).toMatch(
      /Not allowed \(403\) FORBIDDEN: API key lacks scope\(s\): operations:read<span class="hint" data-testid="notice-hint">.*holds the scope/,
    );
  });

  it("shows no hint for an answer without an envelope, an error that is not the API's, or a result", () => {
    reportError(new ApiError(502, { code: 'http_502', message: 'Bad Gateway' }));
    expect(shown()).toContain('Error 502 http_502: Bad Gateway</div>');
    reportError(new TypeError('Failed to fetch'));
    expect(shown()).toContain('<div>Failed to fetch</div>');
    notify('info', 'Resolved by hand: payment 42 is approved');
    expect(shown()).toBe(
      '<div class="notice info" role="alert" data-testid="notice"> <div>Resolved by hand: payment 42 is approved</div> <button type="button" aria-label="Dismiss" @click="">×</button> </div>',
    );
    expect(shown()).not.toContain('hint');
  });

  it('keeps the empty region in the page while there is nothing to say', () => {
    shell.notice = null;
    expect(shown()).toBe('<div role="alert" class="notice-empty"></div>');
  });

  it('renders a hint the same way under the sign-in error, and nothing without one', () => {
    expect(markup(hintView(apiErrorText('UNAUTHENTICATED'), 'signin-error-hint'))).toBe(
      `<span class="hint" data-testid="signin-error-hint">${escape(apiErrorText('UNAUTHENTICATED'))}</span>`,
    );
    expect(apiErrorText('UNAUTHENTICATED')).toMatch(/missing, invalid, revoked or expired/);
    expect(markup(hintView('', 'signin-error-hint'))).toBe('');
  });
});

describe('the live stream in the header', () => {
  const flat = (value: unknown) => markup(value).replace(/\s+/g, ' ');

  it("shows the code of the gateway's refusal on the badge, and its status, message and hint under the header", () => {
    const refused = new ApiError(429, { code: 'TOO_MANY_STREAMS', message: 'the tenant already holds 50 live event streams', requestId: 'r1' });
    expect(flat(streamBadgeView('down', refused))).toBe(
      '<span class="badge stream-down" data-testid="stream-state" title="Live event stream">down · TOO_MANY_STREAMS</span>',
    );
    expect(flat(streamErrorView(refused))).toBe(
      '<div class="notice error" role="status" data-testid="stream-error"> <div>Live event stream: Error 429 TOO_MANY_STREAMS: the tenant already holds 50 live event streams' +
        `<span class="hint" data-testid="stream-error-hint">${escape(apiErrorText('TOO_MANY_STREAMS'))}</span></div> </div>`,
    );
    expect(flat(streamErrorView(new ApiError(401, { code: 'UNAUTHENTICATED', message: 'invalid API key' })))).toMatch(
      /Error 401 UNAUTHENTICATED: invalid API key<span class="hint" data-testid="stream-error-hint">.*Sign in with a working key/,
    );
  });

  it('shows only the state while the stream is not refused', () => {
    expect(flat(streamBadgeView('live', undefined))).toContain('>live</span>');
    expect(markup(streamErrorView(undefined))).toBe('');
  });
});

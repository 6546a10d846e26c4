import { describe, expect, it, jest } from '@jest/globals';

import { API_ERROR_HINTS, apiErrorHint, apiErrorText } from './api-errors';

interface Fs {
  readFileSync(file: string, encoding: 'utf8'): string;
}

/** Every code of the error envelope in the committed contract (docs/openapi.json `ErrorCode`). */
function contractCodes(): string[] {
  const fs = jest.requireActual<Fs>('node:fs');
  const root = expect.getState().testPath!.replace(/[/\\]apps[/\\]console[/\\]src[/\\][^/\\]+$/, '');
  const document = JSON.parse(fs.readFileSync(`${root}/docs/openapi.json`, 'utf8')) as {
    components: { schemas: Record<string, { enum?: string[] }> };
  };
  return document.components.schemas.ErrorCode?.enum ?? [];
}

/**
 * The console showed an API error as its status, code and message only (`Error 409 IDEMPOTENCY_KEY_REUSED: …`), with
 * nothing of what it means for the operator or what to do, while a wallet payment's error had a hint.
 */
describe('API error hints', () => {
  it('has a hint, what it means and what to do, for exactly the codes of the API error envelope', () => {
    const codes = contractCodes();
    expect(codes).toEqual(expect.arrayContaining(['IDEMPOTENCY_KEY_REUSED', 'RATE_LIMITED', 'UNAUTHENTICATED', 'WALLET_PAYMENT_NOT_UNKNOWN']));
    expect(Object.keys(API_ERROR_HINTS).sort()).toEqual([...codes].sort());
    for (const code of codes) {
      const hint = apiErrorHint(code);
      expect({ code, means: (hint?.means.trim().length ?? 0) > 20, todo: (hint?.todo.trim().length ?? 0) > 5 }).toEqual({ code, means: true, todo: true });
    }
  });

  it('says IDEMPOTENCY_KEY_REUSED refused this request, the first stands, and a new key is only for a request wanted as well', () => {
    const hint = apiErrorHint('IDEMPOTENCY_KEY_REUSED')!;
    expect(hint.means).toMatch(/already used for a different request.*not carried out, the first one stands/);
    expect(hint.todo).toMatch(/new key\) only if it is wanted as well/);
  });

  it('says to wait per Retry-After where the gateway sends one, and to keep the key while the first request runs', () => {
    for (const code of ['RATE_LIMITED', 'IDEMPOTENCY_KEY_IN_PROGRESS', 'SERVICE_UNAVAILABLE', 'TERMINAL_RECOVERING']) {
      expect({ code, todo: apiErrorHint(code)!.todo }).toEqual({ code, todo: expect.stringMatching(/Retry-After/) });
    }
    expect(apiErrorHint('IDEMPOTENCY_KEY_IN_PROGRESS')!.todo).toMatch(/same key.*Never a new key/);
  });

  it('knows no hint for an answer without an envelope (`http_<status>`), a code it does not know, nor inherited names', () => {
    expect(apiErrorHint('http_502')).toBeUndefined();
    expect(apiErrorHint('SOMETHING_NEW')).toBeUndefined();
    expect(apiErrorHint('constructor')).toBeUndefined();
    expect(apiErrorText('http_502')).toBe('');
    expect(apiErrorText('NOT_FOUND')).toMatch(/^No such resource: .*deleted meanwhile\.$/);
  });
});

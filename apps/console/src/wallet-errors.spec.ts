import { describe, expect, it, jest } from '@jest/globals';

import { WALLET_ERROR_HINTS, WALLET_ERROR_SUGGESTIONS, walletErrorHint, walletErrorText } from './wallet-errors';

interface Fs {
  readFileSync(file: string, encoding: 'utf8'): string;
}

/** The `WalletErrorCode` schema of the committed contract (docs/openapi.json). */
function contractSchema(): { enum?: string[]; 'x-left-to-a-person'?: string[] } {
  const fs = jest.requireActual<Fs>('node:fs');
  const root = expect.getState().testPath!.replace(/[/\\]apps[/\\]console[/\\]src[/\\][^/\\]+$/, '');
  const document = JSON.parse(fs.readFileSync(`${root}/docs/openapi.json`, 'utf8')) as {
    components: { schemas: Record<string, { enum?: string[]; 'x-left-to-a-person'?: string[] }> };
  };
  return document.components.schemas.WalletErrorCode ?? {};
}

/** Every `error.code` the API can return. */
const contractCodes = () => contractSchema().enum ?? [];

/**
 * Found in the sixteenth session: the wallet page's error-code suggestions were a hand-kept list that lacked
 * OPERATION_NOT_PROVEN (a capture / release / refund left to a person), and no code said what it meant or what to do.
 */
describe('wallet error hints', () => {
  it('has a hint, what it means and what to do, for exactly the codes the API can return', () => {
    const codes = contractCodes();
    expect(codes).toEqual(expect.arrayContaining(['OPERATION_NOT_PROVEN', 'OPERATION_NOT_FOUND', 'ORDER_NOT_PROVEN', 'CHECKVALUE_MISMATCH']));
    expect(Object.keys(WALLET_ERROR_HINTS).sort()).toEqual([...codes].sort());
    for (const code of codes) {
      const hint = walletErrorHint(code);
      expect({ code, means: (hint?.means.length ?? 0) > 20, todo: (hint?.todo.length ?? 0) > 5 }).toEqual({ code, means: true, todo: true });
    }
  });

  it("marks as a person's exactly the codes the contract (and the worker's needing-human count) leaves to a person", () => {
    // One list, libs/wallet-payments WALLET_PERSON_ERROR_CODES, published as `x-left-to-a-person`: the console's flags had
    // been a second, hand-kept copy of the worker's.
    const person = Object.entries(WALLET_ERROR_HINTS)
      .filter(([, hint]) => hint.person)
      .map(([code]) => code);
    expect(contractSchema()['x-left-to-a-person']).toEqual(expect.arrayContaining(['ORDER_NOT_PROVEN', 'OPERATION_NOT_PROVEN']));
    expect(person.sort()).toEqual([...(contractSchema()['x-left-to-a-person'] ?? [])].sort());
  });

  it('says a person decides OPERATION_NOT_PROVEN, and how: the billnumber of this operation from the back office', () => {
    const hint = walletErrorHint('OPERATION_NOT_PROVEN')!;
    expect(hint.person).toBe(true);
    expect(hint.means).toMatch(/resolved by hand without a billnumber/);
    expect(hint.todo).toMatch(/back office.*resolve it by hand, giving its billnumber/);
  });

  it('says OPERATION_NOT_FOUND means the request never reached Assist, no money moved, and that a new request may be sent', () => {
    const hint = walletErrorHint('OPERATION_NOT_FOUND')!;
    expect(hint.person).toBeUndefined();
    expect(hint.means).toMatch(/never reached Assist and no money moved/);
    expect(hint.todo).toMatch(/send it again with a new Idempotency-Key/);
  });

  it('suggests the codes left to a person first (the ones the worker counts as needing a person), then every other', () => {
    expect(WALLET_ERROR_SUGGESTIONS.slice(0, 3)).toEqual(['OPERATION_NOT_PROVEN', 'ORDER_MISMATCH', 'ORDER_NOT_PROVEN']);
    expect([...WALLET_ERROR_SUGGESTIONS].sort()).toEqual(Object.keys(WALLET_ERROR_HINTS).sort());
  });

  it('knows no hint for a code it does not know (a stored row may carry any text), nor for inherited names', () => {
    expect(walletErrorHint('SOMETHING_NEW')).toBeUndefined();
    expect(walletErrorHint('constructor')).toBeUndefined();
    expect(walletErrorText('SOMETHING_NEW')).toBe('');
    expect(walletErrorText('ORDER_NOT_FOUND')).toMatch(/^Assist has no order under this number.*new order number\.$/);
  });
});

/**
 * The one mechanism behind the console's error hints: a table of what each error code means and what the operator does
 * about it, keyed by a contract enum (so a code without a hint fails the console's typecheck), and its lookups. Two
 * tables use it: a wallet payment's stored `error.code` (wallet-errors.ts) and the API's error envelope (api-errors.ts).
 */

export interface ErrorHint {
  /** What happened, in a line. */
  readonly means: string;
  /** What the operator does about it. */
  readonly todo: string;
}

export interface ErrorHintLookup<H extends ErrorHint> {
  /** The hint of a code as received (any text: a stored row may predate a code), or undefined when the console does not know it. */
  hint(code: string): H | undefined;
  /** The hint as one text (the detail view, the alert region, tooltips): what it means, then what to do; '' for an unknown code. */
  text(code: string): string;
}

/** The lookups over `table`, which has a hint for every code of its enum `C`. */
export function errorHints<C extends string, H extends ErrorHint>(table: { readonly [K in C]: H }): ErrorHintLookup<H> {
  const hint = (code: string): H | undefined => (Object.hasOwn(table, code) ? table[code as C] : undefined);
  return {
    hint,
    text: (code) => {
      const found = hint(code);
      return found ? `${found.means} ${found.todo}` : '';
    },
  };
}

/**
 * Deterministic outcomes by the last two digits of the amount (minor units). See README.md for the table.
 * The terminal simulator applies them in online mode; in offline mode the processing-host simulator does.
 */
export type Scenario =
  | { readonly kind: 'approve' }
  | { readonly kind: 'decline'; readonly code: string; readonly text: string }
  /** Nobody presents a card: the terminal gives up after `cardTimeoutMs` with `XX CANCELED` (spec 5.1.1). */
  | { readonly kind: 'card-timeout' }
  /** The processing centre answers garbage: `XX FAILED` (spec 5.1.2). */
  | { readonly kind: 'bad-host-answer' }
  /** The terminal waits for a card forever; only a 90 interrupt ends it (`XX CANCELED`). */
  | { readonly kind: 'wait-for-interrupt' };

export const SCENARIO_TABLE: ReadonlyArray<readonly [lastDigits: number, scenario: Scenario]> = [
  [4, { kind: 'decline', code: '904', text: 'Message Not within Standard' }],
  [16, { kind: 'decline', code: '116', text: 'Insufficient funds - retry' }],
  [51, { kind: 'decline', code: '100', text: "Don't honor transaction" }],
  [55, { kind: 'wait-for-interrupt' }],
  [77, { kind: 'card-timeout' }],
  [88, { kind: 'bad-host-answer' }],
];

export function scenarioFor(amount: number | undefined): Scenario {
  if (amount === undefined) return { kind: 'approve' };
  return SCENARIO_TABLE.find(([digits]) => amount % 100 === digits)?.[1] ?? { kind: 'approve' };
}

/**
 * ChequeItems (spec, note "**" after the request table): each position must carry
 * `product` and/or `name`, `price`, `quantity` and `amount`; `tax` and `fpmode` are optional per
 * position (falling back to the request's Tax / FPMode, then to the merchant settings).
 */
import { FP_MODES, TAX_RATES, type FpMode, type TaxRate } from './enums';
import type { IssueCollector } from './validate';

export interface ChequeItem {
  readonly product?: string;
  readonly name?: string;
  /** Unit price, an OrderAmount-style decimal string. */
  readonly price: string;
  /** Quantity, a positive decimal (e.g. `2` or `'1.5'`). */
  readonly quantity: string | number;
  /** Position total, an OrderAmount-style decimal string. */
  readonly amount: string;
  readonly tax?: TaxRate;
  readonly fpmode?: FpMode;
}

const FIELD = 'ChequeItems';
const QUANTITY = /^\d+(?:\.\d+)?$/;

/** Validates and serialises the positions; accepts the typed array or ready JSON text. */
export function checkChequeItems(issues: IssueCollector, value: unknown): string | undefined {
  if (!issues.present(FIELD, value, false)) return undefined;
  const items = typeof value === 'string' ? parseArray(value) : value;
  if (!Array.isArray(items) || items.length === 0) {
    return issues.add(FIELD, typeof value === 'string' ? 'INVALID_JSON' : 'INVALID_TYPE', 'must be a non-empty JSON array of positions');
  }
  const before = issues.issues.length;
  items.forEach((item: unknown, index) => checkItem(issues, `${FIELD}[${index}]`, item));
  return issues.issues.length === before ? JSON.stringify(items) : undefined;
}

function checkItem(issues: IssueCollector, path: string, item: unknown): void {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    issues.add(path, 'INVALID_TYPE', 'must be an object');
    return;
  }
  const it = item as Record<string, unknown>;
  if (!nonEmpty(it['product']) && !nonEmpty(it['name'])) {
    issues.add(`${path}.product`, 'MISSING_KEY', 'product and/or name is required');
  }
  for (const key of ['product', 'name'] as const) {
    if (it[key] !== undefined) issues.text(`${path}.${key}`, it[key], { max: 128 });
  }
  for (const key of ['price', 'amount'] as const) {
    if (it[key] === undefined) issues.add(`${path}.${key}`, 'MISSING_KEY', 'is required');
    else issues.amount(`${path}.${key}`, numberToString(it[key]), true);
  }
  const quantity = numberToString(it['quantity']);
  if (quantity === undefined) issues.add(`${path}.quantity`, 'MISSING_KEY', 'is required');
  else if (typeof quantity !== 'string' || !QUANTITY.test(quantity) || !/[1-9]/.test(quantity)) {
    issues.add(`${path}.quantity`, 'INVALID_VALUE', 'must be a positive decimal number');
  }
  if (it['tax'] !== undefined && !(TAX_RATES as readonly unknown[]).includes(it['tax'])) {
    issues.add(`${path}.tax`, 'INVALID_VALUE', `must be one of ${TAX_RATES.join(', ')}`);
  }
  if (it['fpmode'] !== undefined) issues.oneOf(`${path}.fpmode`, it['fpmode'], FP_MODES);
}

function parseArray(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function nonEmpty(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== '';
}

/** JSON numbers are accepted when their decimal form is plain (no exponent). */
function numberToString(value: unknown): unknown {
  return typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
}

/**
 * Server-side checks of a tokenpay.cfm request, written independently of the client library so
 * that the two can disagree. Each failure is the spec's firstcode (3 missing, 4 format, 5 value)
 * with the secondcode of the parameter (spec table "Второй код"). Where the table has no
 * secondcode for a TokenPay field the sandbox's choice is noted (and listed in the README).
 */

export interface Refusal {
  readonly firstcode: number;
  readonly secondcode: number;
  /** Which rule fired, for test diagnostics only (not sent on the wire). */
  readonly rule: string;
}

/** Form fields by lower-cased name (the server accepts any casing, assist-notes.md). */
export type Form = ReadonlyMap<string, string>;

const AMOUNT = /^\d+(?:[.,]\d+)?$/;
const MISSING = 3;
const FORMAT = 4;
const VALUE = 5;

interface TextField {
  readonly name: string;
  readonly secondcode: number;
  readonly required?: boolean;
  readonly max: number;
  readonly pattern?: RegExp;
}

/** Text rows of the request table, in table order. */
const TEXT_FIELDS: readonly TextField[] = [
  { name: 'merchant_id', secondcode: 100, required: true, max: 20, pattern: /^\d+$/ },
  { name: 'login', secondcode: 101, required: true, max: 20, pattern: /^[A-Za-z0-9_]{8,}$/ },
  { name: 'password', secondcode: 102, required: true, max: 20, pattern: /^[A-Za-z0-9]{8,}$/ },
  { name: 'ordernumber', secondcode: 107, required: true, max: 128 },
  { name: 'ordercurrency', secondcode: 105, max: 3, pattern: /^[A-Z]{3}$/ },
  { name: 'ordercomment', secondcode: 110, max: 256 },
  { name: 'clientip', secondcode: 116, max: 15, pattern: /^\d{1,3}(?:\.\d{1,3}){3}$/ },
  { name: 'lastname', secondcode: 117, required: true, max: 70 },
  { name: 'firstname', secondcode: 118, required: true, max: 70 },
  { name: 'middlename', secondcode: 119, max: 70 },
  { name: 'email', secondcode: 120, required: true, max: 128, pattern: /^[^\s@]+@[^\s@]+$/ },
  { name: 'address', secondcode: 121, max: 256 },
  { name: 'homephone', secondcode: 122, max: 64 },
  { name: 'workphone', secondcode: 122, max: 20 },
  { name: 'mobilephone', secondcode: 122, max: 20 },
  { name: 'fax', secondcode: 122, max: 20 },
  { name: 'country', secondcode: 128, max: 3 },
  { name: 'state', secondcode: 124, max: 3 },
  { name: 'city', secondcode: 123, max: 70 },
  { name: 'zip', secondcode: 125, max: 25 },
  { name: 'receiptline', secondcode: 179, max: 128 },
];

/** Closed-value rows: name, secondcode, allowed values. */
const ENUM_FIELDS: ReadonlyArray<readonly [string, number, readonly string[]]> = [
  ['format', 103, ['5']], // the sandbox speaks JSON only (Format 4 SOAP is not simulated)
  ['delay', 109, ['0', '1']],
  ['language', 127, ['RU', 'EN']],
  ['tokentype', 111, ['1', '2', '3']], // sandbox choice: MEANTYPE (111) for TokenType
  ['isconvert', 105, ['0', '1', '2']],
  ['recurringindicator', 320, ['0', '1']],
  ['generatereceipt', 179, ['0', '1']],
  ['tax', 179, ['novat', 'vat0', 'vat10', 'vat18', 'vat20', 'vat110', 'vat118', 'vat120']],
  ['fpmode', 179, ['1', '2', '3', '4', '5', '6', '7']],
  ['taxationsystem', 179, ['0', '1', '2', '3', '4', '5']],
];

const RECURRING_FIELDS = ['recurringminamount', 'recurringmaxamount', 'recurringperiod', 'recurringmaxdate'];

/** The first broken rule of the request, or undefined. */
export function checkTokenPayForm(form: Form): Refusal | undefined {
  for (const f of TEXT_FIELDS) {
    const value = form.get(f.name);
    if (value === undefined || value === '') {
      if (f.required) return refuse(MISSING, f.secondcode, `${f.name} missing`);
      continue;
    }
    if ([...value].length > f.max || (f.pattern && !f.pattern.test(value))) {
      return refuse(FORMAT, f.secondcode, `${f.name} format`);
    }
  }
  const amount = form.get('orderamount');
  if (!amount) return refuse(MISSING, 108, 'orderamount missing');
  const amountRefusal = checkAmount(amount, 108, 'orderamount');
  if (amountRefusal) return amountRefusal;
  for (const [name, secondcode, allowed] of ENUM_FIELDS) {
    const value = form.get(name);
    if (value !== undefined && value !== '' && !allowed.includes(name === 'tax' ? value.toLowerCase() : value)) {
      return refuse(VALUE, secondcode, `${name} value`);
    }
  }
  return checkPaymentToken(form) ?? checkRecurring(form) ?? checkCheque(form.get('chequeitems'));
}

function checkAmount(value: string, secondcode: number, name: string): Refusal | undefined {
  if (!AMOUNT.test(value) || value.replace(/[.,]/, '').length > 15) return refuse(FORMAT, secondcode, `${name} format`);
  if (!/[1-9]/.test(value)) return refuse(VALUE, secondcode, `${name} zero`);
  return undefined;
}

/** Sandbox choice: secondcode 218 ("Объект Платежное средство") for PaymentToken. */
function checkPaymentToken(form: Form): Refusal | undefined {
  const token = form.get('paymenttoken');
  if (!token) return refuse(MISSING, 218, 'paymenttoken missing');
  const parsed = parseJson(token);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return refuse(FORMAT, 218, 'paymenttoken not a JSON object');
  }
  return undefined;
}

/** "Обязателен при RecurringIndicator = 1" (secondcode 320, Рекуррентный платеж). */
function checkRecurring(form: Form): Refusal | undefined {
  if (form.get('recurringindicator') !== '1') return undefined;
  for (const name of RECURRING_FIELDS) {
    if (!form.get(name)) return refuse(MISSING, 320, `${name} missing`);
  }
  for (const name of ['recurringminamount', 'recurringmaxamount']) {
    const refusal = checkAmount(form.get(name) ?? '', 320, name);
    if (refusal) return refusal;
  }
  if (!/^\d{1,10}$/.test(form.get('recurringperiod') ?? '')) return refuse(FORMAT, 320, 'recurringperiod format');
  if (!/^\d{2}\.\d{2}\.\d{4}$/.test(form.get('recurringmaxdate') ?? '')) return refuse(FORMAT, 320, 'recurringmaxdate format');
  return undefined;
}

/** ChequeItems: a JSON array; each position needs product and/or name, price, quantity, amount. */
function checkCheque(text: string | undefined): Refusal | undefined {
  if (text === undefined || text === '') return undefined;
  const items = parseJson(text);
  if (!Array.isArray(items) || items.length === 0) return refuse(FORMAT, 179, 'chequeitems not a JSON array');
  for (const item of items) {
    if (typeof item !== 'object' || item === null) return refuse(FORMAT, 179, 'chequeitems position not an object');
    const it = item as Record<string, unknown>;
    const named = Boolean(it['product']) || Boolean(it['name']);
    if (!named || it['price'] === undefined || it['quantity'] === undefined || it['amount'] === undefined) {
      return refuse(MISSING, 179, 'chequeitems position lacks a required key');
    }
  }
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function refuse(firstcode: number, secondcode: number, rule: string): Refusal {
  return { firstcode, secondcode, rule };
}

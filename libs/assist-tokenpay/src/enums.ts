/**
 * The spec's response tables as typed enums: "Статусы заказа orderstate", "Типы операций
 * operationtype", "Состояния операции operationstate", "Типы платежных средств meantypename",
 * plus the request-side dictionaries (tax rate, settlement method, taxation system).
 */

/** Table "Статусы заказа orderstate" (wire strings, exact case). */
export const ORDER_STATES = [
  'In Process',
  'Delayed',
  'Approved',
  'PartialApproved',
  'PartialDelayed',
  'Canceled',
  'PartialCanceled',
  'Declined',
  'Timeout',
] as const;
export type OrderState = (typeof ORDER_STATES)[number];

export function isOrderState(value: string): value is OrderState {
  return (ORDER_STATES as readonly string[]).includes(value);
}

/** Table "Типы операций operationtype": code → name. */
export const OPERATION_TYPES = { 100: 'Approve', 200: 'Charge', 300: 'PaymentCancel' } as const;
export type OperationType = (typeof OPERATION_TYPES)[keyof typeof OPERATION_TYPES];

export function operationTypeOf(code: string): OperationType | undefined {
  return (OPERATION_TYPES as Record<string, OperationType>)[code];
}

/** Table "Состояния операции operationstate". */
export const OPERATION_STATES = ['New', 'In Process', 'Success', 'Failure', 'TimeOut'] as const;
export type OperationState = (typeof OPERATION_STATES)[number];

export function operationStateOf(value: string): OperationState | undefined {
  return (OPERATION_STATES as readonly string[]).includes(value) ? (value as OperationState) : undefined;
}

/** Table "Типы платежных средств meantypename": meantype_id → name. */
export const MEAN_TYPES = {
  1: 'VISA',
  2: 'MC',
  3: 'DCL',
  4: 'JCB',
  5: 'AMEX',
  6: 'MIR',
  10: 'Discover',
  12: 'Points',
  30: 'WebMoney',
  32: 'YandexMoney',
  36: 'QIWI',
  37: 'BankClient',
  39: 'QIWIBeeline',
  40: 'QIWIMts',
  41: 'QIWIMegafon',
  42: 'QIWITele2',
  60: 'ApplePay',
  61: 'SamsungPay',
  62: 'GooglePay',
} as const;
export type MeanType = (typeof MEAN_TYPES)[keyof typeof MEAN_TYPES];

export function meanTypeOf(id: number): MeanType | undefined {
  return (MEAN_TYPES as Record<number, MeanType>)[id];
}

/**
 * TokenType: 1 Apple Pay, 2 Google Pay, 3 Samsung Pay (spec table). 5 (Assist card-on-file token)
 * and 6 (Mir Pay) are extensions seen in Assist's SDKs (assist-notes.md), refused unless the
 * client is created with `extendedTokenTypes: true`.
 */
export const TOKEN_TYPES = { 1: 'ApplePay', 2: 'GooglePay', 3: 'SamsungPay', 5: 'AssistCardOnFile', 6: 'MirPay' } as const;
export type TokenType = keyof typeof TOKEN_TYPES;
export const SPEC_TOKEN_TYPES: readonly TokenType[] = [1, 2, 3];
export const EXTENDED_TOKEN_TYPES: readonly TokenType[] = [5, 6];

/**
 * Tax rate identifiers. The request table names novat, vat0, vat10, vat18, vat110, vat118; the
 * dictionary table "Значения идентификатора ставки налога" names novat, vat0, vat10, Vat20, vat110,
 * vat120. We accept the union, case-insensitively, and send the lower-case form.
 */
export const TAX_RATES = ['novat', 'vat0', 'vat10', 'vat18', 'vat20', 'vat110', 'vat118', 'vat120'] as const;
export type TaxRate = (typeof TAX_RATES)[number];

/** Table "Значения способа расчета" (FPMode): 1..7. */
export const FP_MODES = [1, 2, 3, 4, 5, 6, 7] as const;
export type FpMode = (typeof FP_MODES)[number];

/** Table "Значения типов системы налогообложения" (TaxationSystem): 0..5. */
export const TAXATION_SYSTEMS = [0, 1, 2, 3, 4, 5] as const;
export type TaxationSystem = (typeof TAXATION_SYSTEMS)[number];

/**
 * After-payment operations of an order (assist-notes.md "Other web services"): `/charge/charge.cfm`
 * confirms (captures) a two-stage payment, `/cancel/wscancel.cfm` cancels — releases an authorisation or
 * cancels / refunds a charged order — each for the whole amount or a part (`Amount`).
 *
 * One order carries several operations (TokenPay document: "В рамках одного заказа может быть проведено
 * несколько операций (оплаты, подтверждения оплаты, отмены)"): operationtype 100 Approve, 200 Charge,
 * 300 PaymentCancel. The refusal tables name the cancel flavours with second codes 300 (authorisation cancel)
 * and 301 (refund). Which operation of the list is ours is decided by {@link matchOperation}: type, amount,
 * currency, not before the request was sent, and not one we already own (its billnumber).
 */
import { sameAmount } from './amount';
import type { OperationType } from './enums';
import type { AssistOperation, AssistOrder } from './response';

export const CHARGE_PATH = '/charge/charge.cfm';
export const CANCEL_PATH = '/cancel/wscancel.cfm';

/** What the merchant asks Assist to do to an order. */
export type AfterPaymentKind = 'charge' | 'cancel';

/** The operationtype Assist records for each request. */
export const OPERATION_TYPE_OF_KIND: Readonly<Record<AfterPaymentKind, OperationType>> = { charge: 'Charge', cancel: 'PaymentCancel' };

export interface AfterPaymentRequest {
  /** The order's Assist billnumber (from the payment's answer). */
  readonly billNumber: string;
  /** Our OrderNumber: the answer must describe this order. */
  readonly orderNumber: string;
  /** The original order amount as Assist wrote it (part of the answer's checkvalue), e.g. `100.00`. */
  readonly orderAmount: string;
  /** The amount of this operation (use `toOrderAmount` from minor units); sent as `Amount`. */
  readonly amount: string;
  readonly currency: string;
  /** When we sent it (the operation must not be older). Default: now. */
  readonly sentAt?: Date;
  /** Billnumbers of operations already accounted for (never matched again). */
  readonly knownBillNumbers?: readonly string[];
  /**
   * Our operation's own billnumber, once an answer named it (e.g. "In Process"): resolving then looks for exactly
   * that operation, which `knownBillNumbers` must not exclude.
   */
  readonly operationBillNumber?: string;
}

export interface OperationCriteria {
  readonly type: OperationType;
  readonly amount: string;
  readonly currency: string;
  /** Operations dated before this (minus {@link CLOCK_SKEW_MS}) are not ours. */
  readonly notBefore: Date;
  readonly knownBillNumbers?: readonly string[];
  /** Assist already named our operation: only the one with this billnumber (and our type, amount, currency) is ours. */
  readonly operationBillNumber?: string;
}

/** Tolerance between our clock and Assist's `operationdate` (whole seconds, GMT). */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** `DD.MM.YYYY HH:mm:ss` (GMT) → Date; undefined when unreadable. */
export function parseOperationDate(text: string): Date | undefined {
  const m = /^(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const [, dd, mm, yyyy, hh, mi, ss] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(yyyy, mm - 1, dd, hh, mi, ss);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/**
 * The operation of `order` that is the one we asked for: same type, amount and currency, dated at or after
 * `notBefore` (minus the clock skew), not already known. The earliest such one wins (a later identical one
 * belongs to a later request). An operation without a readable date is never matched. With
 * `operationBillNumber`, only the operation Assist already named as ours is.
 */
export function matchOperation(order: AssistOrder, c: OperationCriteria): AssistOperation | undefined {
  const same = (op: AssistOperation) => op.type === c.type && sameAmount(op.amount, c.amount) && (op.currency === '' || op.currency === c.currency);
  if (c.operationBillNumber !== undefined) return order.operations.find((op) => op.billNumber === c.operationBillNumber && same(op));
  const known = new Set(c.knownBillNumbers ?? []);
  const from = c.notBefore.getTime() - CLOCK_SKEW_MS;
  const candidates = order.operations
    .map((op) => ({ op, at: parseOperationDate(op.operationDate) }))
    .filter(({ op, at }) => same(op) && !known.has(op.billNumber) && at !== undefined && at.getTime() >= from)
    .sort((a, b) => a.at!.getTime() - b.at!.getTime());
  return candidates[0]?.op;
}

/** Our reading of one matched operation. */
export type OperationResult = 'succeeded' | 'failed' | 'in_process';

export function operationResultOf(op: AssistOperation): OperationResult {
  if (op.state === 'Success') return 'succeeded';
  if (op.state === 'Failure' || op.state === 'TimeOut') return 'failed';
  // assist-notes.md: `AS000` approved, whatever the state column says.
  return op.responseCode === 'AS000' ? 'succeeded' : 'in_process';
}

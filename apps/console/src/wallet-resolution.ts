/**
 * A person's verdict on a wallet payment or operation whose outcome is `unknown` (docs/wallet-payments.md §5,
 * "Human resolution"): what the console offers, what it asks a person to confirm, how it names who decided.
 * Pure, so the unit spec covers it; the page (pages/wallet.ts) renders it.
 */
import type { Schemas, WalletOperation, WalletPayment, WalletResolution } from './api';
import { money } from './state';

export type PaymentVerdict = Schemas['ResolveWalletPaymentRequest']['state'];
export type OperationVerdict = Schemas['ResolveWalletOperationRequest']['state'];

/** What is being resolved: the payment itself, or one of its operations. */
export type ResolutionTarget = { kind: 'payment' } | { kind: 'operation'; operationId: string };

export interface VerdictOption<V extends string> {
  value: V;
  label: string;
}

/**
 * The verdicts an `unknown` payment can be given. A paid payment is `approved` when one-stage and `authorized`
 * when two-stage; the other one is a 422 (WALLET_RESOLUTION_STATE_MISMATCH), so it is not offered.
 */
export function paymentVerdicts(twoStage: boolean): VerdictOption<PaymentVerdict>[] {
  return [
    twoStage
      ? { value: 'authorized', label: 'authorized — Assist holds the authorisation (Delayed)' }
      : { value: 'approved', label: 'approved — paid (Approved)' },
    { value: 'declined', label: 'declined — declined or expired at Assist' },
    { value: 'rejected', label: 'rejected — Assist has no order of this payment' },
  ];
}

export const OPERATION_VERDICTS: readonly VerdictOption<OperationVerdict>[] = [
  { value: 'succeeded', label: 'succeeded — its money moved' },
  { value: 'failed', label: 'failed — no money moved' },
];

/** The billnumber each target takes: the order's digits, or an operation's `<order billnumber>.<n>` (the API's rules). */
export const BILL_NUMBER_PATTERN: Readonly<Record<ResolutionTarget['kind'], string>> = {
  payment: '[0-9]{1,32}',
  operation: '[0-9]{1,32}\\.[0-9]{1,6}',
};

export type VerdictBody = Schemas['ResolveWalletPaymentRequest'] | Schemas['ResolveWalletOperationRequest'];

/**
 * The request body from the form's fields (trimmed; an empty billnumber left out), or the reason it cannot be
 * sent. The API checks the same and more (400 names the field); this only spares a person a round trip.
 */
export function verdictBody(target: ResolutionTarget, fields: { state: string; note: string; billNumber: string }): VerdictBody | { problem: string } {
  const note = fields.note.trim();
  const billNumber = fields.billNumber.trim();
  if (note.length < 3) return { problem: 'Write what was checked (at least 3 characters)' };
  if (billNumber && !new RegExp(`^${BILL_NUMBER_PATTERN[target.kind]}$`).test(billNumber)) {
    return {
      problem:
        target.kind === 'payment'
          ? "The billnumber is the digits of the order in Assist's back office"
          : "The billnumber of an operation is the order's, a dot and the operation's number (e.g. 5899110200000001.2)",
    };
  }
  if (target.kind === 'payment' && fields.state === 'rejected' && billNumber) {
    return { problem: 'A rejected payment has no order at Assist: leave the billnumber empty' };
  }
  return { state: fields.state, note, ...(billNumber ? { billNumber } : {}) } as VerdictBody;
}

/** What a verdict does, said before a person confirms it (it is final: the resolution job never overwrites it). */
export function confirmationText(payment: WalletPayment, target: ResolutionTarget, body: VerdictBody): string {
  const whole = money(payment.amount, payment.currency);
  if (target.kind === 'operation') {
    const op = payment.operations.find((o) => o.id === target.operationId);
    const what = op ? `the ${op.kind.replace(/_/g, ' ')} of ${money(op.amount, op.currency)}` : 'the operation';
    return body.state === 'succeeded'
      ? `Record ${what} on order ${payment.orderNumber} as succeeded: its money moved, and the payment's amounts and state move with it.`
      : `Record ${what} on order ${payment.orderNumber} as failed: no money moved, and a new capture / cancel can be sent.`;
  }
  const noBill = body.billNumber ? '' : ' Without a billnumber it cannot be captured, cancelled or refunded through payorch.';
  switch (body.state as PaymentVerdict) {
    case 'approved':
      return `Record order ${payment.orderNumber} as approved: ${whole} taken as paid (authorised and captured).${noBill}`;
    case 'authorized':
      return `Record order ${payment.orderNumber} as authorized: ${whole} held; capture or release it afterwards.${noBill}`;
    case 'declined':
      return `Record order ${payment.orderNumber} as declined: no money moved.`;
    case 'rejected':
      return `Record order ${payment.orderNumber} as rejected: Assist holds no order of it, no money moved.`;
  }
}

/** Who gave a verdict, as the audit log names them: an API key (by its id; "this key" when it is the signed-in one), an operator. */
export function actorLabel(actor: WalletResolution['actor'], ownKeyId?: string): string {
  switch (actor.type) {
    case 'api_key':
      return actor.id ? `API key ${actor.id.slice(0, 8)}${actor.id === ownKeyId ? ' (this key)' : ''}` : 'an API key';
    case 'admin':
      return `operator ${actor.id ?? ''}`.trim();
    default:
      return actor.id ? `${actor.type} ${actor.id}` : actor.type;
  }
}

/** The operations whose outcome a person may decide. */
export const openOperations = (payment: WalletPayment): WalletOperation[] => payment.operations.filter((o) => o.state === 'unknown');

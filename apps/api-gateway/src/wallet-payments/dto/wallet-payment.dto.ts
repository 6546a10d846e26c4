import { z } from 'zod';

import { scrubPans } from '@payorch/logging';
import { type AssistOrderSummary, type PaymentErrorBody, WALLET_ERROR_CODES, WALLET_PERSON_ERROR_CODES, type WalletResolution } from '@payorch/wallet-payments';

import { paginationQuery } from '../../common/pagination';
import { wireEnum } from '../../common/wire-enum';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

/**
 * `POST /v1/wallet-payments`. zod checks shapes and types only; every rule of Assist's parameter
 * table (lengths, character sets, token keys, cheque items, recurring fields) is checked by
 * `@payorch/assist-tokenpay` so the 400 carries the spec's rule code, naming the body field.
 */
const text = z.string();

export const TOKEN_TYPES = ['APPLE_PAY', 'GOOGLE_PAY', 'SAMSUNG_PAY'] as const;
export const PAYMENT_STATES = [
  'PENDING',
  'PROCESSING',
  'REQUIRES_ACTION',
  'APPROVED',
  'AUTHORIZED',
  'PARTIALLY_CAPTURED',
  'PARTIALLY_REFUNDED',
  'REFUNDED',
  'DECLINED',
  'CANCELED',
  'REJECTED',
  'UNKNOWN',
] as const;
export const OPERATION_KINDS = ['CAPTURE', 'CANCEL_AUTHORIZATION', 'REFUND'] as const;
export const OPERATION_STATES = ['PENDING', 'SUCCEEDED', 'FAILED', 'UNKNOWN'] as const;
/** API casing (docs/api-changes.md): `apple_pay`, `authorized`, `cancel_authorization`, `succeeded`, … */
export const walletTokenType = wireEnum('WalletTokenType', TOKEN_TYPES);
export const walletPaymentState = wireEnum('WalletPaymentState', PAYMENT_STATES);
export const walletOperationKind = wireEnum('WalletOperationKind', OPERATION_KINDS);
export const walletOperationState = wireEnum('WalletOperationState', OPERATION_STATES);
const walletLanguage = wireEnum('WalletLanguage', ['RU', 'EN']);

const minorUnits = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

const customerSchema = z.strictObject({
  address: text.optional(),
  city: text.optional(),
  country: text.optional(),
  email: text,
  fax: text.optional(),
  firstname: text,
  homePhone: text.optional(),
  lastname: text,
  middlename: text.optional(),
  mobilePhone: text.optional(),
  state: text.optional(),
  workPhone: text.optional(),
  zip: text.optional(),
});

const chequeItemSchema = z.strictObject({
  amount: minorUnits.describe('Position total, minor units of `currency`.'),
  fpMode: z.number().int().optional(),
  name: text.optional(),
  price: minorUnits.describe('Unit price, minor units of `currency`.'),
  product: text.optional(),
  quantity: z.union([z.number().positive(), text]).describe('Positive decimal, e.g. 2 or "1.5".'),
  tax: text.optional(),
});

export const createWalletPaymentSchema = z.strictObject({
  amount: minorUnits.describe('Integer minor units of `currency` (10145 = 101.45 RUB), converted exactly.'),
  chequeItems: z.array(chequeItemSchema).min(1).max(100).optional(),
  clientIp: text.optional().describe("Payer's IPv4 address."),
  currency: z.string().regex(/^[A-Z]{3}$/, { message: 'must be an ISO 4217 code such as RUB' }),
  customer: customerSchema,
  fpMode: z.number().int().optional(),
  generateReceipt: z.boolean().optional(),
  isConvert: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
  language: walletLanguage.input.optional(),
  merchantId: canonicalUuid({ message: 'must be the id of your Assist merchant settings' }),
  orderComment: text.optional(),
  orderNumber: text
    .min(1)
    .max(128)
    .optional()
    .describe("Assist OrderNumber, unique per merchant and never reused (Assist's idempotency key); default: the payment id."),
  receiptLine: text.optional(),
  recurring: z
    .strictObject({
      maxAmount: minorUnits,
      maxDate: text.describe('DD.MM.YYYY'),
      minAmount: minorUnits,
      periodDays: z.number().int().positive(),
    })
    .optional()
    .describe('Sends RecurringIndicator=1 with the four Recurring* fields.'),
  tax: text.optional(),
  taxationSystem: z.number().int().optional(),
  token: z
    .union([z.record(z.string(), z.unknown()), text.min(1)])
    .describe('The wallet token JSON (object, or its JSON text): Apple Pay `paymentData`, Google Pay `tokenizationData.token`, Samsung Pay token.'),
  tokenType: walletTokenType.input,
  twoStage: z.boolean().optional().describe('Delay=1: authorize only (state `authorized`); charge later at Assist.'),
});
export type CreateWalletPaymentDto = z.infer<typeof createWalletPaymentSchema>;

/** `POST /v1/wallet-payments/{id}/capture` and `…/cancel`: no amount = everything capturable / cancellable. */
export const walletOperationSchema = z.preprocess(
  (body) => body ?? {},
  z.strictObject({
    amount: minorUnits.optional().describe('Integer minor units; default: the whole authorised remainder (capture) or everything cancellable (cancel).'),
  }),
);
export type WalletOperationDto = z.infer<typeof walletOperationSchema>;

/** A person's verdict, after reading the order in Assist's back office (docs/wallet-payments.md, "Human resolution"). */
const humanNote = z
  .string()
  .trim()
  .min(3)
  .max(1000)
  .describe("Why: what was checked in Assist's back office. Audited, and sent with the event. A card number in it is stored masked.")
  // Free text a person typed: a card number copied from the back office is masked before it is stored anywhere.
  .transform(scrubPans);

/** `POST /v1/wallet-payments/{id}/resolve`: only an `unknown` payment. */
export const resolveWalletPaymentSchema = z
  .strictObject({
    billNumber: z
      .string()
      .trim()
      .regex(/^[0-9]{1,32}$/, 'must be the digits of an Assist order billnumber')
      .optional()
      .describe(
        "The order's billnumber in Assist's back office (not with `rejected`: no order is the payment's). It becomes the payment's order: later captures and cancels use it; without one a paid payment cannot be captured or cancelled through payorch.",
      ),
    note: humanNote,
    state: z
      .enum(['approved', 'authorized', 'declined', 'rejected'])
      .describe(
        'The true outcome: `approved` (one-stage payment paid), `authorized` (two-stage payment authorised), `declined` (declined or expired at Assist), `rejected` (never reached Assist or refused: no order).',
      ),
  })
  .superRefine((dto, ctx) => {
    if (dto.billNumber !== undefined && dto.state === 'rejected') {
      ctx.addIssue({ code: 'custom', path: ['billNumber'], message: 'is not given for state rejected (Assist holds no order of this payment)' });
    }
  });
export type ResolveWalletPaymentDto = z.infer<typeof resolveWalletPaymentSchema>;

/** `POST /v1/wallet-payments/{id}/operations/{operationId}/resolve`: only an `unknown` capture / cancel / refund. */
export const resolveWalletOperationSchema = z.strictObject({
  billNumber: z
    .string()
    .trim()
    .regex(/^[0-9]{1,32}\.[0-9]{1,6}$/, "must be an Assist operation billnumber: the order's, a dot and the operation's number")
    .optional()
    .describe("The operation's billnumber in Assist's back office (`<order billnumber>.<n>`)."),
  note: humanNote,
  state: z.enum(['succeeded', 'failed']).describe('The true outcome: `succeeded` (its money moved; the payment moves with it), `failed` (no money moved).'),
});
export type ResolveWalletOperationDto = z.infer<typeof resolveWalletOperationSchema>;

export const listWalletPaymentsQuery = paginationQuery.extend({
  errorCode: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be an error code such as ORDER_NOT_PROVEN')
    .optional()
    .describe(
      "Payments whose `error.code`, or one of whose operations' `error.code`, is this (a `WalletErrorCode`): e.g. `ORDER_NOT_PROVEN` (with `state=unknown`: payments left to a person), `OPERATION_NOT_PROVEN` (a capture / cancel / refund left to a person), `OPERATION_NOT_FOUND` (one that never reached Assist).",
    ),
  merchantId: canonicalUuid().optional(),
  // Payments with an operation in this state, e.g. `unknown` (a capture / cancel / refund whose outcome is open); the
  // list's description says so (a description here would wrap the named enum in an allOf).
  operationState: walletOperationState.input.optional(),
  orderNumber: z.string().max(128).optional(),
  state: walletPaymentState.input.optional(),
  tokenType: walletTokenType.input.optional(),
});
export type ListWalletPaymentsQuery = z.infer<typeof listWalletPaymentsQuery>;

/** Every code payorch stores in a wallet payment's or operation's `error` (libs/wallet-payments error-codes.ts). */
const walletErrorCode = z.enum(WALLET_ERROR_CODES).meta({
  id: 'WalletErrorCode',
  /** The codes that leave an `unknown` payment or operation to a person (`POST …/resolve`). */
  'x-left-to-a-person': [...WALLET_PERSON_ERROR_CODES],
  description:
    "`error.code` of a wallet payment or operation: payorch's conclusions (`source: payorch`: `ORDER_NOT_FOUND`, `ORDER_NOT_PROVEN`, `ORDER_NUMBER_TAKEN`, `OPERATION_NOT_FOUND`, `OPERATION_NOT_PROVEN`, `RESOLVED_MANUALLY`, `VALIDATION_FAILED`), Assist's first codes (`source: assist`), and why an answer was lost or not trusted (`transport`, `protocol`, `integrity`). New codes may be added (docs/api-changes.md): treat one you do not know by its `source` and `message`. What each means and what to do: docs/wallet-payments.md.",
});

const errorSchema = z
  .object({
    code: walletErrorCode,
    field: z.string().nullable(),
    firstCode: z.number().nullable(),
    message: z.string(),
    secondCode: z.number().nullable(),
    source: z.enum(['assist', 'transport', 'protocol', 'integrity', 'payorch']),
  })
  .nullable();

/** A person's verdict (`POST …/resolve`), as the row keeps it (libs/wallet-payments `WalletResolution`). */
const resolutionSchema = (description: string) =>
  z
    .object({
      actor: z
        .object({
          id: z.string().nullable().describe('API key id for `api_key` actors; `user@host` for `admin` (operator CLI).'),
          type: z.string().describe('`api_key`, `admin` or `system`.'),
        })
        .describe('Who resolved it (as in the audit log).'),
      at: z.string().describe('When the verdict was written (ISO 8601), the same instant as `completedAt`.'),
      billNumber: z.string().nullable().describe("The billnumber they gave from Assist's back office, or null."),
      by: z.enum(['human']).describe("Who decided: `human`, a person after reading Assist's back office."),
      note: z.string().describe('What they checked, as written (card numbers masked 6/4).'),
    })
    .nullable()
    .describe(description);

const operationResponseSchema = z.object({
  amount: z.number().int(),
  assist: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('The matched Assist operation: billnumber, type (Charge / PaymentCancel), state, response code.'),
  assistBillNumber: z.string().nullable(),
  completedAt: z.string().nullable(),
  createdAt: z.string(),
  currency: z.string(),
  error: errorSchema,
  id: canonicalUuid(),
  kind: walletOperationKind.schema,
  resolution: resolutionSchema(
    'A person\'s verdict on this operation (`POST …/operations/{operationId}/resolve`, docs/wallet-payments.md §5 "Human resolution"); null when Assist\'s answer or the resolution job settled it.',
  ),
  resolutionAttempts: z.number().int(),
  sentAt: z.string().nullable(),
  state: walletOperationState.schema,
});
export type WalletOperationResponse = Omit<z.infer<typeof operationResponseSchema>, 'error' | 'resolution'> & {
  error: PaymentErrorBody | null;
  resolution: WalletResolution | null;
};

export const walletPaymentResponseSchema = z.object({
  amount: z.number().int(),
  amounts: z
    .object({ authorized: z.number().int(), captured: z.number().int(), refunded: z.number().int(), released: z.number().int() })
    .describe('Minor units: held by the authorisation, captured (charged), released (authorisation cancelled), refunded.'),
  assist: z
    .object({
      billNumber: z.string(),
      duplicate: z.boolean(),
      orderState: z.string(),
      operations: z.array(z.record(z.string(), z.unknown())),
      source: z.enum(['tokenpay', 'orderstate', 'manual']),
    })
    .loose()
    .nullable()
    .describe(
      "Assist's verified order: exact orderstate, bill number, operations with masked PANs and response codes. `source: manual`: no answer named it, a person resolved the payment by hand with this billnumber from Assist's back office.",
    ),
  completedAt: z.string().nullable(),
  continueUrl: z.string().nullable(),
  createdAt: z.string(),
  currency: z.string(),
  customer: z.record(z.string(), z.unknown()).nullable(),
  error: errorSchema,
  id: canonicalUuid(),
  maskedPan: z.string().nullable(),
  merchantId: canonicalUuid(),
  orderNumber: z.string(),
  resolution: resolutionSchema(
    'A person\'s verdict on the payment itself (`POST …/resolve`, docs/wallet-payments.md §5 "Human resolution"), kept when later operations move it; null when Assist\'s answer or the resolution job decided. A verdict on an operation is on that operation (`operations[].resolution`).',
  ),
  resolutionAttempts: z.number().int(),
  state: walletPaymentState.schema,
  testMode: z.boolean().nullable(),
  operations: z.array(operationResponseSchema).describe('Captures, cancels and refunds, oldest first.'),
  tokenType: walletTokenType.schema,
  twoStage: z.boolean(),
  updatedAt: z.string(),
});
export type WalletPaymentResponse = Omit<z.infer<typeof walletPaymentResponseSchema>, 'assist' | 'error' | 'operations' | 'resolution'> & {
  assist: AssistOrderSummary | null;
  error: PaymentErrorBody | null;
  operations: WalletOperationResponse[];
  resolution: WalletResolution | null;
};

export interface WalletOperationRow {
  amount: bigint;
  assistBillNumber: string | null;
  assistOperation: unknown;
  completedAt: Date | null;
  createdAt: Date;
  currency: string;
  error: unknown;
  id: string;
  kind: (typeof OPERATION_KINDS)[number];
  resolution: unknown;
  resolutionAttempts: number;
  sentAt: Date | null;
  state: (typeof OPERATION_STATES)[number];
}

export function toWalletOperationResponse(row: WalletOperationRow): WalletOperationResponse {
  return {
    amount: Number(row.amount),
    assist: (row.assistOperation as Record<string, unknown> | null) ?? null,
    assistBillNumber: row.assistBillNumber,
    completedAt: row.completedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    currency: row.currency,
    error: (row.error as PaymentErrorBody | null) ?? null,
    id: row.id,
    kind: walletOperationKind.toApi(row.kind),
    resolution: (row.resolution as WalletResolution | null) ?? null,
    resolutionAttempts: row.resolutionAttempts,
    sentAt: row.sentAt?.toISOString() ?? null,
    state: walletOperationState.toApi(row.state),
  };
}

export interface WalletPaymentRow {
  amount: bigint;
  assistOrder: unknown;
  authorizedAmount: bigint;
  capturedAmount: bigint;
  operations?: WalletOperationRow[];
  refundedAmount: bigint;
  releasedAmount: bigint;
  twoStage: boolean;
  completedAt: Date | null;
  continueUrl: string | null;
  createdAt: Date;
  currency: string;
  customer: unknown;
  error: unknown;
  id: string;
  maskedPan: string | null;
  merchantId: string;
  orderNumber: string;
  resolution: unknown;
  resolutionAttempts: number;
  state: (typeof PAYMENT_STATES)[number];
  testMode: boolean | null;
  tokenType: (typeof TOKEN_TYPES)[number];
  updatedAt: Date;
}

export function toWalletPaymentResponse(row: WalletPaymentRow): WalletPaymentResponse {
  return {
    amount: Number(row.amount),
    amounts: {
      authorized: Number(row.authorizedAmount),
      captured: Number(row.capturedAmount),
      refunded: Number(row.refundedAmount),
      released: Number(row.releasedAmount),
    },
    assist: (row.assistOrder as AssistOrderSummary | null) ?? null,
    completedAt: row.completedAt?.toISOString() ?? null,
    continueUrl: row.continueUrl,
    createdAt: row.createdAt.toISOString(),
    currency: row.currency,
    customer: (row.customer as Record<string, unknown> | null) ?? null,
    error: (row.error as PaymentErrorBody | null) ?? null,
    id: row.id,
    maskedPan: row.maskedPan,
    merchantId: row.merchantId,
    orderNumber: row.orderNumber,
    resolution: (row.resolution as WalletResolution | null) ?? null,
    resolutionAttempts: row.resolutionAttempts,
    operations: (row.operations ?? []).map(toWalletOperationResponse),
    state: walletPaymentState.toApi(row.state),
    testMode: row.testMode,
    tokenType: walletTokenType.toApi(row.tokenType),
    twoStage: row.twoStage,
    updatedAt: row.updatedAt.toISOString(),
  };
}

nameSchemas({
  CreateWalletPaymentRequest: createWalletPaymentSchema,
  ResolveWalletOperationRequest: resolveWalletOperationSchema,
  ResolveWalletPaymentRequest: resolveWalletPaymentSchema,
  WalletAmountRequest: walletOperationSchema,
  WalletOperation: operationResponseSchema,
  WalletPayment: walletPaymentResponseSchema,
});

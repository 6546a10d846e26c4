import { z } from 'zod';

import { CAPABILITIES, OPERATION_TYPES, type OperationType, REASON_CODES, type ReasonCode } from '@payorch/drivers';
import { scrubPans } from '@payorch/logging';
import type { OperationView } from '@payorch/operations';

import { paginationQuery } from '../../common/pagination';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid, isoInstant } from '../../common/zod';

/** Largest amount every terminal protocol carries: 12 digits of minor units (Joinproto DF05, JPAY, SSI-ECR n(12)). */
export const MAX_AMOUNT = 999_999_999_999;

const minorUnits = z
  .number()
  .int({ message: 'must be an integer number of minor units' })
  .positive({ message: 'must be greater than 0 (minor units)' })
  .max(MAX_AMOUNT, { message: `must be ≤ ${MAX_AMOUNT} (12 digits of minor units)` });

/**
 * Types that move money and so need `amount` (> 0): those for which the capability matrix has a protocol
 * sending an amount (`needsAmount`). Every other type takes none (a void or preauth cancel reverses the
 * original's whole amount). Checked here, before any terminal is looked up or touched.
 */
export const AMOUNT_TYPES: ReadonlySet<OperationType> = new Set(
  OPERATION_TYPES.filter((type) => Object.values(CAPABILITIES).some((dialects) => Object.values(dialects).some((table) => table[type]?.needsAmount))),
);

/** Types that refer to an earlier operation and so need `originalOperationId` (`needsOriginal` in the capability matrix). */
export const ORIGINAL_TYPES: ReadonlySet<OperationType> = new Set(
  OPERATION_TYPES.filter((type) => Object.values(CAPABILITIES).some((dialects) => Object.values(dialects).some((table) => table[type]?.needsOriginal))),
);

/**
 * Types whose SSI ECR request carries `transCurrency` (SSI ECR JSON protocol §5.2): on an ssi_ecr terminal they
 * need `currency`. `void`, `partial_void` and `preauth_cancel` name only the original's invoice (§5.2.12
 * PartialVoid: `invoiceNum`, `transAmount`), so they take none; Joinproto and JPAY terminals use their own currency.
 */
export const SSI_CURRENCY_TYPES: ReadonlySet<OperationType> = new Set<OperationType>([
  'balance_inquiry',
  'cash_deposit',
  'cash_withdrawal',
  'preauth',
  'preauth_capture',
  'purchase',
  'purchase_with_cashback',
  'refund',
]);

const list = (types: ReadonlySet<OperationType>) => [...types].join(', ');

export const OPERATION_STATES = ['pending', 'sent', 'in_progress', 'approved', 'declined', 'canceled', 'failed', 'unknown'] as const;

export const createOperationSchema = z
  .strictObject({
    type: z.enum(OPERATION_TYPES).describe('Protocol-neutral operation type; see docs/operations.md for what each protocol supports.'),
    amount: minorUnits
      .optional()
      .describe(`Minor units (e.g. 1500 = 15.00), 1..${MAX_AMOUNT}. Required by ${[...AMOUNT_TYPES].join(', ')}; refused for every other type.`),
    cashbackAmount: minorUnits.optional().describe('purchase_with_cashback only (required there): cash paid out, minor units.'),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, { message: 'must be an ISO 4217 alphabetic code' })
      .optional()
      .describe(`ISO 4217 alphabetic code (RUB). Required on ssi_ecr terminals by ${list(SSI_CURRENCY_TYPES)}; void / preauth_cancel record the original's.`),
    originalOperationId: canonicalUuid()
      .optional()
      .describe(`The operation it refers to (approved, same terminal): required by ${list(ORIGINAL_TYPES)}; refused for every other type.`),
  })
  .superRefine((dto, ctx) => {
    if (AMOUNT_TYPES.has(dto.type) && dto.amount === undefined) ctx.addIssue({ code: 'custom', path: ['amount'], message: `is required for ${dto.type}` });
    if (!AMOUNT_TYPES.has(dto.type) && dto.amount !== undefined) ctx.addIssue({ code: 'custom', path: ['amount'], message: `is not taken by ${dto.type}` });
    const cashback = dto.type === 'purchase_with_cashback';
    if (cashback && dto.cashbackAmount === undefined)
      ctx.addIssue({ code: 'custom', path: ['cashbackAmount'], message: 'is required for purchase_with_cashback' });
    if (!cashback && dto.cashbackAmount !== undefined) ctx.addIssue({ code: 'custom', path: ['cashbackAmount'], message: `is not taken by ${dto.type}` });
    if (ORIGINAL_TYPES.has(dto.type) && dto.originalOperationId === undefined)
      ctx.addIssue({ code: 'custom', path: ['originalOperationId'], message: `is required for ${dto.type} (the operation it refers to)` });
    if (!ORIGINAL_TYPES.has(dto.type) && dto.originalOperationId !== undefined)
      ctx.addIssue({ code: 'custom', path: ['originalOperationId'], message: `is not taken by ${dto.type}` });
  })
  .describe(
    `Required fields by type: amount — ${list(AMOUNT_TYPES)}; cashbackAmount — purchase_with_cashback; originalOperationId — ${list(ORIGINAL_TYPES)}; currency on ssi_ecr terminals — ${list(SSI_CURRENCY_TYPES)}. Any of these given to a type that does not take it is refused (400, naming the field).`,
  );
export type CreateOperationDto = z.infer<typeof createOperationSchema>;

export const listOperationsQuery = paginationQuery.extend({
  terminalId: canonicalUuid().optional(),
  storeId: canonicalUuid().optional(),
  type: z.enum(OPERATION_TYPES).optional(),
  state: z.enum(OPERATION_STATES).optional(),
  from: isoInstant().optional().describe('createdAt ≥ from (ISO 8601)'),
  to: isoInstant().optional().describe('createdAt < to (ISO 8601)'),
});
export type ListOperationsQuery = z.infer<typeof listOperationsQuery>;

export const createQuery = z.object({
  wait: z.coerce
    .number()
    .int()
    .min(0)
    .max(120_000)
    .default(0)
    .describe(
      'Wait up to this many ms for a final state before answering. Answered at once (as with 0) when the tenant already has OPERATION_WAITS_MAX_PER_TENANT requests waiting on this gateway instance (default 256).',
    ),
});
export type CreateQuery = z.infer<typeof createQuery>;

export const operationResponseSchema = z.object({
  id: canonicalUuid(),
  terminalId: canonicalUuid(),
  storeId: canonicalUuid(),
  type: z.enum(OPERATION_TYPES),
  state: z.enum(OPERATION_STATES),
  subStatus: z.string().nullable(),
  stateReason: z.string().nullable(),
  amount: z.number().int().nullable(),
  cashbackAmount: z.number().int().nullable(),
  currency: z.string().nullable(),
  originalOperationId: canonicalUuid().nullable(),
  maskedPan: z.string().nullable(),
  rrn: z.string().nullable(),
  approvalCode: z.string().nullable(),
  responseCode: z.string().nullable(),
  responseMessage: z.string().nullable(),
  reasonCode: z
    .enum(Object.keys(REASON_CODES) as [ReasonCode, ...ReasonCode[]])
    .nullable()
    .describe("Protocol-neutral reason of the terminal's answer (docs/protocols/result-codes.md); null when the terminal gave none."),
  hasReceipt: z.boolean(),
  data: z.record(z.string(), z.unknown()).nullable(),
  recoveryAttempts: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
  completedAt: z.string().nullable(),
});
export type OperationResponse = OperationView;

export const receiptResponseSchema = z.object({
  operationId: canonicalUuid(),
  text: z.string().nullable(),
  fields: z.record(z.string(), z.unknown()),
});
export type ReceiptResponse = z.infer<typeof receiptResponseSchema>;

/** A human's verdict on an UNKNOWN operation (after checking the terminal journal or the bank). */
export const resolveOperationSchema = z
  .strictObject({
    approvalCode: z
      .string()
      .trim()
      .regex(/^[0-9A-Za-z]{1,12}$/, 'must be 1–12 letters or digits')
      .optional()
      .describe('Authorisation code from the terminal journal or the bank (approved only).'),
    note: z
      .string()
      .trim()
      .min(3)
      .max(1000)
      .describe('Why: what was checked (terminal journal, bank statement …). Audited. A card number in it is stored masked.')
      // Free text a person typed: a card number copied from a journal is masked before it is stored anywhere.
      .transform(scrubPans),
    rrn: z
      .string()
      .trim()
      .regex(/^[0-9A-Za-z]{1,24}$/, 'must be 1–24 letters or digits')
      .optional()
      .describe('Retrieval reference number from the terminal journal or the bank (approved or declined: the host saw it).'),
    state: z.enum(['approved', 'declined', 'failed']).describe('The true outcome.'),
  })
  .superRefine((dto, ctx) => {
    // An authorisation code exists only for an approval; a failed operation never reached the host, so it has no RRN.
    if (dto.approvalCode !== undefined && dto.state !== 'approved') {
      ctx.addIssue({ code: 'custom', path: ['approvalCode'], message: `is given only for state approved (got ${dto.state})` });
    }
    if (dto.rrn !== undefined && dto.state === 'failed') {
      ctx.addIssue({ code: 'custom', path: ['rrn'], message: 'is not given for state failed (the host never saw the operation)' });
    }
  });
export type ResolveOperationDto = z.infer<typeof resolveOperationSchema>;

nameSchemas({
  CreateOperationRequest: createOperationSchema,
  Operation: operationResponseSchema,
  Receipt: receiptResponseSchema,
  ResolveOperationRequest: resolveOperationSchema,
});

import { PayorchError } from '@payorch/domain';

import type { DriverProtocol, OperationType } from './types';

/** What a protocol does for one neutral operation type: the command(s) sent and the fields filled. */
export interface Capability {
  /** Protocol command, e.g. `01 Purchase`, `transaction type=purchase`, `Purchase`. */
  readonly command: string;
  /** Protocol fields the driver fills, and where their values come from. */
  readonly fields: readonly string[];
  /** Needs the original operation (refund / void / capture / preauth cancel). */
  readonly needsOriginal?: boolean;
  /** Needs an amount in the command. */
  readonly needsAmount?: boolean;
  /** Needs the terminal's admin password in its credentials. */
  readonly needsAdminPassword?: boolean;
  /** Can be cancelled while it runs. */
  readonly cancelable?: boolean;
  /**
   * A `void` without an amount: what the terminal reverses — the original's whole amount (so nothing of it may have been
   * reversed before), or what is left of it after earlier partial voids and refunds.
   */
  readonly reverses?: 'whole' | 'rest';
  /**
   * The types the original may be, when the protocol allows fewer than the API (operations.service ORIGINAL_TYPES):
   * e.g. a Joinproto void is a refund (06), which reverses a payment but would pay a refund out a second time.
   */
  readonly originals?: readonly OperationType[];
  readonly notes?: string;
}

export type CapabilityTable = Partial<Record<OperationType, Capability>>;

export type DriverErrorCode = 'UNSUPPORTED_OPERATION' | 'INVALID_COMMAND' | 'MISSING_CREDENTIALS';

/** Raised before anything is sent: the command cannot be run on this terminal as asked. */
export class DriverError extends PayorchError<DriverErrorCode> {}

const JOINPROTO: CapabilityTable = {
  purchase: { command: '01 Purchase', fields: ['DF05 amount', 'DF0C department'], needsAmount: true, cancelable: true },
  purchase_with_cashback: {
    command: '01 Purchase',
    fields: ['DF05 amount', 'DF0B cashback', 'DF0C department'],
    needsAmount: true,
    cancelable: true,
  },
  refund: {
    command: '06 Refund',
    fields: ['DF05 amount', 'DF08 original RRN', 'DF09 original date', 'DF06 original receipt number', 'DF0C department'],
    needsAmount: true,
    needsOriginal: true,
    cancelable: true,
  },
  void: {
    command: '06 Refund',
    fields: ['DF05 original amount', 'DF08 original RRN', 'DF09 original date', 'DF06 original receipt number', 'DF0C department'],
    needsOriginal: true,
    cancelable: true,
    reverses: 'whole',
    // 06 pays the amount back to the card: for a refund that would be a second payout, not its reversal.
    originals: ['purchase', 'purchase_with_cashback', 'preauth_capture'],
    notes: 'Joinproto has no purchase reversal; a void is a refund of the full original amount with its references, so a refund cannot be voided.',
  },
  preauth: { command: '03 Preauth', fields: ['DF05 amount', 'DF0C department'], needsAmount: true, cancelable: true },
  preauth_capture: {
    command: '04 Completion',
    fields: ['DF05 amount (≤ held)', 'DF2B preauth RRN', 'DF0C department'],
    needsAmount: true,
    needsOriginal: true,
    cancelable: true,
  },
  preauth_cancel: { command: '05 Cancel', fields: ['DF2B preauth RRN', 'DF0C department'], needsOriginal: true, cancelable: true },
  cash_withdrawal: { command: '07 CashAdvance', fields: ['DF05 amount', 'DF0C department'], needsAmount: true, cancelable: true },
  cash_deposit: { command: '08 CashDeposit', fields: ['DF05 amount', 'DF0C department'], needsAmount: true, cancelable: true },
  balance_inquiry: { command: '12 Balance', fields: ['DF0C department'], cancelable: true },
  pin_change: { command: '13 PinChange', fields: ['DF0C department'], cancelable: true },
  settlement: { command: '09 CloseDay', fields: ['DF0C department'] },
  load_keys: { command: '14 LoadKeys', fields: ['DF0C department'] },
  load_config: { command: '10 LoadConfig', fields: [] },
  update_app: { command: '11 UpdateApp', fields: [] },
  upload_logs: { command: '96 UploadLogs', fields: [] },
};

const JPAY_COMMON: CapabilityTable = {
  purchase: { command: 'transaction type=purchase', fields: ['amount'], needsAmount: true, cancelable: true },
  purchase_with_cashback: {
    command: 'transaction type=purchase-with-cashback',
    fields: ['amount', 'amount-other (cashback)'],
    needsAmount: true,
    cancelable: true,
  },
  refund: {
    command: 'transaction type=refund',
    fields: ['amount', 'rrn (original RRN)'],
    needsAmount: true,
    needsOriginal: true,
    cancelable: true,
  },
  void: {
    command: 'transaction type=void',
    fields: ['number (original receipt seq)'],
    needsOriginal: true,
    cancelable: true,
    reverses: 'rest',
    notes: 'Both documents, §8.9: a void without `amount` cancels what is left of the original after its partial voids.',
  },
  partial_void: {
    command: 'transaction type=void',
    fields: ['number (original receipt seq)', 'amount (≤ what is left of the original)'],
    needsAmount: true,
    needsOriginal: true,
    cancelable: true,
    notes: 'Both documents, §8.9: a void with `amount` cancels that part of the original; the acquirer must allow partial voids.',
  },
  sbp_payment: { command: 'transaction force-sbp=true type=purchase', fields: ['amount'], needsAmount: true, cancelable: true },
  sbp_refund: {
    command: 'transaction force-sbp=true type=refund',
    fields: ['amount', 'rrn (original RRN / localQrcId)'],
    needsAmount: true,
    needsOriginal: true,
    cancelable: true,
  },
  settlement: { command: 'settlement', fields: ['password (admin)'], needsAdminPassword: true },
  report_x: { command: 'report report-type=brief', fields: ['password (admin)'], needsAdminPassword: true },
  terminal_info: { command: 'login + getparameters + logout', fields: ['password (admin)'], needsAdminPassword: true },
};

const SSI_ECR: CapabilityTable = {
  purchase: { command: 'Purchase', fields: ['transAmount', 'transCurrency', 'merchantId'], needsAmount: true, cancelable: true },
  purchase_with_cashback: {
    command: 'CashBack',
    fields: ['transAmount', 'cashAmount', 'transCurrency', 'merchantId'],
    needsAmount: true,
    cancelable: true,
  },
  refund: {
    command: 'Refund',
    fields: ['transAmount', 'transCurrency', 'rrn (original RRN)', 'merchantId'],
    needsAmount: true,
    needsOriginal: true,
    cancelable: true,
  },
  void: { command: 'Void', fields: ['invoiceNum (original)'], needsOriginal: true, cancelable: true, reverses: 'whole' },
  partial_void: {
    command: 'PartialVoid',
    fields: ['invoiceNum (original)', 'transAmount'],
    needsAmount: true,
    needsOriginal: true,
    cancelable: true,
  },
  preauth: {
    command: 'Preauthorization',
    fields: ['transAmount', 'transCurrency', 'merchantId'],
    needsAmount: true,
    cancelable: true,
  },
  preauth_capture: {
    command: 'SalePreauth',
    fields: ['transAmount (held)', 'endAmount', 'transCurrency', 'rrn (preauth)', 'authCode (preauth)', 'merchantId'],
    needsAmount: true,
    needsOriginal: true,
    cancelable: true,
  },
  preauth_cancel: { command: 'VoidPreauth', fields: ['invoiceNum (preauth)'], needsOriginal: true, cancelable: true },
  cash_withdrawal: { command: 'Cash', fields: ['transAmount', 'transCurrency', 'merchantId'], needsAmount: true, cancelable: true },
  cash_deposit: { command: 'Deposit', fields: ['transAmount', 'transCurrency', 'merchantId'], needsAmount: true, cancelable: true },
  balance_inquiry: { command: 'Balance', fields: ['transCurrency', 'merchantId'], cancelable: true },
  echo: { command: 'Echo', fields: ['merchantId'] },
  report_x: { command: 'XReport', fields: ['merchantId'] },
  report_z: { command: 'ZReport', fields: ['merchantId'] },
  settlement: { command: 'ZReport', fields: ['merchantId'], notes: 'Settlement is the Z report (closes the batch).' },
  terminal_info: { command: 'GetTerminalInfo', fields: [] },
};

/**
 * The capability matrix: `CAPABILITIES[protocol][dialect]` (`*` = every dialect). An operation type
 * absent from a protocol's table is refused before anything is sent. Mirrored in docs/operations.md.
 */
export const CAPABILITIES: Readonly<Record<DriverProtocol, Readonly<Record<string, CapabilityTable>>>> = {
  JOINPROTO: { '*': JOINPROTO },
  JPAY: {
    aqsi: JPAY_COMMON,
    jpay: JPAY_COMMON,
  },
  SSI_ECR: { '*': SSI_ECR },
};

/** Default dialect when a terminal has none configured. */
export const DEFAULT_DIALECT: Readonly<Record<DriverProtocol, string>> = { JOINPROTO: '*', JPAY: 'aqsi', SSI_ECR: '*' };

function tableOf(protocol: DriverProtocol, dialect: string | null | undefined): { table: CapabilityTable | undefined; dialect: string } {
  const byDialect = CAPABILITIES[protocol];
  const name = dialect ?? DEFAULT_DIALECT[protocol];
  return { table: byDialect[name] ?? byDialect['*'], dialect: name };
}

export function capabilityOf(protocol: DriverProtocol, dialect: string | null | undefined, type: OperationType): Capability | undefined {
  return tableOf(protocol, dialect).table?.[type];
}

export function supportedTypes(protocol: DriverProtocol, dialect: string | null | undefined): OperationType[] {
  return Object.keys(tableOf(protocol, dialect).table ?? {}) as OperationType[];
}

/** Throws UNSUPPORTED_OPERATION naming the protocol (and dialect) when `type` is not in the matrix. */
export function assertSupported(protocol: DriverProtocol, dialect: string | null | undefined, type: OperationType): Capability {
  const { table, dialect: name } = tableOf(protocol, dialect);
  if (table === undefined) {
    throw new DriverError('UNSUPPORTED_OPERATION', `protocol ${protocol} has no dialect "${name}"`, { protocol, dialect: name });
  }
  const capability = table[type];
  if (capability === undefined) {
    const label = name === '*' ? protocol : `${protocol} (dialect ${name})`;
    throw new DriverError('UNSUPPORTED_OPERATION', `${label} does not support operation type "${type}"`, {
      protocol,
      dialect: name === '*' ? null : name,
      type,
      supported: Object.keys(table),
    });
  }
  return capability;
}

import type { TillCommandName } from '../commands';
import type { ErrorResponse, RepeatResponse, TerminalResponse } from '../messages';
import { describeResponseCode, type ResponseCategory } from '../response-codes';
import { commandOfType } from '../codec';

/**
 * Neutral, log-safe view of a terminal's answer: masked PAN only, amounts in minor units.
 * `category` is what the caller acts on; `responseCode`/`message` are kept for receipts and support.
 */
export interface OperationResult {
  readonly category: ResponseCategory;
  /** DF16; absent where the spec answers success without it (interrupt ack, uploaded logs). */
  readonly responseCode?: string;
  readonly responseMeaning?: string;
  /** DF1A as sent by the terminal. */
  readonly message?: string;
  readonly maskedPan?: string;
  readonly amount?: number;
  readonly cashback?: number;
  readonly authCode?: string;
  readonly rrn?: string;
  readonly receiptNo?: string;
  readonly shiftNo?: string;
  readonly merchantId?: string;
  readonly terminalId?: string;
  /** DF2C YYMMDD and DF19 hhmmss, in the terminal's clock. */
  readonly date?: string;
  readonly time?: string;
  /** DF0A bytes, and the same decoded as UTF-8 (every example of the spec is UTF-8 text). */
  readonly receipt?: Uint8Array;
  readonly receiptText?: string;
  /** DF24 of uploaded logs. */
  readonly data?: Uint8Array;
}

/** Why a command's outcome is not known. The caller must recover it with `recover(id)` (95), never assume failure. */
export type UnknownReason =
  /** No answer within the command's timeout. */
  | 'timeout'
  /** The transport closed after the command was sent. */
  | 'transport-closed'
  /** An answer with this id arrived but did not decode; its content cannot be trusted. */
  | 'invalid-response'
  /** The terminal answered `XX` without DF00/DF01: it could not read a frame; which one is not certain. */
  | 'terminal-rejected-frame';

export type CommandOutcome<R extends TerminalResponse = TerminalResponse> =
  | {
      readonly outcome: 'completed';
      readonly command: TillCommandName;
      readonly id: string;
      /** The terminal's answer; ErrorResponse when it did not know the command (`XX UNKNOWN COMMAND`). */
      readonly response: R | ErrorResponse;
      readonly result: OperationResult;
    }
  | {
      readonly outcome: 'unknown';
      readonly command: TillCommandName;
      readonly id: string;
      readonly reason: UnknownReason;
      readonly detail: string;
    };

/** Outcome of `recover(id)`. */
export type RecoveryOutcome =
  | CommandOutcome
  | {
      /** The terminal has no answer for this id (spec 4.9.1). Only conclusive if the command cannot still be running. */
      readonly outcome: 'not-found';
      readonly command: 'Repeat';
      readonly id: string;
      readonly response: RepeatResponse;
    };

/** Builds the neutral result of a terminal answer. */
export function toOperationResult(response: TerminalResponse | ErrorResponse): OperationResult {
  const command = commandOfType(response.type);
  const fields = response as unknown as Partial<Record<string, unknown>>;
  const code = typeof fields.responseCode === 'string' ? fields.responseCode : undefined;
  const message = typeof fields.message === 'string' ? fields.message : undefined;
  const info = code === undefined ? undefined : describeResponseCode(code, message, command);
  const receipt = fields.receipt instanceof Uint8Array ? fields.receipt : undefined;
  const result: Record<string, unknown> = {
    category: info?.category ?? 'approved',
    responseCode: code,
    responseMeaning: info?.meaning,
    message,
    maskedPan: fields.maskedPan,
    amount: fields.amount,
    cashback: fields.cashback,
    authCode: fields.authCode,
    rrn: fields.rrn,
    receiptNo: fields.receiptNo,
    shiftNo: fields.shiftNo,
    merchantId: fields.merchantId,
    terminalId: fields.terminalId,
    date: fields.date,
    time: fields.time,
    receipt,
    receiptText: receipt === undefined ? undefined : new TextDecoder('utf-8').decode(receipt),
    data: fields.data,
  };
  for (const key of Object.keys(result)) if (result[key] === undefined) delete result[key];
  return result as unknown as OperationResult;
}

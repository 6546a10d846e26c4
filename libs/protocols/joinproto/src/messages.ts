/**
 * Typed messages for every command, both ways (spec 4, 5). Each message is named `<Command><Request|Response>`;
 * who sends it follows from the command's initiator (see `COMMANDS`). Amounts are integer minor units.
 * Strings hold the ASCII value of their tag; `receipt` (DF0A) and `data` (DF24, chunks concatenated) are bytes.
 */

/** Optional department number DF0C, for tills serving several legal entities (spec 1.4.0). */
interface WithDepartment {
  readonly department?: string;
}

interface Identified {
  /** DF01: unique id of the command; answers echo it. */
  readonly id: string;
}

/** Result of a command as reported by the terminal: DF16 with DF1A. */
interface WithResult {
  readonly responseCode: string;
  readonly message?: string;
}

/** Optional result: present when a relay or service step failed (`XX` + description). */
type WithOptionalResult = Partial<WithResult>;

// ---- till → terminal: bank requests (spec 5) ----
export interface PurchaseRequest extends Identified, WithDepartment {
  readonly type: 'PurchaseRequest';
  readonly amount: number;
  /** DF0B: cash back paid out on top of the purchase. */
  readonly cashback?: number;
}
export interface PreauthRequest extends Identified, WithDepartment {
  readonly type: 'PreauthRequest';
  readonly amount: number;
}
export interface CompletionRequest extends Identified, WithDepartment {
  readonly type: 'CompletionRequest';
  /** Not more than was held (spec 2, DF00 04). */
  readonly amount: number;
  /** DF2B: RRN of the preauthorisation. */
  readonly rrn: string;
}
/** 05 «Отмена (холда)»: DF2B is the RRN of the preauthorisation (spec 5.5). */
export interface CancelRequest extends Identified, WithDepartment {
  readonly type: 'CancelRequest';
  readonly rrn: string;
}
export interface RefundRequest extends Identified, WithDepartment {
  readonly type: 'RefundRequest';
  readonly amount: number;
  /** DF08: RRN of the operation refunded. */
  readonly originalRrn?: string;
  /** DF09: date of the operation refunded. */
  readonly originalDate?: string;
  /** DF06: receipt number of the operation refunded. */
  readonly originalReceiptNo?: string;
}
export interface CashAdvanceRequest extends Identified, WithDepartment {
  readonly type: 'CashAdvanceRequest';
  readonly amount: number;
}
export interface CashDepositRequest extends Identified, WithDepartment {
  readonly type: 'CashDepositRequest';
  readonly amount: number;
}
export interface CloseDayRequest extends Identified, WithDepartment {
  readonly type: 'CloseDayRequest';
}
export interface BalanceRequest extends Identified, WithDepartment {
  readonly type: 'BalanceRequest';
}
export interface PinChangeRequest extends Identified, WithDepartment {
  readonly type: 'PinChangeRequest';
}
export interface LoadKeysRequest extends Identified, WithDepartment {
  readonly type: 'LoadKeysRequest';
}

// ---- till → terminal: service requests (spec 4) ----
export interface LoadConfigRequest extends Identified {
  readonly type: 'LoadConfigRequest';
}
export interface UpdateAppRequest extends Identified {
  readonly type: 'UpdateAppRequest';
}
export interface UploadLogsRequest extends Identified {
  readonly type: 'UploadLogsRequest';
}
export interface InterruptRequest extends Identified {
  readonly type: 'InterruptRequest';
}
/** 95: `id` is the DF01 of the command whose answer should be repeated (spec 4.9). */
export interface RepeatRequest extends Identified {
  readonly type: 'RepeatRequest';
}

// ---- terminal → till: answers to bank commands (spec 5.x.y) ----
/** Fields a terminal may return for a bank command. */
export interface BankResultFields extends Identified, WithResult {
  /** DF04, always masked first 6 / last 4. */
  readonly maskedPan?: string;
  /** DF05; for Balance, the card balance (spec 5.10.4). */
  readonly amount?: number;
  readonly cashback?: number;
  readonly authCode?: string;
  /** DF0A: receipt data; sent only for approved transactions (spec 1.4.1). */
  readonly receipt?: Uint8Array;
  readonly receiptNo?: string;
  readonly shiftNo?: string;
  readonly merchantId?: string;
  readonly terminalId?: string;
  /** DF19 hhmmss. */
  readonly time?: string;
  readonly rrn?: string;
  /** DF2C YYMMDD. */
  readonly date?: string;
}
export interface PurchaseResponse extends BankResultFields {
  readonly type: 'PurchaseResponse';
}
export interface PreauthResponse extends BankResultFields {
  readonly type: 'PreauthResponse';
}
export interface CompletionResponse extends BankResultFields {
  readonly type: 'CompletionResponse';
}
export interface CancelResponse extends BankResultFields {
  readonly type: 'CancelResponse';
}
export interface RefundResponse extends BankResultFields {
  readonly type: 'RefundResponse';
}
export interface CashAdvanceResponse extends BankResultFields {
  readonly type: 'CashAdvanceResponse';
}
export interface CashDepositResponse extends BankResultFields {
  readonly type: 'CashDepositResponse';
}
/** Close day: DF0A holds the day-close receipt; 915 means terminal and host totals differ (spec 5.6). */
export interface CloseDayResponse extends BankResultFields {
  readonly type: 'CloseDayResponse';
}
export interface BalanceResponse extends BankResultFields {
  readonly type: 'BalanceResponse';
}
export interface PinChangeResponse extends BankResultFields {
  readonly type: 'PinChangeResponse';
}
export interface LoadKeysResponse extends BankResultFields {
  readonly type: 'LoadKeysResponse';
}

// ---- terminal → till: answers to service commands (spec 4) ----
export interface LoadConfigResponse extends Identified, WithResult {
  readonly type: 'LoadConfigResponse';
}
export interface UpdateAppResponse extends Identified, WithResult {
  readonly type: 'UpdateAppResponse';
}
/** Logs (DF24 chunks concatenated) or `XX FAILED` (spec 4.8). */
export interface UploadLogsResponse extends Identified, WithOptionalResult {
  readonly type: 'UploadLogsResponse';
  readonly data?: Uint8Array;
}
/** Bare echo of the id when interrupted; `XX Nothing to interrupt` otherwise (spec 4.10). */
export interface InterruptResponse extends Identified, WithOptionalResult {
  readonly type: 'InterruptResponse';
}
/** 95 when no answer with that id exists: DF01 is absent (spec 4.9.1). A found answer is repeated as is. */
export interface RepeatResponse extends WithResult {
  readonly type: 'RepeatResponse';
}

// ---- terminal → till: terminal-initiated requests ----
export interface EchoRequest extends Identified {
  readonly type: 'EchoRequest';
}
/** Card check against the till's black/white lists (spec 5.2). */
export interface CardCheckRequest extends Identified {
  readonly type: 'CardCheckRequest';
  readonly maskedPan: string;
  readonly date?: string;
}
export interface OpenConnectionRequest extends Identified {
  readonly type: 'OpenConnectionRequest';
  /** DF21, `tcp` or `http` (spec 4.2). */
  readonly protocol: string;
  /** DF22, `host:port`. */
  readonly address: string;
}
export interface SendDataRequest extends Identified {
  readonly type: 'SendDataRequest';
  readonly connectionId: string;
  readonly data: Uint8Array;
}
export interface ReceiveDataRequest extends Identified {
  readonly type: 'ReceiveDataRequest';
  readonly connectionId: string;
  /** DF25: at most this many bytes, like the buffer size of recv() (spec 4.4). */
  readonly maxBytes: number;
}
export interface CloseConnectionRequest extends Identified {
  readonly type: 'CloseConnectionRequest';
  readonly connectionId: string;
}

// ---- till → terminal: answers to terminal-initiated requests ----
/** Identical to the request (spec 4.1). */
export interface EchoResponse extends Identified {
  readonly type: 'EchoResponse';
}
/** `000` with DF1A `black` / `white` (spec 5.2.2–5.2.3), or `XX CANCELED`. */
export interface CardCheckResponse extends Identified, WithResult {
  readonly type: 'CardCheckResponse';
}
export interface OpenConnectionResponse extends Identified, WithOptionalResult {
  readonly type: 'OpenConnectionResponse';
  readonly connectionId?: string;
}
export interface SendDataResponse extends Identified, WithOptionalResult {
  readonly type: 'SendDataResponse';
  /** DF25: bytes sent. */
  readonly sentBytes?: number;
}
export interface ReceiveDataResponse extends Identified, WithOptionalResult {
  readonly type: 'ReceiveDataResponse';
  readonly data?: Uint8Array;
}
/** The till answers 94 with the bare id whatever happened (spec 4.5). */
export interface CloseConnectionResponse extends Identified {
  readonly type: 'CloseConnectionResponse';
}

// ---- either way ----
/**
 * `XX` answer to a frame that could not be handled: no DF00 for a malformed frame (`other err`), or the
 * unknown DF00 and DF01 echoed with `UNKNOWN COMMAND` (spec 3).
 */
export interface ErrorResponse extends WithResult {
  readonly type: 'ErrorResponse';
  /** Raw DF00 of the offending frame, when it had one. */
  readonly command?: string;
  readonly id?: string;
}

export type BankRequest =
  | PurchaseRequest
  | PreauthRequest
  | CompletionRequest
  | CancelRequest
  | RefundRequest
  | CashAdvanceRequest
  | CashDepositRequest
  | CloseDayRequest
  | BalanceRequest
  | PinChangeRequest
  | LoadKeysRequest;
export type ServiceRequest = LoadConfigRequest | UpdateAppRequest | UploadLogsRequest | InterruptRequest | RepeatRequest;
/** Commands a till sends. */
export type TillRequest = BankRequest | ServiceRequest;

export type BankResponse =
  | PurchaseResponse
  | PreauthResponse
  | CompletionResponse
  | CancelResponse
  | RefundResponse
  | CashAdvanceResponse
  | CashDepositResponse
  | CloseDayResponse
  | BalanceResponse
  | PinChangeResponse
  | LoadKeysResponse;
export type ServiceResponse = LoadConfigResponse | UpdateAppResponse | UploadLogsResponse | InterruptResponse | RepeatResponse;
/** Answers a terminal gives to till commands. */
export type TerminalResponse = BankResponse | ServiceResponse;

export type TerminalRequest = EchoRequest | CardCheckRequest | OpenConnectionRequest | SendDataRequest | ReceiveDataRequest | CloseConnectionRequest;
export type TillResponse = EchoResponse | CardCheckResponse | OpenConnectionResponse | SendDataResponse | ReceiveDataResponse | CloseConnectionResponse;

/** Everything the till sends to the terminal. */
export type TillMessage = TillRequest | TillResponse | ErrorResponse;
/** Everything the terminal sends to the till. */
export type TerminalMessage = TerminalResponse | TerminalRequest | ErrorResponse;
export type Message = TillMessage | TerminalMessage;
export type MessageType = Message['type'];
/** Message of a given type. */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

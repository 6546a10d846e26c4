/**
 * Typed packets of the banking-application API (section numbers are the JPAY document's; the aQsi
 * document has the same sections without numbers).
 *
 *  - `JpayCommand`     client → application, root tag = command name (§8);
 *  - `JpayResponse`    application → client, root tag = the command's name, always with `status`;
 *  - `TerminalMessage` application → client while a command runs (keepalive, display, ...);
 *  - `MessageReply`    client → application, the mandatory answer to a message.
 * Amounts are integer minor units. Card data is masked (see `pan.ts`).
 */
import type { JpayStatus } from './status';
import type { XmlElement } from './xml';

/** `aqsi`: aQsi cardcore 2025 (smartcard messages, key list, ps-code, settlement force).
 *  `jpay`: JPAY 1.0.4–1.0.14 (card MIFARE messages, `keep-alive` spelling during runreset). */
export type Dialect = 'aqsi' | 'jpay';

// ---- commands ----------------------------------------------------------------------------------

export const COMMAND_NAMES = [
  'login',
  'logout',
  'changepassword',
  'updateconfiguration',
  'loadworkkeys',
  'loadmasterkeys',
  'testconnection',
  'getparameters',
  'transaction',
  'report',
  'settlement',
  'clear',
  'resetpassword',
  'sethostkey',
  'runreset',
] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

/** Commands that only carry the admin token (§8.2, 8.4–8.8, §10). */
export type TokenCommandName = 'logout' | 'updateconfiguration' | 'loadworkkeys' | 'loadmasterkeys' | 'testconnection' | 'getparameters' | 'runreset';

/** Appendix B; `void` covers partial void (with `amount`) and `number=last`. */
export type TransactionType = 'purchase' | 'refund' | 'void' | 'purchase-with-cashback';

/** Manual card entry (§8.9 variant A): admin password required. */
export interface ManualCardEntry {
  readonly pan: string;
  /** `expired`, 4 digits YYMM. */
  readonly expiry: string;
  /** Admin password, 8 digits. Never logged. */
  readonly password: string;
  readonly cardholder?: string;
}

export interface TransactionRequest {
  readonly type: TransactionType;
  /** Minor units. Required except for `void` (absent = full void; present = partial void). */
  readonly amount?: number;
  /** Cashback, minor units: required for `purchase-with-cashback`. */
  readonly amountOther?: number;
  /** ISO 4217 numeric, only when different from the configured default. */
  readonly currency?: string;
  /** RRN of the original (refund), 12 characters; for an SBP/CFT refund it is `localQrcId`. */
  readonly rrn?: string;
  /** Receipt number (`seq`) of the transaction to void, or `last`. */
  readonly number?: string;
  /** Refund/void without the card (`forced=true`), acquirer-dependent. */
  readonly forced?: boolean;
  /** §8.10 `force-sbp` attribute: `true` = SBP only, `false` = no SBP, absent = terminal config. */
  readonly forceSbp?: boolean;
  readonly manualEntry?: ManualCardEntry;
}

export type JpayCommand =
  | { readonly command: 'login'; readonly password: string; readonly clientHandshake?: string }
  | { readonly command: TokenCommandName; readonly token: string }
  | {
      readonly command: 'changepassword';
      readonly token: string;
      readonly password: string;
      readonly newPassword: string;
    }
  | ({ readonly command: 'transaction' } & TransactionRequest)
  | { readonly command: 'report'; readonly password: string; readonly reportType: ReportType }
  | { readonly command: 'settlement'; readonly password: string; readonly force?: boolean }
  | { readonly command: 'clear'; readonly password: string }
  | { readonly command: 'resetpassword' }
  | {
      readonly command: 'sethostkey';
      readonly token: string;
      readonly name: string;
      /** Base64 key material. Send it over an encrypted session only. */
      readonly material: string;
    };

export type ReportType = 'brief' | 'full';

// ---- responses ---------------------------------------------------------------------------------

interface ResponseBase<C extends CommandName> {
  readonly command: C;
  readonly status: JpayStatus;
  /** `error-stack`, each hex `error` decoded to UTF-8 text. */
  readonly errors: readonly string[];
}

export interface LoginResponse extends ResponseBase<'login'> {
  readonly token?: string;
  /** Base64 `server-handshake` attribute of an encrypted login (§9). */
  readonly serverHandshake?: string;
}

export interface KeyChangeReceipt {
  readonly rrn?: string;
}

export interface LoadWorkKeysResponse extends ResponseBase<'loadworkkeys'> {
  readonly macChangeReceipt?: KeyChangeReceipt;
  readonly netChangeReceipt?: KeyChangeReceipt;
}

/** One entry of the aQsi `keys` list (type 03, 05, 09, 0A–0E, 10, FF). */
export interface MasterKeyResult {
  readonly type: string;
  readonly algorithm?: string;
  readonly result?: string;
  readonly kcv?: string;
}

export interface LoadMasterKeysResponse extends ResponseBase<'loadmasterkeys'> {
  readonly receipt?: {
    readonly pkcv?: string;
    readonly mkcv?: string;
    /** aQsi only; empty for the JPAY dialect. */
    readonly keys: readonly MasterKeyResult[];
  };
}

/** §8.8 parameters; every value is kept as text. Unlisted tags are kept too. */
export interface TerminalParameters {
  readonly sn?: string;
  readonly app?: string;
  readonly 'firmware-mcu'?: string;
  readonly 'firmware-boot'?: string;
  readonly os?: string;
  readonly sdk?: string;
  readonly tid?: string;
  readonly mid?: string;
  readonly tconf?: string;
  readonly ntconf?: string;
  readonly cconf?: string;
  readonly ncconf?: string;
  readonly econf?: string;
  readonly neconf?: string;
  readonly kconf?: string;
  readonly nkconf?: string;
  readonly acqid?: string;
  readonly cccert?: string;
  readonly csca?: string;
  readonly cshost?: string;
  readonly accert?: string;
  readonly asca?: string;
  readonly ashost?: string;
  readonly 'as-main-host'?: string;
  readonly 'as-mirror-host'?: string;
  readonly kccert?: string;
  readonly ksca?: string;
  readonly kshost?: string;
  readonly 'ks-main-host'?: string;
  readonly 'ks-mirror-host'?: string;
  readonly devid?: string;
  readonly [tag: string]: string | undefined;
}

export interface GetParametersResponse extends ResponseBase<'getparameters'> {
  readonly parameters?: TerminalParameters;
}

/** Transaction receipt (§8.9, §8.10). Every documented tag; the rest in `extras`. */
export interface Receipt {
  readonly header: readonly string[];
  readonly footer: readonly string[];
  readonly tid?: string;
  readonly mid?: string;
  readonly seq?: string;
  /** purchase, refund, purchasereversal, refundreversal, reversal. */
  readonly type?: string;
  readonly state?: string;
  /** approved | declined. */
  readonly tstatus?: string;
  /** SBP receipts carry the result in `status` instead of (or besides) `tstatus`. */
  readonly status?: string;
  readonly amountAuthorized?: number;
  readonly amountOther?: number;
  readonly currency?: string;
  readonly aid?: string;
  /** aQsi: payment system id (4 Visa, 5 MasterCard, 6 UnionPay, 22 Mir). */
  readonly psCode?: string;
  readonly appname?: string;
  /** Application Preferred Name (9F12), HEX-ASCII as sent. */
  readonly apname?: string;
  readonly alabel?: string;
  readonly ictId?: string;
  /** Resolved with apname(ict-id) → alabel → appname (§8.9). */
  readonly applicationName?: string;
  readonly pinEntered?: string;
  readonly cdcvm?: string;
  readonly signature?: string;
  /** Masked by the terminal (last 4). */
  readonly pan?: string;
  /** `plain-text-pan`, masked to first 6 / last 4 at decode time; the full value is never kept. */
  readonly plainTextPanMasked?: string;
  readonly aed?: string;
  readonly rrn?: string;
  readonly respCode?: string;
  readonly respCodeDescription?: string;
  readonly authNumber?: string;
  /** yyMMddhhmmss in the till's time zone. */
  readonly datetime?: string;
  readonly tsi?: string;
  readonly tvr?: string;
  readonly declineReason?: string;
  readonly acquirerTag?: string;
  readonly bankName?: string;
  readonly record?: string;
  /** `sbp` for SBP receipts. */
  readonly iface?: string;
  readonly tidSbp?: string;
  readonly errorCode?: string;
  /** SBP via CFT: MPI service fields (localQrcId, qrcId, ...). */
  readonly cft?: Readonly<Record<string, string>>;
  /** Unrecognised receipt children, verbatim (e.g. MIFARE `card close` user data). */
  readonly extras: readonly XmlElement[];
}

export interface TransactionResponse extends ResponseBase<'transaction'> {
  readonly receipt?: Receipt;
}

export interface ReportTransaction {
  readonly status?: string;
  readonly state?: string;
  readonly type?: string;
  readonly seq?: string;
  /** `aa`, minor units. */
  readonly amount?: number;
  /** `ao`, cashback, minor units. */
  readonly amountOther?: number;
  readonly rrn?: string;
  readonly time?: string;
  /** `apn`, authorisation code. */
  readonly authNumber?: string;
  /** `arc`, host response code. */
  readonly respCode?: string;
  readonly currency?: string;
  readonly pan?: string;
  readonly aed?: string;
  readonly aid?: string;
  readonly tvr?: string;
  readonly tsi?: string;
}

export interface CountSum {
  readonly count?: number;
  readonly sum?: number;
}

export interface CardTypeTotals {
  readonly rid?: string;
  readonly name?: string;
  readonly purchase: CountSum;
  readonly refund: CountSum;
  readonly purchaseWithCashback: CountSum;
  readonly purchaseReversal: CountSum;
  readonly refundReversal: CountSum;
  /** Signed balance: D = +, C = − (§8.11). */
  readonly totalSum?: number;
  readonly totalCount?: number;
}

export type GrandTotals = Omit<CardTypeTotals, 'rid' | 'name'>;

export interface XReport {
  readonly header: {
    readonly mid?: string;
    readonly tid?: string;
    readonly title: readonly string[];
    readonly currency?: string;
    readonly time?: string;
  };
  /** Only in a `full` report. */
  readonly transactions: readonly ReportTransaction[];
  readonly totals: readonly CardTypeTotals[];
  readonly grandTotals?: GrandTotals;
}

export interface ReportResponse extends ResponseBase<'report'> {
  readonly xreport?: XReport;
}

/** `sreport` of settlement (§8.12) and clear (§8.13). Amounts are D/C signed. */
export interface SettlementReport {
  readonly respCode?: string;
  readonly approvalNumber?: string;
  readonly rrn?: string;
  readonly origAmount?: number;
  readonly amount?: number;
  readonly datetime?: string;
  readonly tid?: string;
  readonly mid?: string;
  readonly currency?: string;
  readonly from?: string;
  readonly to?: string;
  readonly tnum?: number;
  readonly batchUpload?: string;
  readonly artRespCode?: string;
  readonly covRespCode?: string;
  readonly covRrn?: string;
  readonly settlementResult?: string;
}

export interface SettlementResponse extends ResponseBase<'settlement'> {
  /** aQsi dialect. */
  readonly bankName?: string;
  readonly sreport?: SettlementReport;
}

export interface ClearResponse extends ResponseBase<'clear'> {
  readonly sreport?: SettlementReport;
}

export interface ResponseMap {
  login: LoginResponse;
  logout: ResponseBase<'logout'>;
  changepassword: ResponseBase<'changepassword'>;
  updateconfiguration: ResponseBase<'updateconfiguration'>;
  loadworkkeys: LoadWorkKeysResponse;
  loadmasterkeys: LoadMasterKeysResponse;
  testconnection: ResponseBase<'testconnection'>;
  getparameters: GetParametersResponse;
  transaction: TransactionResponse;
  report: ReportResponse;
  settlement: SettlementResponse;
  clear: ClearResponse;
  resetpassword: ResponseBase<'resetpassword'>;
  sethostkey: ResponseBase<'sethostkey'>;
  runreset: ResponseBase<'runreset'>;
}
export type JpayResponse = ResponseMap[CommandName];
export type StatusOnlyResponse = ResponseBase<CommandName>;

// ---- messages ----------------------------------------------------------------------------------

export interface EmvTag {
  /** Tag in hex, e.g. `5A`, `9F06`. */
  readonly name: string;
  /** Value in hex as EMV formats it. */
  readonly value: string;
}

export type TerminalMessage =
  | {
      readonly type: 'keepalive';
      /** Root spelling: `keepalive`, or `keep-alive` (JPAY §10 runreset). Replies echo it. */
      readonly root: 'keepalive' | 'keep-alive';
      /** §10: 1 once the activator is connected during `runreset`. */
      readonly resetConnected?: boolean;
    }
  | {
      readonly type: 'display';
      /** EMV message id ([EMVA] 9-5, [EMV4] 8) or D1–D5. */
      readonly code: string;
      readonly language?: string;
      readonly msg?: string;
      readonly status?: string;
      readonly holdTime?: string;
      readonly valueQualifier?: string;
      /** Minor units when `valueQualifier` is `10` (AMOUNT). */
      readonly value?: number;
      readonly currency?: string;
    }
  | { readonly type: 'displayqrcode'; readonly status: 'show' | 'hide'; readonly url?: string }
  | { readonly type: 'dex'; readonly kernelTags: readonly EmvTag[] }
  | {
      readonly type: 'smartcard';
      /** Only `newcard` today; other commands must be answered with `next`. */
      readonly command: string;
      readonly descriptor?: SmartcardDescriptor;
    }
  | {
      readonly type: 'card';
      /** `open` (card detected), or the result of our `read` / `write`. */
      readonly code: 'open' | 'read' | 'write';
      readonly blockId?: number;
      readonly status?: string;
      /** Base64 block content. */
      readonly payload?: string;
    };

export type TerminalMessageType = TerminalMessage['type'];

/** aQsi smartcard descriptor: len(1) ‖ UID(len) ‖ ATQA(2) ‖ SAK(1), HEX ASCII. */
export interface SmartcardDescriptor {
  readonly hex: string;
  readonly uid: string;
  readonly atqa: string;
  readonly sak: string;
}

export type MessageReply =
  /** keepalive / display / displayqrcode / any unknown message (`notimplemented`). */
  | { readonly type: 'status'; readonly root: string; readonly status: JpayStatus }
  | { readonly type: 'dex'; readonly status: JpayStatus; readonly terminalTags: readonly EmvTag[] }
  | {
      readonly type: 'smartcard';
      readonly command: 'next' | 'end' | 'retry';
      readonly indicator?: 'ok' | 'error';
    }
  | { readonly type: 'card'; readonly code: 'read'; readonly blockId: number }
  | {
      readonly type: 'card';
      readonly code: 'write';
      readonly blockId: number;
      readonly payload: string;
    }
  | {
      readonly type: 'card';
      readonly code: 'close';
      /** User data returned inside the transaction response's receipt. */
      readonly receipt?: readonly XmlElement[];
    };

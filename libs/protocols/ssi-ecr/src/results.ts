import { normaliseTransactionResult, type PosEntryMode, POS_ENTRY_MODES, type TransactionResultValue } from './codes';
import type { SsiResponse } from './codec';
import { amountFromWire } from './fields';
import { isJsonObject, type JsonObject, type JsonValue } from './json';
import { maskPan } from './pan';

/**
 * Typed views of the `params` of GetLastResult (5.5.1), GetLastReport (5.5.4), GetMerchantList (5.5.5),
 * GetLastReceipt / GetLastReportReceipt (5.5.2, 5.5.6) and GetTerminalInfo (5.5.9). Decoding is lenient
 * as spec 1.2 and 5.5.1 require: unknown keys are ignored and empty values ("" or absent) become undefined.
 */

/** GetLastResult / GetResultByUid. `track2` is deliberately not exposed (it holds the PAN). */
export interface TransactionResult {
  readonly error: boolean;
  readonly errorCode: string;
  readonly errorDescription: string;
  /** The method this result belongs to (spec 4.3.2 `originalTrnName`). */
  readonly originalTrnName?: string;
  /** Normalised (`APPROVED-ONLINE` → `APPROVED_ONLINE`); undefined if not a documented value. */
  readonly transactionResult?: TransactionResultValue;
  /** As received, for values outside the documented list. */
  readonly transactionResultRaw?: string;
  readonly transAmount?: number;
  readonly discount?: number;
  readonly cashAmount?: number;
  readonly endAmount?: number;
  readonly balance?: number;
  readonly transCurrency?: string;
  readonly authCode?: string;
  readonly rrn?: string;
  readonly invoiceNum?: string;
  /** 2–4 characters (the spec says 2 or 3, its example has "0000"); kept as text. */
  readonly responseCode?: string;
  readonly date?: string;
  readonly time?: string;
  readonly bankName?: string;
  /** Never trimmed: real terminals space-pad merchant ids. */
  readonly merchantId?: string;
  readonly terminalId?: string;
  /** First 6 / last 4 only. */
  readonly panMasked?: string;
  readonly cardholderName?: string;
  readonly posEntryMode?: PosEntryMode | string;
  readonly binName?: string;
  readonly parEnabled?: boolean;
  readonly parValue?: string;
  readonly errorDetails?: string;
  /** Later revision. */
  readonly transactionUid?: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const text = (v: JsonValue | undefined): string | undefined =>
  typeof v === 'string' ? (v === '' ? undefined : v) : typeof v === 'number' ? String(v) : undefined;

/** Lenient amount: absent/empty → undefined; malformed → undefined (the raw result is still usable). */
function amount(field: string, v: JsonValue | undefined): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  try {
    return amountFromWire(field, v);
  } catch {
    return undefined;
  }
}

const bool = (v: JsonValue | undefined): boolean | undefined => (v === true || v === 'true' ? true : v === false || v === 'false' ? false : undefined);

function assign<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

const AMOUNT_KEYS = ['transAmount', 'discount', 'cashAmount', 'endAmount', 'balance'] as const;
const TEXT_KEYS = [
  'originalTrnName',
  'transCurrency',
  'authCode',
  'rrn',
  'invoiceNum',
  'responseCode',
  'date',
  'time',
  'bankName',
  'merchantId',
  'terminalId',
  'binName',
  'parValue',
  'errorDetails',
  'transactionUid',
] as const;

/** Spec 5.5.1: GetLastResult response → TransactionResult. */
export function parseTransactionResult(response: SsiResponse): TransactionResult {
  const p: JsonObject = response.params ?? {};
  const out: Mutable<TransactionResult> = {
    error: response.error,
    errorCode: response.errorCode,
    errorDescription: response.errorDescription,
  };
  for (const key of AMOUNT_KEYS) assign(out, key, amount(key, p[key]));
  for (const key of TEXT_KEYS) assign(out, key, text(p[key]));
  const raw = text(p.transactionResult);
  if (raw !== undefined) {
    out.transactionResultRaw = raw;
    assign(out, 'transactionResult', normaliseTransactionResult(raw));
  }
  const pan = text(p.pan);
  if (pan !== undefined) out.panMasked = maskPan(pan);
  // Table 4.3.2 spells `cardholderName`, example 5.5.1 `cardHolderName`: accept both.
  assign(out, 'cardholderName', text(p.cardholderName) ?? text(p.cardHolderName));
  const entry = text(p.posEntryMode);
  if (entry !== undefined) out.posEntryMode = (POS_ENTRY_MODES as readonly string[]).includes(entry) ? (entry as PosEntryMode) : entry;
  assign(out, 'parEnabled', bool(p.parEnabled));
  if (out.errorDetails === undefined) assign(out, 'errorDetails', response.errorDetails);
  return out;
}

/** TransactionResult → GetLastResult `params` (the simulator's side). The PAN is already masked. */
export function encodeTransactionResultParams(result: TransactionResult): JsonObject {
  const out: JsonObject = {};
  for (const key of TEXT_KEYS) if (result[key] !== undefined) out[key] = result[key] as string;
  for (const key of AMOUNT_KEYS) if (result[key] !== undefined) out[key] = String(result[key]);
  if (result.transactionResultRaw !== undefined || result.transactionResult !== undefined) {
    out.transactionResult = (result.transactionResultRaw ?? result.transactionResult) as string;
  }
  if (result.panMasked !== undefined) out.pan = result.panMasked;
  if (result.cardholderName !== undefined) out.cardholderName = result.cardholderName;
  if (result.posEntryMode !== undefined) out.posEntryMode = result.posEntryMode;
  if (result.parEnabled !== undefined) out.parEnabled = result.parEnabled;
  return out;
}

/** Spec 5.5.4 totals; amounts in minor units. */
export interface ReportTotals {
  readonly saleCount: number;
  readonly saleAmount: number;
  readonly finAuthCount: number;
  readonly finAuthAmount: number;
  readonly refundCount: number;
  readonly refundAmount: number;
  readonly cashCount: number;
  readonly cashAmount: number;
  readonly paymentCount: number;
  readonly paymentAmount: number;
  readonly voidCount: number;
  readonly voidAmount: number;
}

export const REPORT_TOTAL_KEYS = {
  saleCount: 'totalSaleCount',
  saleAmount: 'totalSaleAmount',
  finAuthCount: 'totalFinAuthCount',
  finAuthAmount: 'totalFinAuthAmount',
  refundCount: 'totalRefundCount',
  refundAmount: 'totalRefundAmount',
  cashCount: 'totalCashCount',
  cashAmount: 'totalCashAmount',
  paymentCount: 'totalPaymentCount',
  paymentAmount: 'totalPaymentAmount',
  voidCount: 'totalVoidCount',
  voidAmount: 'totalVoidAmount',
} as const satisfies Record<keyof ReportTotals, string>;

export interface ReportTransaction {
  readonly originalTrnName?: string;
  readonly transAmount?: number;
  readonly authCode?: string;
  readonly date?: string;
  readonly time?: string;
  readonly invoiceNum?: string;
  readonly panMasked?: string;
  readonly responseCode?: string;
  readonly rrn?: string;
  readonly binName?: string;
}

/** GetLastReport (5.5.4): when error=true the totals are zeros (reconciliation failed). */
export interface TerminalReport {
  readonly error: boolean;
  readonly errorCode: string;
  readonly errorDescription: string;
  readonly totals: ReportTotals;
  readonly isBatchEmpty?: boolean;
  readonly batchNumber?: string;
  readonly responseCode?: string;
  /** Only when the report was requested with isDetailReport = true. */
  readonly transactions: readonly ReportTransaction[];
}

export function parseReport(response: SsiResponse): TerminalReport {
  const p: JsonObject = response.params ?? {};
  const totals = {} as Mutable<ReportTotals>;
  for (const [key, wire] of Object.entries(REPORT_TOTAL_KEYS) as [keyof ReportTotals, string][]) {
    totals[key] = amount(wire, p[wire]) ?? 0;
  }
  const transactions = Array.isArray(p.transactions) ? p.transactions.filter(isJsonObject).map(parseReportTransaction) : [];
  const out: Mutable<TerminalReport> = {
    error: response.error,
    errorCode: response.errorCode,
    errorDescription: response.errorDescription,
    totals,
    transactions,
  };
  assign(out, 'isBatchEmpty', bool(p.isBatchEmpty));
  assign(out, 'batchNumber', text(p.batchNumber));
  assign(out, 'responseCode', text(p.responseCode));
  return out;
}

function parseReportTransaction(p: JsonObject): ReportTransaction {
  const out: Mutable<ReportTransaction> = {};
  for (const key of ['originalTrnName', 'authCode', 'date', 'time', 'invoiceNum', 'responseCode', 'rrn', 'binName'] as const) {
    assign(out, key, text(p[key]));
  }
  assign(out, 'transAmount', amount('transAmount', p.transAmount));
  const pan = text(p.pan);
  if (pan !== undefined) out.panMasked = maskPan(pan);
  return out;
}

/** TerminalReport → GetLastReport `params` (the simulator's side). */
export function encodeReportParams(report: TerminalReport): JsonObject {
  const out: JsonObject = {
    transactions: report.transactions.map((t) => {
      const o: JsonObject = {};
      for (const [k, v] of Object.entries(t)) {
        if (v === undefined) continue;
        o[k === 'panMasked' ? 'pan' : k] = typeof v === 'number' ? String(v) : (v as string);
      }
      return o;
    }),
    responseCode: report.responseCode ?? '',
  };
  for (const [key, wire] of Object.entries(REPORT_TOTAL_KEYS) as [keyof ReportTotals, string][]) {
    out[wire] = String(report.totals[key]);
  }
  if (report.isBatchEmpty !== undefined) out.isBatchEmpty = report.isBatchEmpty;
  if (report.batchNumber !== undefined) out.batchNumber = report.batchNumber;
  return out;
}

/** Spec 5.5.5. `merchantCount` is a number in the example but n-format elsewhere: both accepted. */
export interface MerchantList {
  readonly merchantCount: number;
  /** Untrimmed (padded ids are significant). */
  readonly merchantList: readonly string[];
}

export function parseMerchantList(response: SsiResponse): MerchantList {
  const p: JsonObject = response.params ?? {};
  const merchantList = Array.isArray(p.merchantList) ? p.merchantList.filter((m): m is string => typeof m === 'string') : [];
  return { merchantCount: amount('merchantCount', p.merchantCount) ?? merchantList.length, merchantList };
}

/** Spec 5.5.2 / 5.5.6: `receipt` (renamed from `Receipt` in 1.1.0; both accepted). */
export function parseReceipt(response: SsiResponse): string {
  const p: JsonObject = response.params ?? {};
  return text(p.receipt) ?? text(p.Receipt) ?? '';
}

export interface AppInfo {
  readonly name?: string;
  readonly packageName?: string;
  readonly versionName?: string;
  readonly versionCode?: string;
  readonly firstInstallTime?: string;
  readonly lastUpdateTime?: string;
}

/** Spec 5.5.9: two documented shapes, told apart by their keys. `raw` keeps every key for diagnostics. */
export type TerminalInfo =
  | {
      readonly os: 'android';
      readonly terminalModel?: string;
      readonly terminalSerialNumber?: string;
      readonly androidVersion?: string;
      readonly sdkVersion?: string;
      readonly securityDriver?: AppInfo;
      readonly rom?: AppInfo;
      readonly currentApp?: AppInfo;
      readonly serviceApps: readonly AppInfo[];
      readonly thirdPartyApps: readonly AppInfo[];
      readonly paymentApps: readonly AppInfo[];
      readonly externalRegisterApps: readonly AppInfo[];
      readonly raw: JsonObject;
    }
  | {
      readonly os: 'linux';
      readonly model?: string;
      readonly bootVersion?: string;
      readonly devcfgVersion?: string;
      readonly osVersion?: string;
      readonly napiApiVersion?: string;
      readonly pciFwVersion?: string;
      readonly serialNumber?: string;
      readonly raw: JsonObject;
    }
  | { readonly os: 'unknown'; readonly raw: JsonObject };

function appInfo(v: JsonValue | undefined): AppInfo | undefined {
  if (!isJsonObject(v)) return undefined;
  const out: Mutable<AppInfo> = {};
  for (const key of ['name', 'packageName', 'versionName', 'versionCode', 'lastUpdateTime'] as const) assign(out, key, text(v[key]));
  // Table 4.3.2 spells `firstInsallTime`.
  assign(out, 'firstInstallTime', text(v.firstInstallTime) ?? text(v.firstInsallTime));
  return out;
}

const appList = (v: JsonValue | undefined): AppInfo[] => (Array.isArray(v) ? v.map(appInfo).filter((a): a is AppInfo => a !== undefined) : []);

export function parseTerminalInfo(response: SsiResponse): TerminalInfo {
  const p: JsonObject = response.params ?? {};
  if ('androidVersion' in p || 'paymentApps' in p || 'currentApp' in p || 'terminalSerialNumber' in p) {
    const out: Mutable<Extract<TerminalInfo, { os: 'android' }>> = {
      os: 'android',
      serviceApps: appList(p.serviceApps),
      thirdPartyApps: appList(p.thirdPartyApps),
      paymentApps: appList(p.paymentApps),
      externalRegisterApps: appList(p.externalRegisterApps),
      raw: p,
    };
    assign(out, 'terminalModel', text(p.terminalModel));
    assign(out, 'terminalSerialNumber', text(p.terminalSerialNumber));
    assign(out, 'androidVersion', text(p.androidVersion));
    assign(out, 'sdkVersion', text(p.sdkVersion));
    assign(out, 'securityDriver', appInfo(p.securityDriver));
    assign(out, 'rom', appInfo(p.rom));
    assign(out, 'currentApp', appInfo(p.currentApp));
    return out;
  }
  if ('pos_sn' in p || 'os_version' in p || 'boot_version' in p) {
    const out: Mutable<Extract<TerminalInfo, { os: 'linux' }>> = { os: 'linux', raw: p };
    assign(out, 'model', text(p.model));
    assign(out, 'bootVersion', text(p.boot_version));
    assign(out, 'devcfgVersion', text(p.devcfg_version));
    assign(out, 'osVersion', text(p.os_version));
    assign(out, 'napiApiVersion', text(p.napi_api_version));
    assign(out, 'pciFwVersion', text(p.pci_fw_version));
    assign(out, 'serialNumber', text(p.pos_sn));
    return out;
  }
  return { os: 'unknown', raw: p };
}

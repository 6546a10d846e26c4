import type { OperationStep, StringFormat } from './fields';

/**
 * Method catalogue of spec section 2 with the request keys of section 5, as a table that drives both
 * the TypeScript types and the validation in `codec.ts`. Keys marked "later revision" come from
 * ssi-ecr-notes.md and are labelled extensions.
 */

export type FieldKind = 'amount' | 'boolean' | 'url' | 'receiptXml' | StringFormat;

interface FieldSpec<K extends FieldKind = FieldKind, R extends boolean = boolean> {
  readonly kind: K;
  readonly required: R;
}
const req = <K extends FieldKind>(kind: K): FieldSpec<K, true> => ({ kind, required: true });
const opt = <K extends FieldKind>(kind: K): FieldSpec<K, false> => ({ kind, required: false });

/** Section 2 groups: decides `params` presence, the async flow and which buffer holds the result. */
export type MethodGroup = 'financial' | 'report' | 'service' | 'additional';

/** `transactionUid` (later revision) is accepted by every financial method. */
const uid = opt('uid');

export const METHODS = {
  // 2.1 / 5.2 financial operations (async: ack, GetStatus, GetLastResult)
  Purchase: {
    group: 'financial',
    params: {
      transAmount: req('amount'),
      transCurrency: req('currency'),
      merchantId: opt('merchantId'),
      terminalId: opt('text'),
      discountedAmount: opt('amount'),
      transactionUid: uid,
    },
  },
  Void: { group: 'financial', params: { invoiceNum: req('digits'), transactionUid: uid } },
  Refund: {
    group: 'financial',
    params: {
      transAmount: req('amount'),
      transCurrency: req('currency'),
      rrn: req('alnum'),
      merchantId: opt('merchantId'),
      terminalId: opt('text'),
      transactionUid: uid,
    },
  },
  CashBack: {
    group: 'financial',
    params: {
      transAmount: req('amount'),
      cashAmount: req('amount'),
      transCurrency: req('currency'),
      merchantId: opt('merchantId'),
      terminalId: opt('text'),
      transactionUid: uid,
    },
  },
  Preauthorization: {
    group: 'financial',
    params: {
      transAmount: req('amount'),
      transCurrency: req('currency'),
      merchantId: opt('merchantId'),
      terminalId: opt('text'),
      transactionUid: uid,
    },
  },
  SalePreauth: {
    group: 'financial',
    params: {
      transAmount: req('amount'),
      endAmount: req('amount'),
      transCurrency: req('currency'),
      rrn: req('alnum'),
      authCode: req('alnum'),
      merchantId: opt('merchantId'),
      terminalId: opt('text'),
      transactionUid: uid,
    },
  },
  VoidPreauth: { group: 'financial', params: { invoiceNum: req('digits'), transactionUid: uid } },
  Cash: {
    group: 'financial',
    params: {
      transAmount: req('amount'),
      transCurrency: req('currency'),
      merchantId: opt('merchantId'),
      terminalId: opt('text'),
      transactionUid: uid,
    },
  },
  Deposit: {
    group: 'financial',
    params: {
      transAmount: req('amount'),
      transCurrency: req('currency'),
      merchantId: opt('merchantId'),
      terminalId: opt('text'),
      transactionUid: uid,
    },
  },
  Balance: {
    group: 'financial',
    params: { transCurrency: req('currency'), merchantId: opt('merchantId'), terminalId: opt('text'), transactionUid: uid },
  },
  Echo: { group: 'financial', params: { merchantId: opt('merchantId'), transactionUid: uid } },
  PartialVoid: {
    group: 'financial',
    params: { invoiceNum: req('digits'), transAmount: req('amount'), transactionUid: uid },
  },
  // 2.2 / 5.3 reports (async: ack, GetStatus, GetLastReport)
  ZReport: { group: 'report', params: { merchantId: opt('merchantId'), isDetailReport: opt('boolean') } },
  XReport: { group: 'report', params: { merchantId: opt('merchantId'), isDetailReport: opt('boolean') } },
  // 2.3 / 5.4 service operations (answered at once, allowed during an operation)
  GetStatus: { group: 'service', params: {} },
  Interrupt: { group: 'service', params: {} },
  Restart: { group: 'service', params: {} },
  // 2.4 / 5.5 additional operations (answered at once, only in S00 except PingDevice)
  GetLastResult: { group: 'additional', params: {} },
  GetLastReceipt: { group: 'additional', params: {} },
  PingDevice: { group: 'additional', params: {} },
  RestartPaymentApp: { group: 'additional', params: {} },
  GetLastReport: { group: 'additional', params: {} },
  GetMerchantList: { group: 'additional', params: {} },
  GetLastReportReceipt: { group: 'additional', params: {} },
  /** `lrc` is computed by the encoder from `receipt` (spec 5.5.7) and checked by the decoder. */
  PrintXml: { group: 'additional', params: { receipt: req('receiptXml'), fontStyle: opt('text') } },
  PrintPdfUrl: { group: 'additional', params: { url: req('url') } },
  GetTerminalInfo: { group: 'additional', params: {} },
  /** Later revision: result of the operation with this `transactionUid`. */
  GetResultByUid: { group: 'additional', params: { transactionUid: req('uid') } },
  /** Later revision: merchant list with details (shape not documented; returned raw). */
  GetMerchantListDetailed: { group: 'additional', params: {} },
} as const satisfies Record<string, { group: MethodGroup; params: Record<string, FieldSpec> }>;

export type SsiMethod = keyof typeof METHODS;
type Spec<M extends SsiMethod> = (typeof METHODS)[M]['params'];
type GroupOf<M extends SsiMethod> = (typeof METHODS)[M]['group'];

export type FinancialMethod = { [M in SsiMethod]: GroupOf<M> extends 'financial' ? M : never }[SsiMethod];
export type ReportMethod = { [M in SsiMethod]: GroupOf<M> extends 'report' ? M : never }[SsiMethod];
/** Methods run through the asynchronous flow of spec section 3. */
export type AsyncMethod = FinancialMethod | ReportMethod;

type KindType<K> = K extends 'amount' ? number : K extends 'boolean' ? boolean : string;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** Typed params of a method: amounts are integer minor units, other n/an values are strings as on the wire. */
export type RequestParams<M extends SsiMethod> = Simplify<
  { readonly [K in keyof Spec<M> as Spec<M>[K] extends { required: true } ? K : never]: KindType<Spec<M>[K] extends FieldSpec<infer X> ? X : never> } & {
    readonly [K in keyof Spec<M> as Spec<M>[K] extends { required: false } ? K : never]?: KindType<Spec<M>[K] extends FieldSpec<infer X> ? X : never>;
  }
>;

type RequestOf<M extends SsiMethod> = M extends SsiMethod
  ? keyof Spec<M> extends never
    ? { readonly method: M }
    : GroupOf<M> extends 'financial'
      ? { readonly method: M; readonly params: RequestParams<M>; readonly step?: OperationStep }
      : { readonly method: M; readonly params: RequestParams<M> }
  : never;

/** A request the ECR sends, discriminated by `method`. */
export type SsiRequest<M extends SsiMethod = SsiMethod> = RequestOf<M>;

export type PurchaseParams = RequestParams<'Purchase'>;
export type VoidParams = RequestParams<'Void'>;
export type RefundParams = RequestParams<'Refund'>;
export type CashBackParams = RequestParams<'CashBack'>;
export type PreauthorizationParams = RequestParams<'Preauthorization'>;
export type SalePreauthParams = RequestParams<'SalePreauth'>;
export type VoidPreauthParams = RequestParams<'VoidPreauth'>;
export type CashParams = RequestParams<'Cash'>;
export type DepositParams = RequestParams<'Deposit'>;
export type BalanceParams = RequestParams<'Balance'>;
export type EchoParams = RequestParams<'Echo'>;
export type PartialVoidParams = RequestParams<'PartialVoid'>;
export type ReportParams = RequestParams<'ZReport'>;
export type PrintXmlParams = RequestParams<'PrintXml'>;
export type PrintPdfUrlParams = RequestParams<'PrintPdfUrl'>;

export function isSsiMethod(value: unknown): value is SsiMethod {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(METHODS, value);
}

export function methodGroup(method: SsiMethod): MethodGroup {
  return METHODS[method].group;
}

export function isFinancialMethod(method: string): method is FinancialMethod {
  return isSsiMethod(method) && METHODS[method].group === 'financial';
}

export function isReportMethod(method: string): method is ReportMethod {
  return isSsiMethod(method) && METHODS[method].group === 'report';
}

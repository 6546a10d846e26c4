/**
 * Parsing of Assist's JSON answers (Format=5) into typed values, with the checkvalue verified
 * before anything in an order is believed (spec table "Список параметров ответа").
 *
 * - tokenpay.cfm: `{"order": {…, "operations": […]}, "packetdate", "firstcode", "secondcode", "continueurl"}`;
 *   errors come as `{"firstcode", "secondcode"}` (assist-notes.md).
 * - orderstate.cfm: `{"orderstate": {ordernumber, billnumber, orderamount, ordercurrency, orderstate, checkvalue…}}`
 *   (assist-notes.md); an `order` root is accepted as well.
 *
 * Field names are matched case-insensitively (the table writes `Email`, the examples `email`).
 */
import { verifyCheckValue } from './checkvalue';
import { CONTINUE_CODES, describeCodes, firstCodeName, SECOND_CODES } from './codes';
import { isOrderState, meanTypeOf, operationStateOf, operationTypeOf, type MeanType, type OperationState, type OperationType, type OrderState } from './enums';
import { AssistIntegrityError, AssistProtocolError, AssistServerError } from './errors';
import { maskPan } from './redact';

export interface AssistOperation {
  readonly billNumber: string;
  /** `undefined` when the code is not in the spec's table; see `rawType`. */
  readonly type: OperationType | undefined;
  readonly rawType: string;
  readonly state: OperationState | undefined;
  readonly rawState: string;
  readonly amount: string;
  readonly currency: string;
  readonly clientIp: string;
  readonly ipAddress: string;
  readonly meanTypeId: number | undefined;
  readonly meanType: MeanType | undefined;
  readonly meanTypeName: string;
  readonly meanSubtype: string;
  /** Already masked by Assist; masked again (6/4) in case a full PAN ever appears. */
  readonly meanNumber: string;
  readonly cardholder: string;
  readonly issueBank: string;
  readonly bankCountry: string;
  /** `AS000` approved, `AS200` in process (assist-notes.md); other values as sent. */
  readonly responseCode: string;
  readonly message: string;
  readonly customerMessage: string;
  readonly recommendation: string;
  readonly approvalCode: string;
  readonly protocolTypeName: string;
  readonly processingName: string;
  /** `DD.MM.YYYY HH:mm:ss`, GMT. */
  readonly operationDate: string;
  /** 3-D Secure result: Y, N, A, U or empty. */
  readonly authResult: string;
  readonly authRequired: string;
  readonly slipNo: string;
}

export interface AssistOrder {
  readonly orderNumber: string;
  readonly billNumber: string;
  /**
   * `true`: the payment ran in TEST MODE — do not ship goods (spec: "необходимо проверить значение
   * параметра testmode"). `undefined` when the answer does not say (order-state answers may not).
   */
  readonly testMode: boolean | undefined;
  readonly comment: string;
  /** The server's amount string, verbatim (it is part of the checkvalue). */
  readonly amount: string;
  readonly currency: string;
  readonly state: OrderState;
  /** `DD.MM.YYYY HH:mm:ss`, GMT. */
  readonly orderDate: string;
  readonly customer: { readonly firstname: string; readonly lastname: string; readonly middlename: string; readonly email: string };
  /** The operations the answer lists (`[]` also when it carries no list: see {@link AssistOrder.operationsListed}). */
  readonly operations: readonly AssistOperation[];
  /**
   * `false` when the answer carries no `operations` field at all (assist-notes.md describes orderstate's answer without
   * one): `operations` is then empty because nothing was listed, not because the order has no operations, and no
   * operation may be concluded missing from it (`findOperation`). The parsers always set it; an order built by hand
   * without it counts as listing its operations.
   */
  readonly operationsListed?: boolean;
}

export type AssistAnswer =
  | { readonly kind: 'order'; readonly order: AssistOrder; readonly packetDate: string | undefined }
  /** 3 / 115 + continueurl: non-tokenized Google Pay card, the payer must enter CVC2 / pass 3-D Secure. */
  | { readonly kind: 'continue'; readonly order: AssistOrder; readonly continueUrl: string; readonly packetDate: string | undefined }
  | { readonly kind: 'error'; readonly error: AssistServerError };

/**
 * Checks an order's `signature`: the spec's X (merchant_id + ordernumber + orderamount + ordercurrency +
 * orderstate) signed by Assist, base64. Returns false for a bad one; must not throw.
 */
export type AnswerSignatureVerifier = (x: string, signatureBase64: string) => boolean;

export interface VerifyContext {
  readonly merchantId: string;
  readonly salt: string;
  /** When set, an order without a valid `signature` is not trusted (AssistIntegrityError). */
  readonly verifySignature?: AnswerSignatureVerifier | undefined;
}

type Fields = ReadonlyMap<string, unknown>;

/** @throws AssistProtocolError on an unreadable answer, AssistIntegrityError on a failed checkvalue. */
export function parseTokenPayResponse(body: string, ctx: VerifyContext): AssistAnswer {
  const root = parseRoot(body);
  const codes = readCodes(root);
  const orderFields = objectField(root, 'order');
  if (codes && codes.firstCode !== 0) {
    const isContinue = codes.firstCode === CONTINUE_CODES.firstCode && codes.secondCode === CONTINUE_CODES.secondCode;
    const continueUrl = str(root, 'continueurl');
    if (isContinue && orderFields && continueUrl) {
      return { kind: 'continue', order: readOrder(orderFields, ctx), continueUrl, packetDate: optStr(root, 'packetdate') };
    }
    return { kind: 'error', error: serverError(codes.firstCode, codes.secondCode) };
  }
  if (!orderFields) throw malformed('answer has neither an order nor an error code');
  return { kind: 'order', order: readOrder(orderFields, ctx), packetDate: optStr(root, 'packetdate') };
}

/** Answer of `/orderstate/orderstate.cfm`. Same guarantees as {@link parseTokenPayResponse}. */
export function parseOrderStateResponse(body: string, ctx: VerifyContext): Exclude<AssistAnswer, { kind: 'continue' }> {
  const root = parseRoot(body);
  const codes = readCodes(root);
  if (codes && codes.firstCode !== 0) return { kind: 'error', error: serverError(codes.firstCode, codes.secondCode) };
  const orderFields = objectField(root, 'orderstate') ?? objectField(root, 'order');
  if (!orderFields) throw malformed('order-state answer has neither an order nor an error code');
  return { kind: 'order', order: readOrder(orderFields, ctx), packetDate: optStr(orderFields, 'packetdate') ?? optStr(root, 'packetdate') };
}

export function serverError(firstCode: number, secondCode: number): AssistServerError {
  return new AssistServerError(firstCode, secondCode, firstCodeName(firstCode), SECOND_CODES.get(secondCode), describeCodes(firstCode, secondCode));
}

function readOrder(o: Fields, ctx: VerifyContext): AssistOrder {
  const orderNumber = required(o, 'ordernumber');
  const amount = required(o, 'orderamount');
  const currency = required(o, 'ordercurrency');
  const rawState = required(o, 'orderstate');
  const checkValue = str(o, 'checkvalue');
  if (!checkValue) throw new AssistIntegrityError('CHECKVALUE_MISSING', 'answer carries no checkvalue; it cannot be trusted');
  const fields = { merchantId: ctx.merchantId, orderNumber, orderAmount: amount, orderCurrency: currency, orderState: rawState };
  if (!verifyCheckValue(ctx.salt, fields, checkValue)) {
    throw new AssistIntegrityError('CHECKVALUE_MISMATCH', 'checkvalue does not match the order fields; the answer is not trusted');
  }
  if (ctx.verifySignature) {
    const signature = str(o, 'signature');
    if (!signature) throw new AssistIntegrityError('SIGNATURE_MISSING', 'answer carries no signature; it cannot be trusted');
    const x = ctx.merchantId + orderNumber + amount + currency + rawState;
    if (!signatureValid(ctx.verifySignature, x, signature)) {
      throw new AssistIntegrityError('SIGNATURE_MISMATCH', 'signature does not match the order fields; the answer is not trusted');
    }
  }
  if (!isOrderState(rawState)) throw new AssistProtocolError('UNRECOGNIZED_VALUE', 'orderstate is not in the spec table');
  const operations = o.get('operations');
  if (operations !== undefined && !Array.isArray(operations)) throw malformed('operations is not an array');
  return {
    orderNumber,
    billNumber: str(o, 'billnumber'),
    testMode: readTestMode(o),
    comment: str(o, 'ordercomment'),
    amount,
    currency,
    state: rawState,
    orderDate: str(o, 'orderdate'),
    customer: { firstname: str(o, 'firstname'), lastname: str(o, 'lastname'), middlename: str(o, 'middlename'), email: str(o, 'email') },
    operations: (operations ?? []).map((op: unknown) => readOperation(asFields(op, 'operation'))),
    operationsListed: operations !== undefined,
  };
}

/** A verifier that throws counts as a failed check. */
function signatureValid(verify: AnswerSignatureVerifier, x: string, signature: string): boolean {
  try {
    return verify(x, signature);
  } catch {
    return false;
  }
}

function readOperation(o: Fields): AssistOperation {
  const rawType = str(o, 'operationtype');
  const rawState = str(o, 'operationstate');
  const meanTypeIdText = str(o, 'meantype_id');
  const meanTypeId = /^\d+$/.test(meanTypeIdText) ? Number(meanTypeIdText) : undefined;
  return {
    billNumber: str(o, 'billnumber'),
    type: operationTypeOf(rawType),
    rawType,
    state: operationStateOf(rawState),
    rawState,
    amount: str(o, 'amount'),
    currency: str(o, 'currency'),
    clientIp: str(o, 'clientip'),
    ipAddress: str(o, 'ipaddress'),
    meanTypeId,
    meanType: meanTypeId === undefined ? undefined : meanTypeOf(meanTypeId),
    meanTypeName: str(o, 'meantypename'),
    meanSubtype: str(o, 'meansubtype'),
    meanNumber: maskPan(str(o, 'meannumber')),
    cardholder: str(o, 'cardholder'),
    issueBank: str(o, 'issuebank'),
    bankCountry: str(o, 'bankcountry'),
    responseCode: str(o, 'responsecode'),
    message: str(o, 'message'),
    customerMessage: str(o, 'customermessage'),
    recommendation: str(o, 'recommendation'),
    approvalCode: str(o, 'approvalcode'),
    protocolTypeName: str(o, 'protocoltypename'),
    processingName: str(o, 'processingname'),
    operationDate: str(o, 'operationdate'),
    authResult: str(o, 'authresult'),
    authRequired: str(o, 'authrequired'),
    slipNo: str(o, 'slipno'),
  };
}

function readTestMode(o: Fields): boolean | undefined {
  const value = optStr(o, 'testmode');
  if (value === undefined || value === '') return undefined;
  if (value === '1') return true;
  if (value === '0') return false;
  throw new AssistProtocolError('UNRECOGNIZED_VALUE', 'testmode is neither 0 nor 1');
}

function readCodes(root: Fields): { firstCode: number; secondCode: number } | undefined {
  const first = optStr(root, 'firstcode');
  if (first === undefined || first === '') return undefined;
  const second = optStr(root, 'secondcode') ?? '0';
  if (!/^\d+$/.test(first) || !/^\d+$/.test(second)) throw malformed('firstcode/secondcode are not numbers');
  return { firstCode: Number(first), secondCode: Number(second) };
}

function parseRoot(body: string): Fields {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw malformed('answer is not JSON');
  }
  return asFields(value, 'answer');
}

function asFields(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  return new Map(Object.entries(value).map(([k, v]) => [k.toLowerCase(), v]));
}

function objectField(o: Fields, key: string): Fields | undefined {
  const value = o.get(key);
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? asFields(value, key) : undefined;
}

function optStr(o: Fields, key: string): string | undefined {
  const value = o.get(key);
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (value === undefined || value === null) return undefined;
  throw malformed(`${key} is not a string`);
}

function str(o: Fields, key: string): string {
  return optStr(o, key) ?? '';
}

function required(o: Fields, key: string): string {
  const value = optStr(o, key);
  if (!value) throw malformed(`${key} is missing`);
  return value;
}

function malformed(message: string): AssistProtocolError {
  return new AssistProtocolError('MALFORMED_RESPONSE', message);
}

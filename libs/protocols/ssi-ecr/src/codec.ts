import { isTerminalStatus, type TerminalStatus } from './codes';
import { SsiEcrError } from './errors';
import { amountFromWire, amountToWire, checkBoolean, checkReceiptXml, checkString, checkUrl, invalid, stepFromWire } from './fields';
import { encodeFrame, type RawFrame } from './framing';
import { isJsonObject, parseJsonData, serialiseJsonData, type JsonObject, type JsonValue } from './json';
import { xorLrc } from './lrc';
import { METHODS, isSsiMethod, type FieldKind, type SsiMethod, type SsiRequest } from './messages';

const utf8 = new TextEncoder();

/** Frame DATA → JSON object (E03 on failure). */
export function decodeMessage(frame: RawFrame): JsonObject {
  return parseJsonData(frame.data);
}

/** JSON object → complete frame. */
export function encodeMessage(message: JsonObject): Uint8Array {
  return encodeFrame(serialiseJsonData(message));
}

/**
 * Spec 5.5.7: `lrc` of PrintXml is the XOR of the UTF-8 bytes of `receipt`. The document does not say how
 * the byte is written; we send it as an unsigned decimal string ("26" in the example) and accept
 * decimal (signed, as Kotlin's Byte prints it, or unsigned) and 0x-prefixed hex (see docs/protocols/ssi-ecr.md).
 */
export function receiptLrc(receipt: string): number {
  return xorLrc(utf8.encode(receipt));
}

function receiptLrcMatches(wire: JsonValue | undefined, expected: number): boolean {
  if (typeof wire === 'number') return (wire & 0xff) === expected;
  if (typeof wire !== 'string') return false;
  if (/^-?\d{1,3}$/.test(wire)) return (Number(wire) & 0xff) === expected;
  if (/^0x[0-9a-fA-F]{1,2}$/.test(wire)) return parseInt(wire.slice(2), 16) === expected;
  return false;
}

function encodeField(field: string, kind: FieldKind, value: unknown): JsonValue {
  if (kind === 'amount') return amountToWire(field, value as number);
  if (kind === 'boolean') return checkBoolean(field, value);
  return decodeStringField(field, kind, value);
}

function decodeStringField(field: string, kind: Exclude<FieldKind, 'amount' | 'boolean'>, value: unknown): string {
  if (kind === 'url') return checkUrl(field, value);
  if (kind === 'receiptXml') return checkReceiptXml(field, value);
  return checkString(field, kind, value);
}

function decodeField(field: string, kind: FieldKind, value: JsonValue): JsonValue {
  if (kind === 'amount') return amountFromWire(field, value);
  if (kind === 'boolean') return checkBoolean(field, value);
  return decodeStringField(field, kind, value);
}

/** [spec 5.1] cross-field rule: a discounted amount cannot exceed the amount it discounts. */
function checkCrossFields(method: SsiMethod, params: Record<string, unknown>): void {
  if (method === 'Purchase' && typeof params.discountedAmount === 'number' && typeof params.transAmount === 'number') {
    if (params.discountedAmount > params.transAmount) throw invalid('discountedAmount', 'must not exceed transAmount');
  }
}

/**
 * Typed request → wire JSON (spec section 5). Amounts become digit strings; `params` is always present
 * for financial and report methods (spec 4.3.5); `step` is sent as a digit string (later revision);
 * PrintXml gets its `lrc`. Throws INVALID_FIELD / MISSING_FIELD on invalid input.
 */
export function encodeRequest(request: SsiRequest): JsonObject {
  const spec = METHODS[request.method];
  const out: JsonObject = { method: request.method };
  const given = ('params' in request ? request.params : {}) as Record<string, unknown>;
  const fields = Object.entries(spec.params) as [string, { kind: FieldKind; required: boolean }][];
  if (fields.length > 0 || spec.group === 'financial' || spec.group === 'report') {
    const params: JsonObject = {};
    for (const [field, { kind, required }] of fields) {
      const value = given[field];
      if (value === undefined) {
        if (required) throw new SsiEcrError('MISSING_FIELD', `${field} is required for ${request.method}`, { reply: 'E04', field });
        continue;
      }
      params[field] = encodeField(field, kind, value);
    }
    checkCrossFields(request.method, given);
    if (request.method === 'PrintXml') params.lrc = String(receiptLrc(params.receipt as string));
    out.params = params;
  }
  if ('step' in request && request.step !== undefined) out.step = String(stepFromWire(request.step));
  return out;
}

/**
 * Wire JSON → typed request (the terminal's side; used by the simulator and the CLI). Follows the
 * terminal's reactions: no/unknown method → E04/E05, missing key → E04, bad format → E09.
 * Unknown keys are ignored (spec 1.2).
 */
export function decodeRequest(message: JsonObject): SsiRequest {
  const method = message.method;
  if (method === undefined) throw new SsiEcrError('MISSING_FIELD', 'method is missing', { reply: 'E04', field: 'method' });
  if (!isSsiMethod(method)) {
    throw new SsiEcrError('UNKNOWN_METHOD', `unknown method ${JSON.stringify(method).slice(0, 64)}`, { reply: 'E05', field: 'method' });
  }
  const spec = METHODS[method];
  const fields = Object.entries(spec.params) as [string, { kind: FieldKind; required: boolean }][];
  const result: Record<string, unknown> = { method };
  const needsParams = fields.some(([, f]) => f.required) || spec.group === 'financial' || spec.group === 'report';
  const wireParams = message.params;
  if (wireParams !== undefined && !isJsonObject(wireParams)) throw invalid('params', 'must be an object');
  if (needsParams && wireParams === undefined) {
    throw new SsiEcrError('MISSING_FIELD', `params is required for ${method}`, { reply: 'E04', field: 'params' });
  }
  if (fields.length > 0) {
    const params: Record<string, unknown> = {};
    for (const [field, { kind, required }] of fields) {
      const value = wireParams?.[field];
      if (value === undefined) {
        if (required) throw new SsiEcrError('MISSING_FIELD', `${field} is required for ${method}`, { reply: 'E04', field });
        continue;
      }
      params[field] = decodeField(field, kind, value);
    }
    checkCrossFields(method, params);
    if (method === 'PrintXml' && !receiptLrcMatches(wireParams?.lrc, receiptLrc(params.receipt as string))) {
      throw invalid('lrc', 'does not match the LRC of receipt');
    }
    result.params = params;
  }
  if (spec.group === 'financial' && message.step !== undefined) result.step = stepFromWire(message.step);
  return result as unknown as SsiRequest;
}

/**
 * Response envelope of spec 4.3.5 / 5.1. `status` is at the top level (5.4.1 example); `details` may be
 * top level or inside `params` (5.1 example) and is lifted here.
 */
export interface SsiResponse {
  readonly method: string;
  readonly error: boolean;
  /** "" on success, E00–E99 otherwise. */
  readonly errorCode: string;
  readonly errorDescription: string;
  readonly status?: TerminalStatus;
  readonly details?: string;
  /** E09: the key at fault (spec 4.3.1). */
  readonly errorParams?: string;
  readonly errorDetails?: string;
  readonly params?: JsonObject;
}

const optionalText = (v: JsonValue | undefined): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);

/** Wire JSON → response envelope. Throws UNEXPECTED_RESPONSE when the mandatory keys are unusable. */
export function decodeResponse(message: JsonObject): SsiResponse {
  const { method, error } = message;
  if (typeof method !== 'string') throw unexpected('response has no method');
  const isError = error === true || error === 'true' ? true : error === false || error === 'false' ? false : undefined;
  if (isError === undefined) throw unexpected(`${method} response has no boolean error`);
  const params = isJsonObject(message.params) ? message.params : undefined;
  const status = message.status ?? params?.status;
  const response: {
    -readonly [K in keyof SsiResponse]: SsiResponse[K];
  } = {
    method,
    error: isError,
    errorCode: optionalText(message.errorCode) ?? '',
    errorDescription: optionalText(message.errorDescription) ?? '',
  };
  if (isTerminalStatus(status)) response.status = status;
  const details = optionalText(message.details) ?? optionalText(params?.details);
  if (details !== undefined) response.details = details;
  const errorParams = optionalText(message.errorParams) ?? optionalText(params?.errorParams);
  if (errorParams !== undefined) response.errorParams = errorParams;
  const errorDetails = optionalText(message.errorDetails);
  if (errorDetails !== undefined) response.errorDetails = errorDetails;
  if (params !== undefined) response.params = params;
  return response;
}

/** Response envelope → wire JSON, in the key order of the spec examples. */
export function encodeResponse(response: SsiResponse): JsonObject {
  const out: JsonObject = {
    method: response.method,
    error: response.error,
    errorCode: response.errorCode,
    errorDescription: response.errorDescription,
  };
  if (response.status !== undefined) out.status = response.status;
  if (response.errorParams !== undefined) out.errorParams = response.errorParams;
  if (response.errorDetails !== undefined) out.errorDetails = response.errorDetails;
  if (response.details !== undefined || response.params !== undefined) {
    out.params = { ...(response.params ?? {}) };
    if (response.details !== undefined) out.params.details = response.details;
  }
  return out;
}

function unexpected(message: string): SsiEcrError {
  return new SsiEcrError('UNEXPECTED_RESPONSE', message);
}

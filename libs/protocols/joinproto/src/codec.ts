import { COMMANDS, commandByCode, type CommandName, type Direction, senderOf } from './commands';
import { JoinprotoError, type JoinprotoErrorCode, type JoinprotoErrorDetails } from './errors';
import { encodeFrame } from './framing';
import type { Message, MessageType } from './messages';
import { maskPan } from './pan';
import { checkTagValue } from './tags';
import { decodeTlvs, encodeTlvs, MAX_TLV_VALUE_BYTES, type Tlv } from './tlv';

/** [tag, field name, required] */
type FieldSpec = readonly [tag: string, field: string, required: boolean];

interface MessageSchema {
  /** The command whose DF00 the message carries; null for ErrorResponse, whose DF00 is a raw field. */
  readonly command: CommandName | null;
  readonly fields: readonly FieldSpec[];
  /** At least one field of each group must be present, e.g. a relay answer has data or an error. */
  readonly oneOf?: readonly (readonly string[])[];
}

const ID: FieldSpec = ['DF01', 'id', true];
const DEPARTMENT: FieldSpec = ['DF0C', 'department', false];
const AMOUNT: FieldSpec = ['DF05', 'amount', true];
const CODE: FieldSpec = ['DF16', 'responseCode', true];
const OPTIONAL_CODE: FieldSpec = ['DF16', 'responseCode', false];
const TEXT: FieldSpec = ['DF1A', 'message', false];
const CONNECTION: FieldSpec = ['DF23', 'connectionId', true];

/** Fields of a terminal's answer to a bank command: the union of every example of spec 5. */
const BANK_RESULT: readonly FieldSpec[] = [
  ID,
  ['DF04', 'maskedPan', false],
  ['DF05', 'amount', false],
  ['DF07', 'authCode', false],
  ['DF0A', 'receipt', false],
  ['DF0B', 'cashback', false],
  ['DF10', 'receiptNo', false],
  ['DF12', 'shiftNo', false],
  ['DF13', 'merchantId', false],
  ['DF15', 'terminalId', false],
  CODE,
  ['DF19', 'time', false],
  TEXT,
  ['DF2B', 'rrn', false],
  ['DF2C', 'date', false],
];
const BARE: readonly FieldSpec[] = [ID];
const SERVICE_RESULT: readonly FieldSpec[] = [ID, CODE, TEXT];
const OPTIONAL_RESULT: readonly FieldSpec[] = [ID, OPTIONAL_CODE, TEXT];

function bank<C extends CommandName>(command: C, request: readonly FieldSpec[]): Record<`${C}Request` | `${C}Response`, MessageSchema> {
  return {
    [`${command}Request`]: { command, fields: request },
    [`${command}Response`]: { command, fields: BANK_RESULT },
  } as unknown as Record<`${C}Request` | `${C}Response`, MessageSchema>;
}

/** Message shapes per spec section; keys are message types. */
const SCHEMAS: Readonly<Record<MessageType, MessageSchema>> = {
  ...bank('Purchase', [ID, AMOUNT, ['DF0B', 'cashback', false], DEPARTMENT]),
  ...bank('Preauth', [ID, AMOUNT, DEPARTMENT]),
  ...bank('Completion', [ID, AMOUNT, DEPARTMENT, ['DF2B', 'rrn', true]]),
  ...bank('Cancel', [ID, DEPARTMENT, ['DF2B', 'rrn', true]]),
  ...bank('Refund', [ID, AMOUNT, ['DF06', 'originalReceiptNo', false], ['DF08', 'originalRrn', false], ['DF09', 'originalDate', false], DEPARTMENT]),
  ...bank('CashAdvance', [ID, AMOUNT, DEPARTMENT]),
  ...bank('CashDeposit', [ID, AMOUNT, DEPARTMENT]),
  ...bank('CloseDay', [ID, DEPARTMENT]),
  ...bank('Balance', [ID, DEPARTMENT]),
  ...bank('PinChange', [ID, DEPARTMENT]),
  ...bank('LoadKeys', [ID, DEPARTMENT]),
  CardCheckRequest: { command: 'CardCheck', fields: [ID, ['DF04', 'maskedPan', true], ['DF2C', 'date', false]] },
  CardCheckResponse: { command: 'CardCheck', fields: SERVICE_RESULT },
  LoadConfigRequest: { command: 'LoadConfig', fields: BARE },
  LoadConfigResponse: { command: 'LoadConfig', fields: SERVICE_RESULT },
  UpdateAppRequest: { command: 'UpdateApp', fields: BARE },
  UpdateAppResponse: { command: 'UpdateApp', fields: SERVICE_RESULT },
  UploadLogsRequest: { command: 'UploadLogs', fields: BARE },
  UploadLogsResponse: { command: 'UploadLogs', fields: [...OPTIONAL_RESULT, ['DF24', 'data', false]], oneOf: [['data', 'responseCode']] },
  InterruptRequest: { command: 'Interrupt', fields: BARE },
  InterruptResponse: { command: 'Interrupt', fields: OPTIONAL_RESULT },
  RepeatRequest: { command: 'Repeat', fields: BARE },
  RepeatResponse: { command: 'Repeat', fields: [CODE, TEXT] },
  EchoRequest: { command: 'Echo', fields: BARE },
  EchoResponse: { command: 'Echo', fields: BARE },
  OpenConnectionRequest: { command: 'OpenConnection', fields: [ID, ['DF21', 'protocol', true], ['DF22', 'address', true]] },
  OpenConnectionResponse: {
    command: 'OpenConnection',
    fields: [...OPTIONAL_RESULT, ['DF23', 'connectionId', false]],
    oneOf: [['connectionId', 'responseCode']],
  },
  SendDataRequest: { command: 'SendData', fields: [ID, CONNECTION, ['DF24', 'data', true]] },
  SendDataResponse: { command: 'SendData', fields: [...OPTIONAL_RESULT, ['DF25', 'sentBytes', false]], oneOf: [['sentBytes', 'responseCode']] },
  ReceiveDataRequest: { command: 'ReceiveData', fields: [ID, CONNECTION, ['DF25', 'maxBytes', true]] },
  ReceiveDataResponse: { command: 'ReceiveData', fields: [...OPTIONAL_RESULT, ['DF24', 'data', false]], oneOf: [['data', 'responseCode']] },
  CloseConnectionRequest: { command: 'CloseConnection', fields: [ID, CONNECTION] },
  CloseConnectionResponse: { command: 'CloseConnection', fields: BARE },
  ErrorResponse: { command: null, fields: [['DF00', 'command', false], ['DF01', 'id', false], CODE, TEXT] },
};

const AMOUNT_TAGS = new Set(['DF05', 'DF0B']);
const COUNT_TAGS = new Set(['DF25']);
const BINARY_TAGS = new Set(['DF0A', 'DF24']);
/** [JP-4.8.2] Only DF24 may repeat; its chunks are concatenated in order. */
const REPEATABLE_TAGS = new Set(['DF24']);
/** Largest amount DF05/DF0B can carry: 12 digits. */
export const MAX_AMOUNT = 999_999_999_999;

export interface EncodeOptions {
  /** Split DF24 data into chunks of at most this many bytes (default and maximum: 65 535, the TLV limit). */
  readonly dataChunkBytes?: number;
}

/** The command a message type belongs to (undefined for ErrorResponse). */
export function commandOfType(type: MessageType): CommandName | undefined {
  return SCHEMAS[type].command ?? undefined;
}

/**
 * DATA → typed message. `direction` tells who sent it: a request and its answer can carry the same tags
 * (99, 90), and the initiator of the command decides which is which.
 * Throws JoinprotoError; `reply` and `details.command` / `details.id` tell the receiver how to answer.
 */
export function decodeMessage(data: Uint8Array, direction: Direction): Message {
  const tlvs = decodeTlvs(data);
  const raw = collect(tlvs);
  const context: JoinprotoErrorDetails = { command: readAscii(raw.get('DF00')?.[0]), id: readAscii(raw.get('DF01')?.[0]) };
  const fail = (code: JoinprotoErrorCode, message: string, details: JoinprotoErrorDetails = {}): never => {
    throw new JoinprotoError(code, message, { ...context, ...details });
  };

  for (const tlv of tlvs) {
    try {
      checkTagValue(tlv.tag, tlv.value);
    } catch (error) {
      if (error instanceof JoinprotoError) fail(error.code, error.message, error.details);
      throw error;
    }
  }
  for (const [tag, values] of raw) {
    if (values.length > 1 && !REPEATABLE_TAGS.has(tag)) fail('DUPLICATE_TAG', `${tag} appears ${values.length} times`, { tag });
  }

  const type = resolveType(raw, direction, fail);
  const schema = SCHEMAS[type];
  const message: Record<string, unknown> = { type };
  for (const [tag, field, required] of schema.fields) {
    const values = raw.get(tag);
    if (values === undefined) {
      if (required) fail('MISSING_TAG', `${type} requires ${tag}`, { tag });
      continue;
    }
    message[field] = fromWire(tag, values);
  }
  for (const group of schema.oneOf ?? []) {
    if (!group.some((field) => message[field] !== undefined)) {
      fail('MISSING_TAG', `${type} requires one of ${group.join(', ')}`);
    }
  }
  return message as unknown as Message;
}

/** Typed message → DATA, tags in ascending order (the order of every spec example). Validates every value. */
export function encodeMessage(message: Message, options: EncodeOptions = {}): Uint8Array {
  const schema = SCHEMAS[message.type] as MessageSchema | undefined;
  if (schema === undefined) throw new JoinprotoError('INVALID_MESSAGE', `unknown message type "${String(message.type)}"`);
  const chunkBytes = options.dataChunkBytes ?? MAX_TLV_VALUE_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_TLV_VALUE_BYTES) {
    throw new JoinprotoError('INVALID_MESSAGE', `dataChunkBytes must be 1..${MAX_TLV_VALUE_BYTES}`);
  }
  const fields = message as unknown as Record<string, unknown>;
  const tlvs: Tlv[] = [];
  if (schema.command !== null) tlvs.push({ tag: 'DF00', value: ascii(COMMANDS[schema.command].code) });
  for (const [tag, field, required] of schema.fields) {
    const value = fields[field];
    if (value === undefined) {
      if (required) throw new JoinprotoError('MISSING_TAG', `${message.type}.${field} (${tag}) is required`, { tag });
      continue;
    }
    for (const bytes of toWire(tag, field, value, chunkBytes)) {
      checkTagValue(tag, bytes);
      tlvs.push({ tag, value: bytes });
    }
  }
  for (const group of schema.oneOf ?? []) {
    if (!group.some((field) => fields[field] !== undefined)) {
      throw new JoinprotoError('MISSING_TAG', `${message.type} requires one of ${group.join(', ')}`);
    }
  }
  tlvs.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  return encodeTlvs(tlvs);
}

/** Typed message → complete frame STX DATA ETX LRC. */
export function encodeMessageFrame(message: Message, options?: EncodeOptions): Uint8Array {
  return encodeFrame(encodeMessage(message, options));
}

function resolveType(
  raw: ReadonlyMap<string, Uint8Array[]>,
  direction: Direction,
  fail: (code: JoinprotoErrorCode, message: string, details?: JoinprotoErrorDetails) => never,
): MessageType {
  const commandCode = raw.get('DF00')?.[0];
  if (commandCode === undefined) {
    // [JP-3] a frame without DF00 is only valid as the `XX other err` answer.
    if (raw.has('DF16')) return 'ErrorResponse';
    return fail('MISSING_TAG', 'DF00 (command type) is missing', { tag: 'DF00' });
  }
  const code = readAscii(commandCode) ?? '';
  const command = commandByCode(code);
  if (command === undefined) {
    // [JP-3] an unknown command: the `XX UNKNOWN COMMAND` answer echoes DF00/DF01; a request gets that answer.
    if (raw.has('DF16')) return 'ErrorResponse';
    return fail('UNKNOWN_COMMAND', `unknown command ${code}`, { reply: 'UNKNOWN COMMAND' });
  }
  const role = COMMANDS[command].initiator === senderOf(direction) ? 'Request' : 'Response';
  return `${command}${role}` as MessageType;
}

function collect(tlvs: readonly Tlv[]): Map<string, Uint8Array[]> {
  const map = new Map<string, Uint8Array[]>();
  for (const tlv of tlvs) {
    const list = map.get(tlv.tag);
    if (list === undefined) map.set(tlv.tag, [tlv.value]);
    else list.push(tlv.value);
  }
  return map;
}

function fromWire(tag: string, values: readonly Uint8Array[]): unknown {
  if (BINARY_TAGS.has(tag)) return concat(values);
  const text = readAscii(values[0]) ?? '';
  if (AMOUNT_TAGS.has(tag) || COUNT_TAGS.has(tag)) return Number(text);
  if (tag === 'DF04') return maskPan(text);
  return text;
}

function toWire(tag: string, field: string, value: unknown, chunkBytes: number): Uint8Array[] {
  if (BINARY_TAGS.has(tag)) {
    if (!(value instanceof Uint8Array)) throw invalid(field, 'bytes (Uint8Array)');
    if (tag !== 'DF24' || value.length <= chunkBytes) return [value];
    const chunks: Uint8Array[] = [];
    for (let offset = 0; offset < value.length; offset += chunkBytes) chunks.push(value.subarray(offset, offset + chunkBytes));
    return chunks;
  }
  if (AMOUNT_TAGS.has(tag)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_AMOUNT) {
      throw invalid(field, `an integer amount in minor units 0..${MAX_AMOUNT}`);
    }
    return [ascii(String(value).padStart(12, '0'))];
  }
  if (COUNT_TAGS.has(tag)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalid(field, 'a non-negative integer');
    return [ascii(String(value))];
  }
  if (typeof value !== 'string') throw invalid(field, 'a string');
  // [JP-2-TAG] string tags are ASCII; refusing other characters keeps latin1 from silently mangling them.
  if (!/^[\x00-\x7f]*$/.test(value)) throw new JoinprotoError('BAD_TAG_FORMAT', `${field} (${tag}) must be ASCII`, { tag });
  return [ascii(tag === 'DF04' ? maskPan(value) : value)];
}

function invalid(field: string, expected: string): JoinprotoError {
  return new JoinprotoError('INVALID_MESSAGE', `${field} must be ${expected}`);
}

function ascii(text: string): Uint8Array {
  return Buffer.from(text, 'latin1');
}

/** ASCII text of a value, or undefined when absent or not printable (so it can be echoed safely). */
function readAscii(value: Uint8Array | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1');
  return /^[\x20-\x7e]*$/.test(text) ? text : undefined;
}

function concat(values: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(values.reduce((sum, value) => sum + value.length, 0));
  let offset = 0;
  for (const value of values) {
    out.set(value, offset);
    offset += value.length;
  }
  return out;
}

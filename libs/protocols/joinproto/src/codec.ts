import { COMMANDS, type CommandName, type Direction, senderOf } from './commands';
import { JoinprotoError, type JoinprotoErrorCode, type JoinprotoErrorDetails } from './errors';
import { encodeFrame } from './framing';
import type { Message, MessageType } from './messages';
import { maskPan } from './pan';
import { checkTagBytes, checkTagValue } from './tags';
import { encodeTlvs, MAX_TLV_VALUE_BYTES, type Tlv, TLV_HEADER_BYTES } from './tlv';

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

/** Message shapes, for the reference decoder of the property tests (testing/reference-codec.ts); not exported by the package. */
export const MESSAGE_SCHEMAS = SCHEMAS;

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
 *
 * One walk over DATA records each TLV's tag and bounds in reused scratch arrays; values are checked
 * in place and read straight into the message: no TLV objects, no per-tag copies or maps (bench/joinproto).
 * Binary values (DF0A, a single DF24 chunk) are views into `data`; repeated DF24 chunks are joined in a new array.
 * testing/reference-codec.ts keeps the former decoder; a property test holds this one to it.
 */
export function decodeMessage(data: Uint8Array, direction: Direction): Message {
  const count = walkTlvs(data);
  try {
    return buildMessage(data, count, direction);
  } finally {
    for (let i = 0; i < count; i++) {
      const low = scratch.tags[i] & 0xff;
      dfFirst[low] = -1;
      dfCount[low] = 0;
    }
  }
}

/** Per TLV i < count: tag (two bytes), value start and end in DATA. Grown as needed, never shrunk (≤ maxFrameBytes / 4). */
const scratch = { tags: new Uint16Array(64), starts: new Int32Array(64), ends: new Int32Array(64) };
/** For `DFxx` tags by low byte: index of the first occurrence (-1: none) and the count; reset after each message. */
const dfFirst = new Int32Array(256).fill(-1);
const dfCount = new Int32Array(256);

function tagName(code: number): string {
  return code.toString(16).toUpperCase().padStart(4, '0');
}

/** [JP-2-TLV] Splits DATA into TLVs (order and repeated tags kept). Throws TRUNCATED_TLV past the end. */
function walkTlvs(data: Uint8Array): number {
  let count = 0;
  let offset = 0;
  while (offset < data.length) {
    if (offset + TLV_HEADER_BYTES > data.length) {
      throw new JoinprotoError('TRUNCATED_TLV', `TLV header truncated at offset ${offset}`, { offset });
    }
    const code = (data[offset] << 8) | data[offset + 1];
    const length = (data[offset + 2] << 8) | data[offset + 3];
    const start = offset + TLV_HEADER_BYTES;
    if (start + length > data.length) {
      const tag = tagName(code);
      throw new JoinprotoError('TRUNCATED_TLV', `${tag} declares ${length} bytes, ${data.length - start} left`, { offset, tag });
    }
    if (count === scratch.tags.length) growScratch();
    scratch.tags[count] = code;
    scratch.starts[count] = start;
    scratch.ends[count] = start + length;
    count += 1;
    offset = start + length;
  }
  return count;
}

function growScratch(): void {
  const size = scratch.tags.length * 2;
  const tags = new Uint16Array(size);
  const starts = new Int32Array(size);
  const ends = new Int32Array(size);
  tags.set(scratch.tags);
  starts.set(scratch.starts);
  ends.set(scratch.ends);
  Object.assign(scratch, { tags, starts, ends });
}

const DF = 0xdf;
/** DATA up to this size is decoded to text in one call (a receipt-bearing answer is ~600 bytes; a relay chunk is not). */
const WHOLE_TEXT_UP_TO = 1024;

type Writable = Record<string, unknown>;

/**
 * A field of a schema, prepared once per message type: the tag's low byte, how its value is read, and a
 * named-property store (a keyed store with a varying name is megamorphic: 5× slower in the profile).
 */
interface CompiledField {
  readonly tag: string;
  readonly low: number;
  readonly field: string;
  readonly required: boolean;
  readonly kind: 'binary' | 'number' | 'pan' | 'text';
  readonly set: (message: Writable, value: unknown) => void;
}

const SETTERS: Readonly<Record<string, (message: Writable, value: unknown) => void>> = {
  address: (m, v) => (m.address = v),
  amount: (m, v) => (m.amount = v),
  authCode: (m, v) => (m.authCode = v),
  cashback: (m, v) => (m.cashback = v),
  command: (m, v) => (m.command = v),
  connectionId: (m, v) => (m.connectionId = v),
  data: (m, v) => (m.data = v),
  date: (m, v) => (m.date = v),
  department: (m, v) => (m.department = v),
  id: (m, v) => (m.id = v),
  maskedPan: (m, v) => (m.maskedPan = v),
  maxBytes: (m, v) => (m.maxBytes = v),
  merchantId: (m, v) => (m.merchantId = v),
  message: (m, v) => (m.message = v),
  originalDate: (m, v) => (m.originalDate = v),
  originalReceiptNo: (m, v) => (m.originalReceiptNo = v),
  originalRrn: (m, v) => (m.originalRrn = v),
  protocol: (m, v) => (m.protocol = v),
  receipt: (m, v) => (m.receipt = v),
  receiptNo: (m, v) => (m.receiptNo = v),
  responseCode: (m, v) => (m.responseCode = v),
  rrn: (m, v) => (m.rrn = v),
  sentBytes: (m, v) => (m.sentBytes = v),
  shiftNo: (m, v) => (m.shiftNo = v),
  terminalId: (m, v) => (m.terminalId = v),
  time: (m, v) => (m.time = v),
};

const COMPILED = new Map<MessageType, readonly CompiledField[]>();

function compiledFields(type: MessageType): readonly CompiledField[] {
  let fields = COMPILED.get(type);
  if (fields === undefined) {
    fields = SCHEMAS[type].fields.map(([tag, field, required]): CompiledField => ({
      tag,
      low: parseInt(tag.slice(2), 16),
      field,
      required,
      kind: BINARY_TAGS.has(tag) ? 'binary' : AMOUNT_TAGS.has(tag) || COUNT_TAGS.has(tag) ? 'number' : tag === 'DF04' ? 'pan' : 'text',
      set: SETTERS[field] ?? ((m, v) => (m[field] = v)),
    }));
    COMPILED.set(type, fields);
  }
  return fields;
}

function buildMessage(data: Uint8Array, count: number, direction: Direction): Message {
  const { tags, starts, ends } = scratch;
  /** Counts of tags outside `DFxx` (none in the spec's table; only malformed or foreign frames carry them). */
  let others: Map<number, number> | undefined;
  for (let i = 0; i < count; i++) {
    const code = tags[i];
    if (code >> 8 === DF) {
      const low = code & 0xff;
      if (dfFirst[low] < 0) dfFirst[low] = i;
      dfCount[low] += 1;
    } else {
      others ??= new Map();
      others.set(code, (others.get(code) ?? 0) + 1);
    }
  }
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // A short DATA is read as one latin1 string (one native call) and sliced: byte offsets are string offsets.
  const whole = data.length <= WHOLE_TEXT_UP_TO ? bytes.toString('latin1') : undefined;
  const text = (i: number): string => (whole === undefined ? bytes.toString('latin1', starts[i], ends[i]) : whole.slice(starts[i], ends[i]));
  const context: JoinprotoErrorDetails = { command: printable(data, text, dfFirst[0x00]), id: printable(data, text, dfFirst[0x01]) };
  const fail = (code: JoinprotoErrorCode, message: string, details: JoinprotoErrorDetails = {}): never => failWith(context, code, message, details);

  for (let i = 0; i < count; i++) {
    try {
      checkTagBytes(tags[i] >> 8, tags[i] & 0xff, data, starts[i], ends[i]);
    } catch (error) {
      if (error instanceof JoinprotoError) fail(error.code, error.message, error.details);
      throw error;
    }
  }
  // [JP-4.8.2] Only DF24 may repeat; tags are reported in the order they first appear.
  for (let i = 0; i < count; i++) {
    const code = tags[i];
    const isDf = code >> 8 === DF;
    if (isDf ? dfFirst[code & 0xff] !== i : indexOfTag(code, i) !== i) continue;
    const seen = isDf ? dfCount[code & 0xff] : others!.get(code)!;
    if (seen > 1 && !REPEATABLE_TAGS.has(tagName(code))) fail('DUPLICATE_TAG', `${tagName(code)} appears ${seen} times`, { tag: tagName(code) });
  }

  const type = resolveTypeAt(dfFirst[0x00] < 0 ? undefined : (context.command ?? text(dfFirst[0x00])), dfFirst[0x16] >= 0, direction, fail);
  const message: Writable = { type };
  for (const { tag, low, required, kind, set } of compiledFields(type)) {
    const at = dfFirst[low];
    if (at < 0) {
      if (required) fail('MISSING_TAG', `${type} requires ${tag}`, { tag });
      continue;
    }
    switch (kind) {
      case 'binary':
        set(message, dfCount[low] === 1 ? new Uint8Array(data.buffer, data.byteOffset + starts[at], ends[at] - starts[at]) : joinChunks(data, count, tags[at]));
        break;
      case 'number':
        set(message, Number(text(at)));
        break;
      case 'pan':
        set(message, maskPan(text(at)));
        break;
      default:
        set(message, low === 0x01 && context.id !== undefined ? context.id : text(at));
    }
  }
  for (const group of SCHEMAS[type].oneOf ?? []) {
    if (!group.some((field) => message[field] !== undefined)) {
      fail('MISSING_TAG', `${type} requires one of ${group.join(', ')}`);
    }
  }
  return message as unknown as Message;

  function indexOfTag(code: number, before: number): number {
    for (let j = 0; j < before; j++) if (tags[j] === code) return j;
    return before;
  }
}

function failWith(context: JoinprotoErrorDetails, code: JoinprotoErrorCode, message: string, details: JoinprotoErrorDetails): never {
  throw new JoinprotoError(code, message, { ...context, ...details });
}

/** The values of every TLV with this tag, in order, joined in a new array (repeated DF24 chunks). */
function joinChunks(data: Uint8Array, count: number, code: number): Uint8Array {
  const { tags, starts, ends } = scratch;
  let size = 0;
  for (let i = 0; i < count; i++) if (tags[i] === code) size += ends[i] - starts[i];
  const out = new Uint8Array(size);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (tags[i] !== code) continue;
    out.set(data.subarray(starts[i], ends[i]), offset);
    offset += ends[i] - starts[i];
  }
  return out;
}

/** ASCII text of TLV `i`, or undefined when absent (-1) or not printable (so it can be echoed safely). */
function printable(data: Uint8Array, text: (i: number) => string, i: number): string | undefined {
  if (i < 0) return undefined;
  for (let j = scratch.starts[i]; j < scratch.ends[i]; j++) if (data[j] < 0x20 || data[j] > 0x7e) return undefined;
  return text(i);
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

/** Per DF00 code: the command and its two message types (interned once: cheap Map keys downstream). */
const TYPES_BY_CODE = new Map<string, { command: CommandName; Request: MessageType; Response: MessageType }>(
  (Object.keys(COMMANDS) as CommandName[]).map((command) => [
    COMMANDS[command].code,
    { command, Request: `${command}Request` as MessageType, Response: `${command}Response` as MessageType },
  ]),
);

function resolveTypeAt(
  commandCode: string | undefined,
  hasResponseCode: boolean,
  direction: Direction,
  fail: (code: JoinprotoErrorCode, message: string, details?: JoinprotoErrorDetails) => never,
): MessageType {
  if (commandCode === undefined) {
    // [JP-3] a frame without DF00 is only valid as the `XX other err` answer.
    if (hasResponseCode) return 'ErrorResponse';
    return fail('MISSING_TAG', 'DF00 (command type) is missing', { tag: 'DF00' });
  }
  const code = /^[\x20-\x7e]*$/.test(commandCode) ? commandCode : '';
  const known = TYPES_BY_CODE.get(code);
  if (known === undefined) {
    // [JP-3] an unknown command: the `XX UNKNOWN COMMAND` answer echoes DF00/DF01; a request gets that answer.
    if (hasResponseCode) return 'ErrorResponse';
    return fail('UNKNOWN_COMMAND', `unknown command ${code}`, { reply: 'UNKNOWN COMMAND' });
  }
  return COMMANDS[known.command].initiator === senderOf(direction) ? known.Request : known.Response;
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

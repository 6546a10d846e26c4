/**
 * Reference decoder for property tests: `decodeMessage` as it was before issue 19 (TLV objects, a Map of
 * value lists, string checks per tag). The library's single-pass decoder (src/codec.ts) must give the same
 * message, or the same error code and details, for any DATA.
 */
import { COMMANDS, commandByCode, type Direction, senderOf } from '../commands';
import { MESSAGE_SCHEMAS as SCHEMAS } from '../codec';
import { JoinprotoError, type JoinprotoErrorCode, type JoinprotoErrorDetails } from '../errors';
import type { Message, MessageType } from '../messages';
import { maskPan } from '../pan';
import { checkTagValue } from '../tags';
import { decodeTlvs, type Tlv } from '../tlv';

const AMOUNT_TAGS = new Set(['DF05', 'DF0B']);
const COUNT_TAGS = new Set(['DF25']);
const BINARY_TAGS = new Set(['DF0A', 'DF24']);
const REPEATABLE_TAGS = new Set(['DF24']);

export function referenceDecodeMessage(data: Uint8Array, direction: Direction): Message {
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

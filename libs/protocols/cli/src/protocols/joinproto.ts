import {
  DEFAULT_MAX_FRAME_BYTES,
  decodeMessage,
  decodeTlvs,
  describeResponseCode,
  type Direction,
  encodeFrame,
  encodeMessageFrame,
  encodeTlvs,
  FrameDecoder,
  isJoinprotoError,
  JoinprotoError,
  type Message,
  TAGS,
} from '@payorch/joinproto';

import type { ProtocolCliAdapter } from '../adapter';

const DIRECTIONS: readonly Direction[] = ['till->terminal', 'terminal->till'];
const BINARY_FIELDS = new Set(['receipt', 'data']);

/**
 * `payorch-proto --protocol joinproto`: one entry per frame or garbage run. A frame shows its TLVs (with the
 * spec's description), the typed message for each direction it is valid in (who sent it is not in the bytes),
 * and the meaning of DF16. Binary values print as `{ "hex": "…" }`, the same form `encode` accepts.
 */
export const adapter: ProtocolCliAdapter = {
  name: 'joinproto',
  description: 'Joinproto POS terminal ↔ till (STX TLV ETX LRC)',

  decode(bytes) {
    const decoder = new FrameDecoder({ maxFrameBytes: DEFAULT_MAX_FRAME_BYTES });
    const events = [...decoder.push(bytes), ...decoder.flush()];
    let offset = 0;
    return events.map((event) => {
      const start = offset;
      if (event.kind === 'garbage') {
        offset += event.bytes.length;
        return { offset: start, error: { code: event.error.code, message: event.error.message, reply: event.error.reply }, hex: toHex(event.bytes) };
      }
      offset += event.frame.length + 3;
      return { offset: start, ...describeFrame(event.frame) };
    });
  },

  encode(json) {
    if (!isRecord(json)) throw new JoinprotoError('INVALID_MESSAGE', 'expected a JSON object');
    if (Array.isArray(json.tags)) {
      return encodeFrame(
        encodeTlvs(
          json.tags.map((tlv) => {
            if (!isRecord(tlv) || typeof tlv.tag !== 'string') throw new JoinprotoError('INVALID_MESSAGE', 'tags[] entries need "tag"');
            return { tag: tlv.tag.toUpperCase(), value: valueBytes(tlv.value) };
          }),
        ),
      );
    }
    const message = isRecord(json.message) ? json.message : json;
    if (typeof message.type !== 'string') throw new JoinprotoError('INVALID_MESSAGE', 'expected "type", "message" or "tags"');
    return encodeMessageFrame(fromJson(message) as unknown as Message);
  },
};

function describeFrame(frame: Uint8Array): Record<string, unknown> {
  let tags;
  try {
    tags = decodeTlvs(frame).map(({ tag, value }) => ({
      tag,
      name: TAGS[tag]?.description ?? 'unknown tag',
      length: value.length,
      value: TAGS[tag]?.format === 'b' || !isPrintable(value) ? { hex: toHex(value) } : Buffer.from(value).toString('latin1'),
    }));
  } catch (error) {
    return { hex: toHex(frame), error: errorJson(error) };
  }
  const messages: Record<string, unknown> = {};
  for (const direction of DIRECTIONS) {
    try {
      messages[direction] = toJson(decodeMessage(frame, direction));
    } catch (error) {
      messages[direction] = { error: errorJson(error) };
    }
  }
  const code = tags.find((t) => t.tag === 'DF16')?.value;
  const text = tags.find((t) => t.tag === 'DF1A')?.value;
  const response = typeof code === 'string' ? describeResponseCode(code, typeof text === 'string' ? text : undefined) : undefined;
  return { hex: toHex(frame), tags, messages, ...(response ? { response } : {}) };
}

function toJson(message: Message): Record<string, unknown> {
  return Object.fromEntries(Object.entries(message).map(([key, value]) => [key, value instanceof Uint8Array ? { hex: toHex(value) } : value]));
}

function fromJson(message: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(message).map(([key, value]) => [key, BINARY_FIELDS.has(key) ? valueBytes(value) : value]));
}

function valueBytes(value: unknown): Uint8Array {
  if (typeof value === 'string') return new Uint8Array(Buffer.from(value, 'latin1'));
  if (isRecord(value) && typeof value.hex === 'string' && /^([0-9a-fA-F]{2})*$/.test(value.hex)) {
    return new Uint8Array(Buffer.from(value.hex, 'hex'));
  }
  throw new JoinprotoError('INVALID_MESSAGE', 'a value must be a string or { "hex": "…" }');
}

function errorJson(error: unknown): Record<string, unknown> {
  if (isJoinprotoError(error)) return { code: error.code, message: error.message, reply: error.reply, ...error.details };
  throw error;
}

function isPrintable(value: Uint8Array): boolean {
  return value.every((byte) => byte >= 0x20 && byte <= 0x7e);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

import { FrameDecoder, MAX_DATA_BYTES, SsiEcrError, encodeFrame, encodeMessage, isSsiEcrError, parseJsonData, type JsonObject } from '@payorch/ssi-ecr';

import type { ProtocolCliAdapter } from '../adapter';

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/**
 * `payorch-proto --protocol ssi-ecr`. decode prints one entry per frame or garbage run:
 *   { kind: 'frame', message: {…} }                           valid frame, JSON DATA
 *   { kind: 'frame', dataHex, error: { code: 'BAD_JSON', reply: 'E03', … } }  good LRC, DATA not JSON
 *   { kind: 'garbage', hex, error: { code, reply, message } }
 * encode takes `{ message: {…} }` (the decode shape), a bare message `{ method: … }`, or `{ dataHex }` for raw DATA.
 */
export const adapter: ProtocolCliAdapter = {
  name: 'ssi-ecr',
  description: 'SSI ECR JSON (02 66 01, 2-byte length, UTF-8 JSON, XOR LRC) — terminal ↔ ECR',

  decode(bytes: Uint8Array): unknown[] {
    const decoder = new FrameDecoder();
    const events = decoder.push(bytes);
    const entries: unknown[] = events.map((event) => {
      if (event.kind === 'garbage') return { kind: 'garbage', hex: toHex(event.bytes), error: describe(event.error) };
      try {
        return { kind: 'frame', message: parseJsonData(event.frame.data) };
      } catch (error) {
        return { kind: 'frame', dataHex: toHex(event.frame.data), error: describe(error) };
      }
    });
    if (decoder.bufferedBytes > 0) {
      entries.push({ kind: 'truncated', bufferedBytes: decoder.bufferedBytes, error: { code: 'TRUNCATED', message: 'capture ends inside a frame' } });
    }
    return entries;
  },

  encode(json: unknown): Uint8Array {
    if (!isObject(json)) throw invalidInput('expected a JSON object');
    if (typeof json.dataHex === 'string') {
      if (!/^([0-9a-fA-F]{2})*$/.test(json.dataHex) || json.dataHex.length / 2 > MAX_DATA_BYTES)
        throw invalidInput('dataHex must be even-length hex of at most 65535 bytes');
      return encodeFrame(Buffer.from(json.dataHex, 'hex'));
    }
    const message = isObject(json.message) ? json.message : json;
    if (typeof message.method !== 'string') throw invalidInput('message.method must be a string');
    return encodeMessage(message as JsonObject);
  },
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalidInput(message: string): SsiEcrError {
  return new SsiEcrError('INVALID_FIELD', message, { field: 'json' });
}

function describe(error: unknown): { code: string; reply?: string; message: string } {
  if (isSsiEcrError(error)) return { code: error.code, ...(error.reply ? { reply: error.reply } : {}), message: error.message };
  return { code: 'UNKNOWN', message: (error as Error).message };
}

import { SsiEcrError } from './errors';

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/**
 * Parses frame DATA (spec 1.2: UTF-8 JSON). Invalid UTF-8, invalid JSON, or a top-level value that
 * is not an object is E03 "Json message format error" (spec 4.3.3).
 */
export function parseJsonData(data: Uint8Array): JsonObject {
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    throw new SsiEcrError('BAD_JSON', 'DATA is not valid UTF-8', { reply: 'E03' });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SsiEcrError('BAD_JSON', 'DATA is not valid JSON', { reply: 'E03' });
  }
  if (!isJsonObject(value)) {
    throw new SsiEcrError('BAD_JSON', 'DATA must be a JSON object', { reply: 'E03' });
  }
  return value;
}

export function serialiseJsonData(message: JsonObject): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

import { JoinprotoError } from './errors';

/**
 * Tag formats (spec 2, «Расшифровка форматов тэгов»), plus `ns` — digits and `*`, used by the
 * masked PAN (DF04, «ns» in the tag table).
 */
export type TagFormat = 'n' | 'ns' | 'a' | 'an' | 'ans' | 'b';

export interface TagSpec {
  readonly tag: string;
  readonly format: TagFormat;
  /** Inclusive value length bounds in bytes. */
  readonly minLength: number;
  readonly maxLength: number;
  readonly description: string;
  /** Where our rule differs from the spec's tag table, and why (documented in the README). */
  readonly deviation?: string;
}

const MAX_TLV_VALUE = 0xffff;

function fixed(tag: string, format: TagFormat, length: number, description: string, deviation?: string): TagSpec {
  return { tag, format, minLength: length, maxLength: length, description, deviation };
}

function ranged(tag: string, format: TagFormat, min: number, max: number, description: string, deviation?: string): TagSpec {
  return { tag, format, minLength: min, maxLength: max, description, deviation };
}

/** The spec's tag table (spec 2, «Список поддерживаемых тэгов»). */
export const TAGS: Readonly<Record<string, TagSpec>> = Object.fromEntries(
  [
    fixed('DF00', 'n', 2, 'Command type'),
    fixed('DF01', 'ans', 6, 'Unique command id'),
    ranged('DF04', 'ns', 16, 19, 'Masked card PAN'),
    fixed('DF05', 'n', 12, 'Amount in minor units, 12 digits'),
    fixed('DF06', 'an', 6, 'Receipt number being cancelled'),
    ranged('DF07', 'an', 6, 6, 'Authorisation code', 'spec says n; ISO 8583 approval codes are alphanumeric, so letters are accepted'),
    fixed('DF08', 'n', 12, 'RRN of the operation being refunded'),
    fixed('DF09', 'n', 8, 'Date of the transaction being refunded'),
    ranged('DF0A', 'b', 0, MAX_TLV_VALUE, 'Receipt data (format not imposed by the protocol)'),
    fixed('DF0B', 'n', 12, 'Cashback amount, minor units, 12 digits'),
    fixed('DF0C', 'n', 2, 'Department number (multi-merchant)'),
    fixed('DF10', 'n', 6, 'Receipt number in the terminal'),
    fixed('DF12', 'n', 6, 'Shift number in the terminal'),
    fixed('DF13', 'n', 15, 'Merchant id'),
    fixed('DF15', 'an', 8, 'Terminal id', 'spec says n; its own examples carry "AB040000"'),
    ranged('DF16', 'n', 2, 3, 'Response code', 'the literal "XX" (protocol error) is accepted besides digits'),
    fixed('DF19', 'n', 6, 'Transaction time hhmmss', 'table says length 12; hhmmss and every example are 6'),
    ranged('DF1A', 'ans', 0, 40, 'Additional information on the result', 'table says an 40; examples contain spaces and punctuation, 40 is a maximum'),
    ranged('DF21', 'a', 1, 8, 'Relay protocol (tcp, http)'),
    ranged('DF22', 'ans', 1, 255, 'Relay address host:port'),
    ranged('DF23', 'n', 1, 20, 'Relay connection id'),
    ranged('DF24', 'b', 0, MAX_TLV_VALUE, 'Relay / log data chunk (repeated chunks are concatenated)'),
    ranged('DF25', 'n', 1, 10, 'Relay byte count'),
    fixed('DF2B', 'n', 12, 'RRN in the processing centre'),
    fixed('DF2C', 'n', 6, 'Date YYMMDD', 'table says length 12; YYMMDD and every example are 6'),
  ].map((spec) => [spec.tag, spec]),
);

const FORMAT_PATTERNS: Readonly<Record<Exclude<TagFormat, 'b'>, RegExp>> = {
  n: /^[0-9]*$/,
  ns: /^[0-9*]*$/,
  a: /^[A-Za-z]*$/,
  an: /^[A-Za-z0-9]*$/,
  ans: /^[\x20-\x7e]*$/,
};

/** Protocol-error response code (spec 2, «Коды ответа»). */
export const PROTOCOL_ERROR_CODE = 'XX';

export function isKnownTag(tag: string): boolean {
  return Object.prototype.hasOwnProperty.call(TAGS, tag);
}

/**
 * [JP-2-TAG] A known tag's value satisfies the length and format rules of the tag table.
 * Unknown tags are not checked here (see README, «Unknown tags»). Throws BAD_TAG_LENGTH / BAD_TAG_FORMAT.
 */
export function checkTagValue(tag: string, value: Uint8Array): void {
  const spec = TAGS[tag];
  if (spec === undefined) return;
  if (value.length < spec.minLength || value.length > spec.maxLength) {
    const expected = spec.minLength === spec.maxLength ? `${spec.minLength}` : `${spec.minLength}..${spec.maxLength}`;
    throw new JoinprotoError('BAD_TAG_LENGTH', `${tag} length ${value.length}, expected ${expected}`, { tag });
  }
  if (spec.format === 'b') return;
  const text = latin1(value);
  if (tag === 'DF16' && text === PROTOCOL_ERROR_CODE) return;
  if (!FORMAT_PATTERNS[spec.format].test(text)) {
    throw new JoinprotoError('BAD_TAG_FORMAT', `${tag} is not of format ${spec.format}`, { tag });
  }
}

function latin1(value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1');
}

/** Spec of a `DFxx` tag by its low byte (every tag of the table starts with 0xDF), for the byte-level check. */
const DF_TAGS: readonly (TagSpec | undefined)[] = Array.from({ length: 256 }, (_, low) => TAGS[`DF${low.toString(16).toUpperCase().padStart(2, '0')}`]);

/** Per format, 1 for each byte the format allows (the FORMAT_PATTERNS as lookup tables). */
const ALLOWED: Readonly<Record<Exclude<TagFormat, 'b'>, Uint8Array>> = {
  n: byteTable(FORMAT_PATTERNS.n),
  ns: byteTable(FORMAT_PATTERNS.ns),
  a: byteTable(FORMAT_PATTERNS.a),
  an: byteTable(FORMAT_PATTERNS.an),
  ans: byteTable(FORMAT_PATTERNS.ans),
};

function byteTable(pattern: RegExp): Uint8Array {
  return Uint8Array.from({ length: 256 }, (_, byte) => (pattern.test(String.fromCharCode(byte)) ? 1 : 0));
}

/**
 * [JP-2-TAG] `checkTagValue` on the bytes `data[start..end)` of a tag given by its two bytes, without
 * a copy or a string (the decoder's hot path). Same rules, same errors.
 */
export function checkTagBytes(high: number, low: number, data: Uint8Array, start: number, end: number): void {
  const spec = high === 0xdf ? DF_TAGS[low] : undefined;
  if (spec === undefined) return;
  const length = end - start;
  if (length < spec.minLength || length > spec.maxLength) checkTagValue(spec.tag, data.subarray(start, end)); // throws the error
  if (spec.format === 'b') return;
  if (low === 0x16 && length === 2 && data[start] === 0x58 && data[start + 1] === 0x58) return; // PROTOCOL_ERROR_CODE 'XX'
  const table = ALLOWED[spec.format];
  for (let i = start; i < end; i++) {
    if (table[data[i]] === 0) throw new JoinprotoError('BAD_TAG_FORMAT', `${spec.tag} is not of format ${spec.format}`, { tag: spec.tag });
  }
}

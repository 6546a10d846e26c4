/** Small helpers shared by the codec modules. */
import { JpayError } from './errors';
import { el, textOf, type XmlElement } from './xml';

/** Drops `undefined` properties so decoded objects only hold what the packet carried. */
export function compact<T extends object>(value: T): T {
  const out = {} as Record<string, unknown>;
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
  return out as T;
}

export function requiredText(parent: XmlElement, name: string): string {
  const value = textOf(parent, name);
  if (value === undefined) {
    throw new JpayError('FIELD_MISSING', `<${parent.name}> lacks <${name}>`, { field: name });
  }
  return value;
}

export function mapOptional<T>(value: string | undefined, fn: (v: string) => T): T | undefined {
  return value === undefined || value === '' ? undefined : fn(value);
}

/** Lines of a `header`/`footer`/`title` block: the text of every child, verbatim. */
export function decodeLines(block: XmlElement | undefined): string[] {
  return block ? block.children.map((line) => line.text) : [];
}

export function encodeLines(name: string, lines: readonly string[]): XmlElement {
  return el(
    name,
    lines.map((line) => el('line', line)),
  );
}

const utf8Decoder = new TextDecoder('utf-8');

/**
 * `error-stack` (§8): "преобразовать значение тега error из формата HEX ASCII в байты и затем ...
 * в строку UTF8". A value that is not hex is kept verbatim.
 */
export function decodeErrorStack(root: XmlElement): string[] {
  const stack = root.children.find((c) => c.name === 'error-stack');
  if (!stack) return [];
  return stack.children
    .filter((c) => c.name === 'error')
    .map((c) => {
      const hex = c.text.trim();
      return /^(?:[0-9a-fA-F]{2})*$/.test(hex) ? utf8Decoder.decode(Buffer.from(hex, 'hex')) : hex;
    });
}

export function encodeErrorStack(errors: readonly string[]): XmlElement {
  return el(
    'error-stack',
    errors.map((message) => el('error', Buffer.from(message, 'utf8').toString('hex').toUpperCase())),
  );
}

export function boolText(value: boolean | undefined): string | undefined {
  return value === undefined ? undefined : String(value);
}

export function parseBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  return v === 'true' || v === 'on' || v === '1' || v === 'yes';
}

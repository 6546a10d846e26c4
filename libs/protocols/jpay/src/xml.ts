/**
 * XML layer: a small element tree between the bytes and the typed codec.
 *
 * Parsing uses fast-xml-parser configured defensively:
 *  - [PAYORCH-XML-DTD]   any `<!DOCTYPE`/`<!ENTITY` is rejected before parsing, and the parser's
 *                        entity processing is off, so no entity expansion can happen;
 *  - [PAYORCH-XML-WF]    the document is validated as well-formed first (the parser alone is lenient),
 *                        and must have exactly one root element;
 *  - [PAYORCH-XML-DEPTH] nesting is bounded (`maxNestedTags`); size is bounded by the frame decoder;
 *  - only the five predefined XML entities and numeric character references are decoded, by us.
 * Text is decoded as UTF-8 although §4 says ASCII: the documents' own examples carry Cyrillic.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

import { JpayError } from './errors';

export interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** Concatenated character data of this element, entity-decoded, not trimmed. */
  readonly text: string;
}

/** Deepest nesting seen in the specs is 5 (report → xreport → totals → card-type → field). */
export const MAX_XML_DEPTH = 32;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  allowBooleanAttributes: false,
  maxNestedTags: MAX_XML_DEPTH,
});

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
const utf8Encoder = new TextEncoder();
const DTD_PATTERN = /<!(DOCTYPE|ENTITY)/i;
const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const ENTITY_PATTERN = /&(?:#x([0-9a-fA-F]{1,6})|#([0-9]{1,7})|(amp|lt|gt|quot|apos));/g;
const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(value: string): string {
  if (!value.includes('&')) return value;
  return value.replace(ENTITY_PATTERN, (whole, hex: string | undefined, dec: string | undefined, named: string | undefined) => {
    if (named) return PREDEFINED[named];
    const code = hex ? parseInt(hex, 16) : Number(dec);
    return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff) ? String.fromCodePoint(code) : whole;
  });
}

type OrderedNode = Record<string, unknown>;

function toElement(node: OrderedNode): XmlElement | undefined {
  const name = Object.keys(node).find((key) => key !== ':@');
  if (name === undefined || name === '#text') return undefined;
  const rawAttrs = (node[':@'] ?? {}) as Record<string, string>;
  const attrs: Record<string, string> = {};
  for (const [key, value] of Object.entries(rawAttrs)) attrs[key] = decodeEntities(String(value));
  const children: XmlElement[] = [];
  let text = '';
  for (const child of node[name] as OrderedNode[]) {
    if ('#text' in child) text += decodeEntities(String(child['#text']));
    else {
      const element = toElement(child);
      if (element) children.push(element);
    }
  }
  return { name, attrs, children, text };
}

/** Decodes a packet payload (UTF-8 bytes) into its root element. Throws `JpayError` on bad input. */
export function parseXmlBytes(payload: Uint8Array): XmlElement {
  let text: string;
  try {
    text = utf8Decoder.decode(payload);
  } catch (cause) {
    throw new JpayError('XML_NOT_UTF8', 'packet payload is not valid UTF-8', {}, { cause });
  }
  return parseXml(text);
}

/** Parses an XML document with exactly one root element. */
export function parseXml(text: string): XmlElement {
  if (DTD_PATTERN.test(text)) {
    throw new JpayError('XML_DTD_FORBIDDEN', 'DTD and entity declarations are not accepted [PAYORCH-XML-DTD]');
  }
  const verdict = XMLValidator.validate(text);
  if (verdict !== true) {
    throw new JpayError('XML_MALFORMED', `XML is not well-formed: ${verdict.err.code} at ${verdict.err.line}:${verdict.err.col} [PAYORCH-XML-WF]`);
  }
  let nodes: OrderedNode[];
  try {
    nodes = parser.parse(text) as OrderedNode[];
  } catch (cause) {
    throw new JpayError('XML_MALFORMED', 'XML rejected by the parser limits [PAYORCH-XML-DEPTH]', {}, { cause });
  }
  const roots = nodes.map(toElement).filter((e): e is XmlElement => e !== undefined);
  if (roots.length !== 1) {
    throw new JpayError('XML_MALFORMED', `expected one root element, found ${roots.length} [PAYORCH-XML-WF]`);
  }
  return roots[0];
}

function escapeText(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttr(value: string): string {
  return escapeText(value).replace(/"/g, '&quot;');
}

function checkName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new JpayError('INVALID_ARGUMENT', 'invalid XML name', { field: name.slice(0, 40) });
  }
}

/** Serialises an element compactly (no pretty printing): `<a x="1"><b>t</b></a>`, `<c/>`. */
export function writeXml(element: XmlElement): string {
  checkName(element.name);
  let open = `<${element.name}`;
  for (const [key, value] of Object.entries(element.attrs)) {
    checkName(key);
    open += ` ${key}="${escapeAttr(value)}"`;
  }
  if (element.children.length === 0 && element.text === '') return `${open}/>`;
  const body = escapeText(element.text) + element.children.map(writeXml).join('');
  return `${open}>${body}</${element.name}>`;
}

export function writeXmlBytes(element: XmlElement): Uint8Array {
  return utf8Encoder.encode(writeXml(element));
}

// ---- builders and accessors used by the codec ------------------------------------------------

/** Builds an element: `el('a', [el('b', 'text')])`, `el('c', 'text', { attr: 'v' })`. */
export function el(name: string, content: string | readonly (XmlElement | undefined)[] = '', attrs: Record<string, string | undefined> = {}): XmlElement {
  const cleanAttrs: Record<string, string> = {};
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined) cleanAttrs[key] = value;
  return typeof content === 'string'
    ? { name, attrs: cleanAttrs, children: [], text: content }
    : {
        name,
        attrs: cleanAttrs,
        children: content.filter((c): c is XmlElement => c !== undefined),
        text: '',
      };
}

/** `el(name, value)` or nothing when the value is absent: for optional fields. */
export function opt(name: string, value: string | undefined): XmlElement | undefined {
  return value === undefined ? undefined : el(name, value);
}

export function child(parent: XmlElement, name: string): XmlElement | undefined {
  return parent.children.find((c) => c.name === name);
}

export function childrenNamed(parent: XmlElement, name: string): XmlElement[] {
  return parent.children.filter((c) => c.name === name);
}

/** Trimmed text of the first child with this name; `undefined` when the child is absent. */
export function textOf(parent: XmlElement, name: string): string | undefined {
  const found = child(parent, name);
  return found === undefined ? undefined : found.text.trim();
}

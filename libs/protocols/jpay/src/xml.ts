/**
 * XML layer: a small element tree between the bytes and the typed codec.
 *
 * Parsing is one pass of our own strict reader over the decoded text, building `XmlElement`s directly
 * (no intermediate tree, no separate validation pass: bench/jpay, profile in bench/README.md):
 *  - [PAYORCH-XML-DTD]   any `<!DOCTYPE`/`<!ENTITY` is rejected, so no entity can be declared or expanded;
 *  - [PAYORCH-XML-WF]    the document must be well-formed: matched tags, quoted unique attributes, valid
 *                        names, `&` only as a reference, exactly one root element and nothing but white
 *                        space, comments and processing instructions around it;
 *  - [PAYORCH-XML-DEPTH] nesting is bounded (MAX_XML_DEPTH); size is bounded by the frame decoder;
 *  - only the five predefined XML entities and numeric character references are decoded; any other
 *    `&name;` stays verbatim (it could only have come from a DTD, which is refused); CDATA is literal;
 *    line ends read as LF (XML 1.0 §2.11).
 *  - [PAYORCH-XML-NAME]  element and attribute names are XML 1.0 (fifth edition) Names, §2.3 [4]-[5] (letters
 *                        of most scripts, digits, `_ : - .` and the combining marks the production lists; not
 *                        `__proto__`): one check, `nameAt`, decides them for the reader and for the writer, so
 *                        every tree the reader builds can be written back (a reply echoing a root name, a
 *                        journal's re-encoded frame) and every name the writer refuses, the reader refuses.
 * testing/reference-xml.ts keeps the former fast-xml-parser reader; property tests hold this one to it.
 * Text is decoded as UTF-8 although §4 says ASCII: the documents' own examples carry Cyrillic.
 */
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

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
const utf8Encoder = new TextEncoder();
const ENTITY_PATTERN = /&(?:#x([0-9a-fA-F]{1,6})|#([0-9]{1,7})|(amp|lt|gt|quot|apos));/g;
/** What may follow `&`: a (predefined or undeclared) entity name or a character reference, then `;`. */
const REFERENCE_PATTERN = /^&(?:#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z_:][A-Za-z0-9_.:-]*);/;
const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(value: string): string {
  return value.replace(ENTITY_PATTERN, (whole, hex: string | undefined, dec: string | undefined, named: string | undefined) => {
    if (named) return PREDEFINED[named];
    const code = hex ? parseInt(hex, 16) : Number(dec);
    return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff) ? String.fromCodePoint(code) : whole;
  });
}

function malformed(message: string, at: number): JpayError {
  return new JpayError('XML_MALFORMED', `XML is not well-formed: ${message} at offset ${at} [PAYORCH-XML-WF]`);
}

const GT = 0x3e;
const SLASH = 0x2f;
const EQ = 0x3d;
const QUOT = 0x22;
const APOS = 0x27;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

/** ASCII name characters (XML 1.0 §2.3 [4], [4a]): bit 1 may start a name, bit 2 may continue one. */
const ASCII_NAME = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const start = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f /* _ */ || c === 0x3a; /* : */
  const rest = start || (c >= 0x30 && c <= 0x39) || c === 0x2d /* - */ || c === 0x2e; /* . */
  ASCII_NAME[c] = (start ? 1 : 0) | (rest ? 2 : 0);
}

/** XML 1.0 (fifth edition) §2.3 [4] NameStartChar, for a code point beyond ASCII. */
function isWideNameStart(c: number): boolean {
  return (
    (c >= 0xc0 && c <= 0xd6) ||
    (c >= 0xd8 && c <= 0xf6) ||
    (c >= 0xf8 && c <= 0x2ff) ||
    (c >= 0x370 && c <= 0x37d) ||
    (c >= 0x37f && c <= 0x1fff) ||
    c === 0x200c ||
    c === 0x200d ||
    (c >= 0x2070 && c <= 0x218f) ||
    (c >= 0x2c00 && c <= 0x2fef) ||
    (c >= 0x3001 && c <= 0xd7ff) ||
    (c >= 0xf900 && c <= 0xfdcf) ||
    (c >= 0xfdf0 && c <= 0xfffd) ||
    (c >= 0x10000 && c <= 0xeffff)
  );
}

/** §2.3 [4a] NameChar beyond ASCII: a NameStartChar, `·`, the combining marks U+0300–U+036F, `‿` and `⁀`. */
function isWideNameChar(c: number): boolean {
  return isWideNameStart(c) || c === 0xb7 || (c >= 0x300 && c <= 0x36f) || c === 0x203f || c === 0x2040;
}

/**
 * UTF-16 length of the name character at `i` of `s` (2 for one beyond the BMP), 0 when there is none there (the
 * end, a character outside the production, a lone surrogate); `first`: it must be able to start a name.
 */
function nameCharLength(s: string, i: number, first: boolean): number {
  const c = s.charCodeAt(i);
  if (c < 0x80) return (ASCII_NAME[c]! & (first ? 1 : 2)) !== 0 ? 1 : 0;
  if (c >= 0xd800 && c <= 0xdbff) {
    const low = s.charCodeAt(i + 1);
    if (!(low >= 0xdc00 && low <= 0xdfff)) return 0;
    return isWideNameStart((c - 0xd800) * 0x400 + (low - 0xdc00) + 0x10000) ? 2 : 0;
  }
  if (c >= 0xdc00 && c <= 0xdfff) return 0;
  return (first ? isWideNameStart(c) : isWideNameChar(c)) ? 1 : 0; // NaN (past the end) is neither
}

/** A name that would be an object's prototype, not an own key, in `XmlElement.attrs`: refused by reader and writer. */
const RESERVED_NAME = '__proto__';

/**
 * [PAYORCH-XML-NAME] The element or attribute name starting at `start` of `s` (the longest run of name characters
 * there), or undefined when there is none or it is reserved. The reader takes its names with it; the writer accepts
 * exactly the strings it reads whole (`isXmlName`).
 */
function nameAt(s: string, start: number): string | undefined {
  let n = nameCharLength(s, start, true);
  if (n === 0) return undefined;
  let i = start + n;
  while ((n = nameCharLength(s, i, false)) > 0) i += n;
  const name = s.slice(start, i);
  return name === RESERVED_NAME ? undefined : name;
}

/** Whether `name` is a name this layer reads and writes ([PAYORCH-XML-NAME]). */
export function isXmlName(name: string): boolean {
  return nameAt(name, 0) === name;
}

interface Open {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  children: XmlElement[];
  text: string;
}

/** Shared by every element without attributes / children (most of them): fewer allocations per packet. */
const NO_ATTRS: Readonly<Record<string, string>> = Object.freeze({});
const NO_CHILDREN: readonly XmlElement[] = Object.freeze([]);

/**
 * Strict single-pass reader. Positions are UTF-16 offsets into `src`; every branch advances or throws,
 * so arbitrary input terminates in O(length).
 */
class Reader {
  private pos = 0;
  private readonly stack: Open[] = [];
  private root: XmlElement | undefined;

  constructor(private readonly src: string) {}

  parse(): XmlElement {
    const src = this.src;
    const length = src.length;
    if (src.charCodeAt(0) === 0xfeff) this.pos = 1;
    while (this.pos < length) {
      const lt = src.indexOf('<', this.pos);
      const textEnd = lt < 0 ? length : lt;
      if (textEnd > this.pos) this.text(this.pos, textEnd);
      if (lt < 0) break;
      this.pos = lt;
      this.markup();
    }
    if (this.stack.length > 0) throw malformed(`<${this.stack[this.stack.length - 1].name}> is not closed`, length);
    if (this.root === undefined) throw malformed('no root element', length);
    return this.root;
  }

  private text(start: number, end: number): void {
    const src = this.src;
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) {
      for (let i = start; i < end; i++) if (!isSpace(src.charCodeAt(i))) throw malformed('text outside the root element', i);
      return;
    }
    // XML 1.0 §2.11: a line end (CR LF, or CR alone) reads as LF.
    const sliced = src.slice(start, end);
    const raw = sliced.includes('\r') ? sliced.replace(/\r\n?/g, '\n') : sliced;
    let amp = raw.indexOf('&');
    if (amp < 0) {
      top.text += raw;
      return;
    }
    for (; amp >= 0; amp = raw.indexOf('&', amp + 1)) {
      if (!REFERENCE_PATTERN.test(raw.slice(amp, amp + 16))) throw malformed("'&' is not a reference", start + amp);
    }
    top.text += decodeEntities(raw);
  }

  private markup(): void {
    const src = this.src;
    const next = src.charCodeAt(this.pos + 1);
    if (next === SLASH) return this.closeTag();
    if (next === 0x21 /* ! */) {
      if (src.startsWith('<!--', this.pos)) return this.skipPast('-->', 4, 'comment');
      if (src.startsWith('<![CDATA[', this.pos)) return this.cdata();
      throw new JpayError('XML_DTD_FORBIDDEN', 'DTD and entity declarations are not accepted [PAYORCH-XML-DTD]');
    }
    if (next === 0x3f /* ? */) return this.skipPast('?>', 2, 'processing instruction');
    this.openTag();
  }

  private skipPast(terminator: string, from: number, what: string): void {
    const end = this.src.indexOf(terminator, this.pos + from);
    if (end < 0) throw malformed(`unterminated ${what}`, this.pos);
    this.pos = end + terminator.length;
  }

  private cdata(): void {
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) throw malformed('CDATA outside the root element', this.pos);
    const start = this.pos + 9;
    const end = this.src.indexOf(']]>', start);
    if (end < 0) throw malformed('unterminated CDATA section', this.pos);
    top.text += this.src.slice(start, end);
    this.pos = end + 3;
  }

  private name(): string {
    const start = this.pos;
    const name = nameAt(this.src, start);
    if (name === undefined) throw malformed('invalid name', start);
    this.pos = start + name.length;
    return name;
  }

  private skipSpaces(): boolean {
    const start = this.pos;
    while (this.pos < this.src.length && isSpace(this.src.charCodeAt(this.pos))) this.pos++;
    return this.pos > start;
  }

  private openTag(): void {
    const src = this.src;
    const at = this.pos;
    if (this.root !== undefined && this.stack.length === 0) throw malformed('a second root element', at);
    if (this.stack.length >= MAX_XML_DEPTH) throw malformed(`nesting deeper than ${MAX_XML_DEPTH} [PAYORCH-XML-DEPTH]`, at);
    this.pos++;
    const name = this.name();
    let attrs = NO_ATTRS as Record<string, string>;
    for (;;) {
      const spaced = this.skipSpaces();
      const c = src.charCodeAt(this.pos);
      if (c === GT) {
        this.pos++;
        this.stack.push({ name, attrs, children: NO_CHILDREN as XmlElement[], text: '' });
        return;
      }
      if (c === SLASH && src.charCodeAt(this.pos + 1) === GT) {
        this.pos += 2;
        this.attach({ name, attrs, children: NO_CHILDREN, text: '' });
        return;
      }
      if (!spaced) throw malformed(`unexpected character in <${name}>`, this.pos);
      const attrAt = this.pos;
      const key = this.name();
      this.skipSpaces();
      if (src.charCodeAt(this.pos) !== EQ) throw malformed(`attribute ${key} has no value`, attrAt);
      this.pos++;
      this.skipSpaces();
      const quote = src.charCodeAt(this.pos);
      if (quote !== QUOT && quote !== APOS) throw malformed(`attribute ${key} is not quoted`, this.pos);
      const end = src.indexOf(quote === QUOT ? '"' : "'", this.pos + 1);
      if (end < 0) throw malformed(`attribute ${key} is not closed`, this.pos);
      const quoted = src.slice(this.pos + 1, end);
      const raw = quoted.includes('\r') ? quoted.replace(/\r\n?/g, '\n') : quoted;
      if (raw.includes('<')) throw malformed(`'<' in attribute ${key}`, this.pos);
      if (attrs === NO_ATTRS) attrs = {};
      else if (Object.prototype.hasOwnProperty.call(attrs, key)) throw malformed(`attribute ${key} is repeated`, attrAt);
      for (let amp = raw.indexOf('&'); amp >= 0; amp = raw.indexOf('&', amp + 1)) {
        if (!REFERENCE_PATTERN.test(raw.slice(amp, amp + 16))) throw malformed("'&' is not a reference", this.pos + 1 + amp);
      }
      attrs[key] = raw.includes('&') ? decodeEntities(raw) : raw;
      this.pos = end + 1;
      if (this.pos > src.length) throw malformed(`<${name}> is not closed`, at);
    }
  }

  private closeTag(): void {
    const src = this.src;
    const at = this.pos;
    const open = this.stack.pop();
    // Compared in place (no slice): the name must be the open element's, and end there.
    const end = at + 2 + (open?.name.length ?? 0);
    if (open === undefined || !src.startsWith(open.name, at + 2) || nameCharLength(src, end, false) > 0) {
      this.pos = at + 2;
      const name = this.name();
      throw malformed(`</${name}> does not close ${open ? `<${open.name}>` : 'anything'}`, at);
    }
    this.pos = end;
    this.skipSpaces();
    if (src.charCodeAt(this.pos) !== GT) throw malformed(`</${open.name}> is not closed`, at);
    this.pos++;
    this.attach(open);
  }

  private attach(element: XmlElement): void {
    const parent = this.stack[this.stack.length - 1];
    if (parent === undefined) this.root = element;
    else if (parent.children === NO_CHILDREN) parent.children = [element];
    else parent.children.push(element);
  }
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
  return new Reader(text).parse();
}

/**
 * Markup characters as references; a CR too, which a reader would otherwise read as LF (§2.11: it can only have come
 * from `&#13;` or a CDATA section), so a tree the reader built is written back as it was read.
 */
function escapeText(value: string): string {
  return /[&<>\r]/.test(value) ? value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;') : value;
}

/** As text, plus `"`, and tab and LF as references: a conforming reader normalises them to spaces in an attribute (§3.3.3). */
function escapeAttr(value: string): string {
  return /[&<>"\r\n\t]/.test(value) ? escapeText(value).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;') : value;
}

function checkName(name: string): void {
  if (!isXmlName(name)) {
    throw new JpayError('INVALID_ARGUMENT', 'invalid XML name [PAYORCH-XML-NAME]', { field: name.slice(0, 40) });
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

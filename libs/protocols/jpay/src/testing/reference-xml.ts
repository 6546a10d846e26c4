/**
 * Reference reader for property tests: the XML layer as it was before issue 19, on fast-xml-parser
 * (validator + ordered tree + conversion). The library's own single-pass reader (src/xml.ts) must
 * agree with it on every document it accepts, and may only be stricter (never more lenient), with one
 * exception: names with characters beyond the BMP, which the XML 1.0 Name production admits
 * ([PAYORCH-XML-NAME]) and this reader refuses (it also refuses or renames JavaScript property names such
 * as `constructor`, which are XML names).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

import type { XmlElement } from '../xml';

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
  maxNestedTags: 32,
});
const ENTITY_PATTERN = /&(?:#x([0-9a-fA-F]{1,6})|#([0-9]{1,7})|(amp|lt|gt|quot|apos));/g;
const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(value: string): string {
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
  const attrs: Record<string, string> = {};
  for (const [key, value] of Object.entries((node[':@'] ?? {}) as Record<string, string>)) attrs[key] = decodeEntities(String(value));
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

/** The old reader's verdict: the root element, or undefined where it rejected the document. */
export function referenceParseXml(text: string): XmlElement | undefined {
  if (/<!(DOCTYPE|ENTITY)/i.test(text) || XMLValidator.validate(text) !== true) return undefined;
  try {
    const roots = (parser.parse(text) as OrderedNode[]).map(toElement).filter((e): e is XmlElement => e !== undefined);
    return roots.length === 1 ? roots[0] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Independent expectations for tests (never built with the encoder under test):
 *  - `frameOf` writes the §4 length prefix with Buffer.writeUInt32BE;
 *  - `canonicalXml` reads XML with fast-xml-parser's plain object mode (trimmed text, attributes kept),
 *    a different code path from the library's ordered element tree, so two documents compare equal
 *    when they carry the same elements, attributes and text whatever their layout.
 */
import { XMLParser } from 'fast-xml-parser';

export function frameOf(xml: string): Uint8Array {
  const payload = Buffer.from(xml, 'utf8');
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length, 0);
  return new Uint8Array(Buffer.concat([header, payload]));
}

const canonicalParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
});

export function canonicalXml(xml: string): unknown {
  return canonicalParser.parse(xml);
}

/** Concatenates frames into one stream. */
export function streamOf(...frames: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(frames));
}

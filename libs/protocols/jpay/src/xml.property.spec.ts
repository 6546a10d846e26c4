import { fc, test } from '@fast-check/jest';

import { referenceParseXml } from './testing/reference-xml';
import { parseXml, parseXmlBytes, writeXml, writeXmlBytes, type XmlElement } from './xml';

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
const textValue = fc.string({ unit: 'grapheme', maxLength: 30 }).filter((s) => !/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF\r]/.test(s));

const element: fc.Arbitrary<XmlElement> = fc.letrec<{ node: XmlElement }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 4 },
    fc.record({
      name,
      attrs: fc.dictionary(name, textValue, { maxKeys: 2 }),
      children: fc.constant([]),
      text: textValue,
    }),
    fc.record({
      name,
      attrs: fc.dictionary(name, textValue, { maxKeys: 2 }),
      children: fc.array(tie('node'), { minLength: 1, maxLength: 3 }),
      text: fc.constant(''),
    }),
  ),
})).node;

describe('XML round trip', () => {
  test.prop([element], { numRuns: 200 })('parseXml(writeXml(e)) deep-equals e, incl. Cyrillic and markup characters', (e) => {
    expect(parseXml(writeXml(e))).toEqual(e);
    expect(parseXmlBytes(writeXmlBytes(e))).toEqual(e);
  });

  test.prop([fc.string({ maxLength: 80 })], { numRuns: 300 })('arbitrary text never throws anything but JpayError', (s) => {
    try {
      parseXml(s);
    } catch (error) {
      expect(error).toMatchObject({ name: 'JpayError' });
    }
  });
});

/** A document as a terminal may lay it out: declaration, white space and comments between elements, references, CDATA. */
const layout = fc.record({
  declaration: fc.boolean(),
  gap: fc.constantFrom('', '\n', '\n  ', ' ', '<!-- c -->', '\r\n\t'),
});
function laidOut(e: XmlElement, gap: string): string {
  const attrs = Object.entries(e.attrs)
    .map(([k, v]) => ` ${k}="${v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;')}"`)
    .join('');
  if (e.children.length === 0) {
    return e.text === ''
      ? `<${e.name}${attrs}/>`
      : `<${e.name}${attrs}>${e.text.replace(/&/g, '&#38;').replace(/</g, '&#x3C;').replace(/>/g, '&gt;')}</${e.name}>`;
  }
  return `<${e.name}${attrs}>${gap}${e.children.map((c) => laidOut(c, gap) + gap).join('')}</${e.name} >`;
}
const mutation = fc.tuple(
  fc.nat(),
  fc.nat({ max: 3 }),
  fc.constantFrom('<', '>', '/', '=', '"', "'", '&', ';', '!', '?', '[', ']', '-', ' ', 'a', 'О', '&amp;', '<b>', '</b>', ''),
);

describe('single-pass reader vs the fast-xml-parser reference (testing/reference-xml.ts)', () => {
  test.prop([element, layout], { numRuns: 200 })('reads any layout of a document as the reference does', (e, { declaration, gap }) => {
    const xml = `${declaration ? '<?xml version="1.0" encoding="UTF-8"?>\n' : ''}${laidOut(e, gap)}`;
    expect(parseXml(xml)).toEqual(referenceParseXml(xml));
  });

  test.prop([element, fc.array(mutation, { minLength: 1, maxLength: 3 })], { numRuns: 500 })(
    'on a damaged document it is never more lenient: what it accepts, the reference accepts identically',
    (e, cuts) => {
      let xml = writeXml(e);
      for (const [at, remove, insert] of cuts) {
        const i = at % (xml.length + 1);
        xml = xml.slice(0, i) + insert + xml.slice(i + remove);
      }
      let ours: XmlElement | undefined;
      try {
        ours = parseXml(xml);
      } catch (error) {
        expect(error).toMatchObject({ name: 'JpayError' });
        return;
      }
      expect(ours).toEqual(referenceParseXml(xml));
    },
  );

  it('is stricter than the reference where XML 1.0 requires it', () => {
    for (const xml of ['<a/>junk', '<a b="<"/>', '<a>x</a><!-- unterminated', '<a><![CDATA[x</a>']) {
      expect(() => parseXml(xml)).toThrow(expect.objectContaining({ code: 'XML_MALFORMED' }));
    }
    expect(referenceParseXml('<a/>junk')).toBeDefined();
  });
});

import { fc, test } from '@fast-check/jest';

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

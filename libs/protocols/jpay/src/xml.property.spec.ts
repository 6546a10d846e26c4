import { fc, test } from '@fast-check/jest';

import { referenceParseXml } from './testing/reference-xml';
import { isXmlName, parseXml, parseXmlBytes, writeXml, writeXmlBytes, type XmlElement } from './xml';

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

/**
 * [PAYORCH-XML-NAME] One name set for reader and writer. The writer used to accept only `[A-Za-z_][A-Za-z0-9_.-]*`
 * while the reader took XML names (`:`, non-ASCII letters, `·`): a terminal message the reader accepted could not be
 * echoed in its `notimplemented` reply, and the command in flight ended `unknown` (exchange.spec.ts).
 */
describe('names: the reader and the writer accept exactly the same set, the XML 1.0 Name production', () => {
  // The production, written out independently of xml.ts (XML 1.0 fifth edition §2.3 [4], [4a], [5]).
  const START =
    ':A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
  // eslint-disable-next-line no-misleading-character-class -- the production's NameChar lists the combining marks U+0300–U+036F on purpose
  const PRODUCTION = new RegExp(`^[${START}][${START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040]*$`, 'u');
  const inSet = (n: string) => PRODUCTION.test(n) && n !== '__proto__';

  /** Characters at and around every boundary of the production, and markup. */
  const edges = [
    ...['a', 'Z', '_', ':', 'À', 'Ö', 'Ø', 'ö', 'ø', '˿', 'Ͱ', 'ͽ', 'Ϳ', '῿', '\u200c', '\u200d', '⁰', '↏', 'Ⰰ', '⿯', '、', '퟿', '豈', '﷏', 'ﷰ', '�'],
    ...['\u{10000}', '\u{effff}', 'д', 'Я', 'ё', '中', '-', '.', '0', '9', '·', '\u0300', '\u036f', '‿', '⁀'],
    ...['×', '÷', '\u037e', '\u2000', '\u200b', '\u2190', '\u3000', '\ufdd0', '\ufffe', '\uffff', '\u{f0000}', '\ud800', '\udc00', '\u00bf', '\u02ff\u0300'],
    ...[' ', '\t', '<', '>', '/', '=', '"', "'", '&', '!', '?', ';', '#', '@', '`', '\\', '[', '{', '~', '\u007f', '\u0000'],
  ];
  const candidate = fc.oneof(
    fc
      .array(fc.oneof(fc.constantFrom(...edges), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), { minLength: 0, maxLength: 6 })
      .map((parts) => parts.join('')),
    fc.constantFrom('__proto__', 'constructor', 'xml:lang', 'aq:event', 'событие', 'line1', 'resp-code', 'a.b', '1a', '-a', '.a', '·a', ''),
  );
  const readsElement = (n: string) => {
    try {
      return parseXml(`<${n}/>`).name === n;
    } catch {
      return false;
    }
  };
  const readsAttribute = (n: string) => {
    try {
      const { attrs } = parseXml(`<a ${n}="v"/>`);
      return Object.keys(attrs).length === 1 && attrs[n] === 'v';
    } catch {
      return false;
    }
  };
  const writes = (e: XmlElement) => {
    try {
      writeXml(e);
      return true;
    } catch (error) {
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
      return false;
    }
  };

  test.prop([candidate], { numRuns: 2000 })('a name is read, as an element or an attribute, iff it is written, iff it is in the production', (n) => {
    const expected = inSet(n);
    expect(isXmlName(n)).toBe(expected);
    expect(readsElement(n)).toBe(expected);
    expect(readsAttribute(n)).toBe(expected);
    expect(writes({ name: n, attrs: {}, children: [], text: '' })).toBe(expected);
    expect(writes({ name: 'a', attrs: { [n]: 'v' }, children: [], text: '' })).toBe(expected);
  });

  test.prop([candidate], { numRuns: 1000 })(
    'within the BMP it reads a name only where the reference does; beyond it, the production admits what the reference refuses',
    (n) => {
      // The reference also refuses or renames JavaScript property names (its objects are keyed by name; ours are not).
      if (!readsElement(n) || n in Object.prototype || n === 'prototype') return;
      const reference = referenceParseXml(`<${n}/>`);
      if (/[\u{10000}-\u{10FFFF}]/u.test(n)) expect(reference).toBeUndefined();
      else expect(reference?.name).toBe(n);
    },
  );

  it('refuses, in both directions, names outside the set', () => {
    for (const n of ['', '__proto__', '1a', '-a', '.a', '·a', 'a×b', 'a b', 'a\ud800', '\u{f0000}', 'a>']) {
      expect(isXmlName(n)).toBe(false);
      expect(() => writeXml({ name: n, attrs: {}, children: [], text: '' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      expect(() => writeXml({ name: 'a', attrs: { [n]: 'v' }, children: [], text: '' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      expect(readsElement(n)).toBe(false);
    }
  });

  /** Names of the whole set: the protocol's own (ASCII, `-`, digits) and what a terminal may add (`:`, `.`, other scripts). */
  const anyName = fc
    .tuple(
      fc.constantFrom('a', 'Z', '_', ':', 'д', 'Ω', 'ø', '中', 'ﷰ', '\u{10000}', '\u200c'),
      fc.array(fc.constantFrom('a', '0', '9', '-', '.', ':', '·', '\u0301', '‿', 'я', '\u{effff}'), { maxLength: 5 }),
    )
    .map(([first, rest]) => first + rest.join(''))
    .filter((n) => n !== '__proto__');
  /** Any text without lone surrogates (the wire is UTF-8), with markup characters, CR, LF and tab. */
  const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom('a&b', '<x/>', ']]>', 'l1\r\nl2\rl3', '\t"q\'', '&amp;', ''));
  const anyElement: fc.Arbitrary<XmlElement> = fc.letrec<{ node: XmlElement }>((tie) => ({
    node: fc.oneof(
      { maxDepth: 3 },
      fc.record({ name: anyName, attrs: fc.dictionary(anyName, anyText, { maxKeys: 2 }), children: fc.constant([]), text: anyText }),
      fc.record({
        name: anyName,
        attrs: fc.dictionary(anyName, anyText, { maxKeys: 2 }),
        children: fc.array(tie('node'), { minLength: 1, maxLength: 3 }),
        text: anyText,
      }),
    ),
  })).node;

  test.prop([anyElement], { numRuns: 300 })('any tree of names in the set is written and read back unchanged (bytes and text)', (e) => {
    expect(parseXml(writeXml(e))).toEqual(e);
    expect(parseXmlBytes(writeXmlBytes(e))).toEqual(e);
  });

  /** A document as a terminal may write it: any names of the set, references, CDATA (CR in it), comments, CRLF. */
  function written(e: XmlElement, gap: string, cdata: boolean): string {
    const attrs = Object.entries(e.attrs)
      .map(([k, v]) => ` ${k}='${v.replace(/&/g, '&#38;').replace(/</g, '&lt;').replace(/'/g, '&apos;').replace(/\r/g, '&#xD;')}'`)
      .join('');
    const text = cdata && !e.text.includes(']]>') ? `<![CDATA[${e.text}]]>` : e.text.replace(/&/g, '&amp;').replace(/</g, '&#60;');
    return `<${e.name}${attrs}>${gap}${text}${e.children.map((c) => written(c, gap, cdata) + gap).join('')}</${e.name}\r\n>`;
  }

  test.prop([anyElement, layout, fc.boolean(), fc.array(mutation, { maxLength: 2 })], { numRuns: 500 })(
    'any document the reader accepts, the writer writes back and the reader reads to the same tree',
    (e, { declaration, gap }, cdata, cuts) => {
      let xml = `${declaration ? '<?xml version="1.0"?>\r\n' : ''}${written(e, gap, cdata)}`;
      for (const [at, remove, insert] of cuts) {
        const i = at % (xml.length + 1);
        xml = xml.slice(0, i) + insert + xml.slice(i + remove);
      }
      let tree: XmlElement;
      try {
        tree = parseXmlBytes(new TextEncoder().encode(xml));
      } catch (error) {
        expect(error).toMatchObject({ name: 'JpayError' });
        return;
      }
      expect(parseXmlBytes(writeXmlBytes(tree))).toEqual(tree);
      expect(parseXml(writeXml(tree))).toEqual(tree);
    },
  );
});

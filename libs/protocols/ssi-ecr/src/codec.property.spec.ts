import { fc, test } from '@fast-check/jest';

import { decodeMessage, decodeRequest, encodeMessage, encodeRequest } from './codec';
import { FrameDecoder } from './framing';
import { METHODS, type FieldKind, type SsiMethod, type SsiRequest } from './messages';

const valueArb: Record<FieldKind, fc.Arbitrary<unknown>> = {
  amount: fc.integer({ min: 0, max: 999_999_999_999 }),
  boolean: fc.boolean(),
  currency: fc.stringMatching(/^\d{3}$/),
  digits: fc.stringMatching(/^\d{1,12}$/),
  alnum: fc.stringMatching(/^[0-9A-Za-z]{1,32}$/),
  merchantId: fc.stringMatching(/^[\x20-\x7e]{1,32}$/),
  text: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }).filter((s) => /^[^\x00-\x1f]+$/u.test(s)),
  uid: fc.stringMatching(/^[0-9A-Za-z_-]{1,64}$/),
  url: fc.webUrl({ validSchemes: ['https'] }),
  receiptXml: fc.string({ minLength: 1, maxLength: 200, unit: 'grapheme' }).map((s) => `<receipt><text>${s}</text></receipt>`),
};

/** Arbitrary valid request built from the method table (the message union). */
const requestArb: fc.Arbitrary<SsiRequest> = fc.constantFrom(...(Object.keys(METHODS) as SsiMethod[])).chain((method) => {
  const spec = METHODS[method];
  const fields = Object.entries(spec.params) as [string, { kind: FieldKind; required: boolean }][];
  const params = fc.record(Object.fromEntries(fields.map(([name, f]) => [name, valueArb[f.kind]])), {
    requiredKeys: fields.filter(([, f]) => f.required).map(([n]) => n),
  });
  const step = spec.group === 'financial' ? fc.option(fc.constantFrom(0, 1, 2), { nil: undefined }) : fc.constant(undefined);
  return fc.tuple(params, step).map(([p, s]) => {
    const fixed = { ...p } as Record<string, unknown>;
    // cross-field rule: discountedAmount ≤ transAmount
    if (typeof fixed.discountedAmount === 'number' && typeof fixed.transAmount === 'number') {
      fixed.discountedAmount = Math.min(fixed.discountedAmount, fixed.transAmount);
    }
    const request: Record<string, unknown> = { method };
    if (fields.length > 0) request.params = fixed;
    if (s !== undefined) request.step = s;
    return request as unknown as SsiRequest;
  });
});

describe('request codec properties', () => {
  test.prop([requestArb], { numRuns: 300 })('decodeRequest(encodeRequest(m)) deep-equals m, through a real frame', (request) => {
    const [event] = new FrameDecoder().push(encodeMessage(encodeRequest(request)));
    expect(event.kind).toBe('frame');
    if (event.kind === 'frame') expect(decodeRequest(decodeMessage(event.frame))).toEqual(request);
  });
});

import { z } from 'zod';

import { openApi } from './openapi-schema';
import { isWireCase, wireCase, wireEnum } from './wire-enum';

describe(wireEnum.name, () => {
  const sut = wireEnum('ExampleStatus', ['PENDING_ENROLLMENT', 'ACTIVE', 'tcp-listen']);

  it('maps database values to lower snake_case and back', () => {
    expect(sut.values).toEqual(['pending_enrollment', 'active', 'tcp_listen']);
    expect(sut.toApi('PENDING_ENROLLMENT')).toBe('pending_enrollment');
    expect(sut.toDb('tcp_listen')).toBe('tcp-listen');
    for (const value of sut.db) expect(sut.toDb(sut.toApi(value))).toBe(value);
  });

  it('parses only the API casing on input and yields the database value', () => {
    const query = z.object({ status: sut.input.optional() });
    expect(query.parse({ status: 'active' })).toEqual({ status: 'ACTIVE' });
    expect(query.safeParse({ status: 'ACTIVE' }).success).toBe(false);
    expect(query.safeParse({ status: 'tcp-listen' }).success).toBe(false);
  });

  it('is one named component schema in the OpenAPI document', () => {
    expect(openApi(z.object({ status: sut.schema }))).toMatchObject({ properties: { status: { $ref: '#/components/schemas/ExampleStatus' } } });
  });

  it('refuses values without a unique lower snake_case form', () => {
    expect(() => wireEnum('Clash', ['A_B', 'A-B'])).toThrow(/unique/);
    expect(() => sut.toApi('NOPE' as never)).toThrow(/unknown database value/);
  });

  it('tells lower snake_case apart', () => {
    expect(['ssi_ecr', 'online', 'a1_b2'].map(isWireCase)).toEqual([true, true, true]);
    expect(['SSI_ECR', 'tcp-listen', '_x', 'x__y'].map(isWireCase)).toEqual([false, false, false, false]);
    expect(wireCase('SSI_ECR')).toBe('ssi_ecr');
  });
});

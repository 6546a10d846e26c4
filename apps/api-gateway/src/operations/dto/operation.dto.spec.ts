import { CAPABILITIES, OPERATION_TYPES, type OperationCommand, type OperationType, SsiEcrDriver } from '@payorch/drivers';

import { AMOUNT_TYPES, createOperationSchema, ORIGINAL_TYPES, SSI_CURRENCY_TYPES } from './operation.dto';

const ORIGINAL = '11111111-1111-4111-8111-111111111111';

/** A body with every field the type needs, and nothing else. */
function complete(type: OperationType): Record<string, unknown> {
  return {
    type,
    ...(AMOUNT_TYPES.has(type) ? { amount: 1000 } : {}),
    ...(type === 'purchase_with_cashback' ? { cashbackAmount: 100 } : {}),
    ...(ORIGINAL_TYPES.has(type) ? { originalOperationId: ORIGINAL } : {}),
  };
}

const issues = (body: unknown) => {
  const result = createOperationSchema.safeParse(body);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('createOperationSchema: required fields by type', () => {
  it.each([...OPERATION_TYPES])('%s: accepts its required fields and names each missing one', (type) => {
    expect(issues(complete(type))).toEqual([]);
    if (AMOUNT_TYPES.has(type)) expect(issues({ ...complete(type), amount: undefined })).toEqual([`amount: is required for ${type}`]);
    if (ORIGINAL_TYPES.has(type))
      expect(issues({ ...complete(type), originalOperationId: undefined })).toEqual([
        `originalOperationId: is required for ${type} (the operation it refers to)`,
      ]);
    else expect(issues({ ...complete(type), originalOperationId: ORIGINAL })).toEqual([`originalOperationId: is not taken by ${type}`]);
  });

  it('derives the types needing an original from the capability matrix', () => {
    expect([...ORIGINAL_TYPES].sort()).toEqual(['partial_void', 'preauth_cancel', 'preauth_capture', 'refund', 'sbp_refund', 'void']);
  });

  it('lists every rule in the schema description (OpenAPI)', () => {
    const description = createOperationSchema.description ?? '';
    for (const type of [...AMOUNT_TYPES, ...ORIGINAL_TYPES, ...SSI_CURRENCY_TYPES]) expect(description).toContain(type);
    expect(description).toMatch(/currency on ssi_ecr terminals — /);
  });
});

describe('SSI_CURRENCY_TYPES', () => {
  // Types whose SSI ECR request the driver cannot build without a currency: exactly the set the gateway checks up front.
  it('is what the SSI ECR driver needs a currency for (partial_void needs none: §5.2.12 PartialVoid has no currency)', () => {
    const driver = new SsiEcrDriver({
      terminalRowId: 't',
      protocol: 'SSI_ECR',
      dialect: null,
      terminalId: null,
      merchantId: null,
      department: null,
      credentials: null,
      link: () => Promise.reject(new Error('never opened')),
    } as ConstructorParameters<typeof SsiEcrDriver>[0]);
    const toRequest = (command: OperationCommand) => (driver as unknown as { toRequest(c: OperationCommand): unknown }).toRequest(command);
    const supported = OPERATION_TYPES.filter((type) => CAPABILITIES.SSI_ECR['*']?.[type]);
    const needsCurrency = supported.filter((type) => {
      const command: OperationCommand = {
        operationId: 'o',
        type,
        amount: 1000,
        cashbackAmount: 100,
        original: { operationId: 'p', type: 'purchase', amount: 1000, rrn: '123456789012', approvalCode: 'A1', protocolRefs: { invoiceNum: '000001' } },
      };
      try {
        toRequest(command);
        return false;
      } catch (error) {
        return (error as Error).message === 'currency is required';
      }
    });
    expect(needsCurrency.sort()).toEqual([...SSI_CURRENCY_TYPES].sort());
    expect(SSI_CURRENCY_TYPES.has('partial_void')).toBe(false);
  });
});

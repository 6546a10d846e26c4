import { readFileSync } from 'node:fs';
import path from 'node:path';

import { assertSupported, CAPABILITIES, DriverError, OPERATION_TYPES, supportedTypes } from './index';

describe('capability matrix', () => {
  it('refuses an unsupported type naming the protocol (and dialect)', () => {
    expect(() => assertSupported('JOINPROTO', null, 'sbp_payment')).toThrow(
      new DriverError('UNSUPPORTED_OPERATION', 'JOINPROTO does not support operation type "sbp_payment"'),
    );
    expect(() => assertSupported('JPAY', 'jpay', 'preauth')).toThrow('JPAY (dialect jpay) does not support operation type "preauth"');
    expect(assertSupported('JPAY', null, 'partial_void').command).toBe('transaction type=void');
    // Both documents, §8.9: `void` with `amount` is a partial void (JPAY 1.0.14 and aQsi cardcore alike).
    expect(assertSupported('JPAY', 'jpay', 'partial_void')).toMatchObject({ command: 'transaction type=void', needsAmount: true, needsOriginal: true });
    expect(assertSupported('SSI_ECR', 'linux', 'preauth').command).toBe('Preauthorization');
  });

  it('is documented in docs/operations.md, row by row', () => {
    const doc = readFileSync(path.resolve(__dirname, '../../../docs/operations.md'), 'utf8');
    const columns: [keyof typeof CAPABILITIES, string][] = [
      ['JOINPROTO', '*'],
      ['JPAY', 'aqsi'],
      ['JPAY', 'jpay'],
      ['SSI_ECR', '*'],
    ];
    for (const type of OPERATION_TYPES) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${type}\` |`));
      expect(row).toBeDefined();
      const cells = row!.split(' | ').slice(1);
      columns.forEach(([protocol, dialect], i) => {
        const capability = CAPABILITIES[protocol][dialect]![type];
        expect(cells[i]!.replace(/ \|$/, '').startsWith(capability ? `${capability.command}:` : '✗')).toBe(true);
      });
    }
    expect(supportedTypes('SSI_ECR', null).length).toBeGreaterThan(10);
  });
});

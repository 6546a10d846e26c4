import { readFileSync } from 'node:fs';
import path from 'node:path';

import { CANCELED_TEXT, describeResponseCode, isCanceledText, RESPONSE_CODE_MEANINGS } from '@payorch/joinproto';
import { STATUS_CODES } from '@payorch/jpay';
import { ERROR_CODES, TRANSACTION_RESULTS } from '@payorch/ssi-ecr';

import { JOINPROTO_CANCELED_CODE, JOINPROTO_RESULT_CODES, joinprotoResult } from './joinproto';
import { JPAY_RESULT_CODES, jpayReceiptResult, jpayStatusResult } from './jpay';
import { RESULT_CODE_TABLES, renderResultCodesDoc } from './render';
import { SSI_RESULT_CODES, ssiResult } from './ssi-ecr';
import { REASON_CODES } from './types';

const codes = (table: { entries: readonly { code: string }[] }) => table.entries.map((e) => e.code);

describe('result-code tables', () => {
  it('list every code of the three specifications, once', () => {
    expect(codes(JOINPROTO_RESULT_CODES)).toEqual([...Object.keys(RESPONSE_CODE_MEANINGS), JOINPROTO_CANCELED_CODE]);
    // JPAY Appendix A (both documents) and the §8.10 decline-reason values.
    for (const status of STATUS_CODES.filter((s) => s !== 'ok')) expect(codes(JPAY_RESULT_CODES)).toContain(status);
    for (const reason of ['unabletoonline', 'offlinedeclined', 'systemerror', 'onlinedeclined', 'cardprocessingerror']) {
      expect(codes(JPAY_RESULT_CODES)).toContain(`ok/declined/${reason}`);
    }
    expect(codes(SSI_RESULT_CODES)).toEqual([...TRANSACTION_RESULTS, ...Object.keys(ERROR_CODES)]);
    for (const table of RESULT_CODE_TABLES) expect(new Set(codes(table)).size).toBe(table.entries.length);
  });

  it('give every row a known reason code and a message, and keep state and reason consistent across protocols', () => {
    const rows = RESULT_CODE_TABLES.flatMap((t) => t.entries.map((e) => ({ protocol: t.protocol, ...e })));
    for (const row of rows) {
      expect(Object.keys(REASON_CODES)).toContain(row.reasonCode);
      expect(row.message.length).toBeGreaterThan(3);
      // The same situation is the same reason everywhere: approval and cancel also have one state each.
      if (row.reasonCode === 'approved') expect([row.code, row.state]).toEqual([row.code, 'approved']);
      if (row.reasonCode === 'canceled') expect([row.code, row.state]).toEqual([row.code, 'canceled']);
      if (row.state === 'approved') expect(row.reasonCode).toBe('approved');
    }
    const canceled = rows.filter((r) => r.reasonCode === 'canceled').map((r) => `${r.protocol} ${r.code}`);
    expect(canceled).toEqual(['JOINPROTO XX/CANCELED', 'JPAY cancelled', 'SSI_ECR CANCELLED', 'SSI_ECR E12']);
    // A cancel never says "Protocol level error" (#15 item 6).
    for (const row of rows.filter((r) => r.state === 'canceled')) expect(row.message).not.toMatch(/protocol/i);
  });

  it('read Joinproto answers: a cancel in any spelling is canceled, a bare XX a failed protocol error, 923 not final', () => {
    for (const text of [CANCELED_TEXT, ' CANCELED  ', 'Canceled', 'CANCELLED']) {
      expect(isCanceledText(text)).toBe(true);
      expect(describeResponseCode('XX', text).category).toBe('canceled');
    }
    expect(isCanceledText('other err')).toBe(false);
    expect(joinprotoResult('XX', true)).toMatchObject({
      state: 'canceled',
      reasonCode: 'canceled',
      message: expect.stringMatching(/^Canceled on the terminal/),
    });
    expect(joinprotoResult('XX', false)).toMatchObject({ state: 'failed', message: 'Protocol level error' });
    expect(joinprotoResult('116', false)).toMatchObject({ state: 'declined', reasonCode: 'insufficient_funds' });
    expect(joinprotoResult('923', false)).toMatchObject({ state: 'unknown', reasonCode: 'in_progress' });
    expect(joinprotoResult('777', false)).toMatchObject({ state: 'declined', message: 'Unknown response code' });
  });

  it('read JPAY and SSI answers through their tables', () => {
    expect(jpayStatusResult('cancelled')).toMatchObject({ state: 'canceled', reasonCode: 'canceled' });
    expect(jpayStatusResult('ormaterror')).toMatchObject({ code: 'formaterror', state: 'failed', reasonCode: 'invalid_request' });
    expect(jpayStatusResult('connectionerror')).toMatchObject({ state: 'failed', message: 'terminal answered connectionerror' });
    expect(jpayReceiptResult(false, 'onlinedeclined')).toMatchObject({ state: 'declined', reasonCode: 'declined_by_issuer' });
    expect(jpayReceiptResult(false, undefined)).toMatchObject({ code: 'ok/declined' });
    expect(ssiResult('FAILED', 'E21')).toMatchObject({ state: 'declined', reasonCode: 'terminal_error' });
    expect(ssiResult(undefined, 'E12')).toMatchObject({ state: 'canceled' });
    expect(ssiResult(undefined, 'E20')).toMatchObject({ state: 'failed', reasonCode: 'original_not_found' });
    expect(ssiResult(undefined, 'E99')).toBeUndefined();
  });

  it('are what docs/protocols/result-codes.md says (regenerate with `npm run docs:result-codes`)', () => {
    const doc = readFileSync(path.resolve(__dirname, '../../../../docs/protocols/result-codes.md'), 'utf8');
    expect(doc).toBe(renderResultCodesDoc());
  });
});

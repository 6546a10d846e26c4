import { randomBytes, randomUUID } from 'node:crypto';

import { AssistServerError, AssistTransportError, type TokenPayOutcome } from '@payorch/assist-tokenpay';
import { SecretBox, SecretError } from '@payorch/domain';

import { bodyPathOf } from './fields';
import { openMerchantSecrets, sealMerchantSecrets } from './merchant-secrets';
import { changeOfOutcome, stateOfOrderStatus } from './outcome';
import { resolveJob, resolveJobId } from './resolve-job';

describe(bodyPathOf.name, () => {
  it.each([
    ['Email', 'customer.email'],
    ['OrderAmount', 'amount'],
    ['PaymentToken', 'token'],
    ['ChequeItems[2].price', 'chequeItems.2.price'],
    ['RecurringMaxDate', 'recurring.maxDate'],
    ['Unheard', 'Unheard'],
  ])('maps %s to %s', (spec, body) => expect(bodyPathOf(spec)).toBe(body));
});

describe('merchant secrets', () => {
  const box = new SecretBox({ id: 'k1', key: randomBytes(32) });
  const secrets = { login: 'sandbox_login', password: 'sandboxPass1', salt: 'salt', privateKeyPem: null, assistPublicKeyPem: null };

  it('round-trips and never contains a secret in clear', () => {
    const [tenant, row] = [randomUUID(), randomUUID()];
    const sealed = sealMerchantSecrets(box, tenant, row, secrets);
    expect(sealed).not.toContain('sandboxPass1');
    expect(openMerchantSecrets(box, tenant, row, sealed)).toEqual(secrets);
  });

  it('does not open under another tenant or row (AAD binding)', () => {
    const [tenant, row] = [randomUUID(), randomUUID()];
    const sealed = sealMerchantSecrets(box, tenant, row, secrets);
    expect(() => openMerchantSecrets(box, randomUUID(), row, sealed)).toThrow(SecretError);
    expect(() => openMerchantSecrets(box, tenant, randomUUID(), sealed)).toThrow(SecretError);
  });
});

describe(changeOfOutcome.name, () => {
  it('maps every order status to a state', () => {
    expect(stateOfOrderStatus('approved')).toBe('APPROVED');
    expect(stateOfOrderStatus('authorized')).toBe('AUTHORIZED');
    expect(stateOfOrderStatus('declined')).toBe('DECLINED');
    expect(stateOfOrderStatus('timed_out')).toBe('DECLINED');
    expect(stateOfOrderStatus('canceled')).toBe('CANCELED');
    expect(stateOfOrderStatus('partially_canceled')).toBe('PARTIALLY_REFUNDED');
    expect(stateOfOrderStatus('partially_charged')).toBe('PARTIALLY_CAPTURED');
    expect(stateOfOrderStatus('partially_approved')).toBe('APPROVED');
    expect(stateOfOrderStatus('in_process')).toBe('PROCESSING');
  });

  it('keeps an unknown outcome UNKNOWN with the reason, never failed', () => {
    const outcome: TokenPayOutcome = { status: 'unknown', orderNumber: 'o', error: new AssistTransportError('TIMEOUT', 'timed out') };
    expect(changeOfOutcome(outcome)).toEqual({
      state: 'UNKNOWN',
      completedAt: null,
      error: { source: 'transport', code: 'TIMEOUT', message: 'timed out', firstCode: null, secondCode: null, field: null },
    });
  });

  it('stores a refusal with both Assist codes and the field they name', () => {
    const error = new AssistServerError(
      3,
      108,
      'MISSING_PARAMETER',
      { secondCode: 108, message: 'Amount', specText: '', field: 'OrderAmount' },
      'A required parameter is missing (Amount) [3/108]',
    );
    const change = changeOfOutcome({ status: 'rejected', orderNumber: 'o', error });
    expect(change).toMatchObject({
      state: 'REJECTED',
      error: { source: 'assist', code: 'MISSING_PARAMETER', firstCode: 3, secondCode: 108, field: 'OrderAmount' },
    });
    expect(change.completedAt).toBeInstanceOf(Date);
  });
});

describe(resolveJob.name, () => {
  it('derives the job id from the payment id (BullMQ forbids ":" in custom ids)', () => {
    const id = randomUUID();
    const job = resolveJob({ paymentId: id, tenantId: randomUUID() }, { delayMs: 5, attempts: 3, backoffMs: 7 });
    expect(job.opts).toMatchObject({ jobId: resolveJobId(id), delay: 5, attempts: 3, backoff: { type: 'exponential', delay: 7 } });
    expect(job.opts.jobId).not.toContain(':');
    expect(resolveJobId(id)).toBe(resolveJobId(id));
  });
});

import { webhookSignature } from '@payorch/operations';

import { verifyWebhookSignature } from './webhooks';

describe(verifyWebhookSignature.name, () => {
  const secret = 'whsec_test';
  const body = '{"id":"e1","type":"operation.completed","data":{"state":"approved"}}';
  const now = 1_800_000_000;

  it('accepts what the server signs (libs/operations webhookSignature)', () => {
    expect(verifyWebhookSignature(secret, webhookSignature(secret, body, now), body, { nowSeconds: now })).toBe(true);
    expect(verifyWebhookSignature(secret, webhookSignature(secret, body, now), new TextEncoder().encode(body), { nowSeconds: now + 299 })).toBe(true);
  });

  it('refuses another body, another secret, a stale or future timestamp and malformed headers', () => {
    const header = webhookSignature(secret, body, now);
    expect(verifyWebhookSignature(secret, header, `${body} `, { nowSeconds: now })).toBe(false);
    expect(verifyWebhookSignature('whsec_other', header, body, { nowSeconds: now })).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, { nowSeconds: now + 301 })).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, { nowSeconds: now - 301 })).toBe(false);
    for (const bad of [undefined, '', 'v1=abc', `t=${now}`, `t=x,v1=${header.split('v1=')[1]}`, `t=${now},v1=zz`]) {
      expect(verifyWebhookSignature(secret, bad, body, { nowSeconds: now })).toBe(false);
    }
  });

  it('accepts any of several v1 signatures (secret rotation)', () => {
    const old = webhookSignature('whsec_old', body, now).split(',')[1];
    expect(verifyWebhookSignature(secret, `${webhookSignature(secret, body, now)},${old}`, body, { nowSeconds: now })).toBe(true);
  });
});

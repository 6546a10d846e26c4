import { createHmac } from 'node:crypto';

/** AAD binding a sealed webhook secret to its tenant and endpoint (a copied envelope does not open elsewhere). */
export const webhookSecretAad = (tenantId: string, endpointId: string): string => `webhook-endpoint:${tenantId}:${endpointId}`;

/**
 * `Payorch-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
 * (docs/webhooks.md). The secret is used as given, `whsec_` prefix included.
 */
export function webhookSignature(secret: string, rawBody: string, unixSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.${rawBody}`).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}

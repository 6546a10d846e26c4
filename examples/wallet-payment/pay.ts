import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { createPayorchClient, type Schemas, unwrap } from '@payorch/client';

/**
 * An ecommerce backend's wallet payment (Apple Pay / Google Pay / Samsung Pay token → Assist TokenPay) on
 * @payorch/client. The payment carries its own Idempotency-Key; a payment Assist has not answered yet
 * (`pending` / `processing`) is followed with GET until it is final.
 *
 *   PAYORCH_URL=http://localhost:3000 PAYORCH_API_KEY=pok_… PAYORCH_ASSIST_MERCHANT_ID=<uuid> \
 *     node scripts/run-ts.mjs examples/wallet-payment/pay.ts 10000 apple_pay token.json
 */
export interface WalletPayOptions {
  baseUrl: string;
  apiKey: string;
  /** The Assist merchant settings' id (`POST /v1/assist-merchants`). */
  merchantId: string;
  amount: number;
  currency?: string;
  tokenType: Schemas['WalletTokenType'];
  /** The wallet token as the wallet gave it (object or JSON text). */
  token: Record<string, unknown> | string;
  customer: Schemas['CreateWalletPaymentRequest']['customer'];
  /** Poll interval and limit while the payment is not final (defaults 1 s, 60 polls). */
  pollMs?: number;
  maxPolls?: number;
  log?: (line: string) => void;
}

const IN_FLIGHT: ReadonlySet<Schemas['WalletPaymentState']> = new Set(['pending', 'processing']);

export async function payWithWallet(options: WalletPayOptions): Promise<Schemas['WalletPayment']> {
  const log = options.log ?? ((line: string) => console.log(line));
  const api = createPayorchClient({ baseUrl: options.baseUrl, apiKey: options.apiKey });
  let payment = await unwrap(
    api.POST('/v1/wallet-payments', {
      params: { header: { 'Idempotency-Key': `wallet-${randomUUID()}` } },
      body: {
        merchantId: options.merchantId,
        amount: options.amount,
        currency: options.currency ?? 'RUB',
        tokenType: options.tokenType,
        token: options.token,
        customer: options.customer,
      },
    }),
  );
  for (let poll = 0; IN_FLIGHT.has(payment.state) && poll < (options.maxPolls ?? 60); poll++) {
    log(`wallet payment ${payment.id}: ${payment.state}, waiting for Assist`);
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
    payment = await unwrap(api.GET('/v1/wallet-payments/{id}', { params: { path: { id: payment.id } } }));
  }
  const assist = payment.assist ? ` (Assist ${payment.assist.orderState}, order ${payment.orderNumber})` : '';
  log(`wallet payment ${payment.id}: ${payment.state}${assist}`);
  if (payment.state === 'requires_action' && payment.continueUrl) log(`3-D Secure: send the buyer to ${payment.continueUrl}`);
  if (payment.error) log(`error ${payment.error.code}: ${payment.error.message}`);
  return payment;
}

if (require.main === module) {
  const [amount, tokenType, tokenFile] = process.argv.slice(2);
  const env = (name: string) => process.env[name] ?? (console.error(`set ${name}`), process.exit(2));
  if (!tokenFile) {
    console.error('usage: pay.ts <amount> <apple_pay|google_pay|samsung_pay> <token.json>');
    process.exit(2);
  }
  payWithWallet({
    baseUrl: env('PAYORCH_URL'),
    apiKey: env('PAYORCH_API_KEY'),
    merchantId: env('PAYORCH_ASSIST_MERCHANT_ID'),
    amount: Number(amount),
    tokenType: tokenType as Schemas['WalletTokenType'],
    token: readFileSync(tokenFile, 'utf8'),
    customer: { lastname: 'Buyer', firstname: 'Test', email: process.env.BUYER_EMAIL ?? 'buyer@example.com' },
  }).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}

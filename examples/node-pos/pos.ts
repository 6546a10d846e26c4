import { randomUUID } from 'node:crypto';

import { createPayorchClient, type Schemas, unwrap } from '@payorch/client';

/**
 * A point-of-sale script on @payorch/client: one purchase on a terminal, its receipt, and (with
 * `--refund`) its refund. A lost answer is retried with the same Idempotency-Key, so the payment runs once.
 *
 *   PAYORCH_URL=http://localhost:3000 PAYORCH_API_KEY=pok_… PAYORCH_TERMINAL_ID=<uuid> \
 *     node scripts/run-ts.mjs examples/node-pos/pos.ts 1500 --refund
 */
export interface PosOptions {
  baseUrl: string;
  apiKey: string;
  terminalId: string;
  amount: number;
  currency?: string;
  refund?: boolean;
  log?: (line: string) => void;
}

export interface PosResult {
  purchase: Schemas['Operation'];
  receipt: Schemas['Receipt'] | null;
  refund: Schemas['Operation'] | null;
}

export async function runPos(options: PosOptions): Promise<PosResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const api = createPayorchClient({ baseUrl: options.baseUrl, apiKey: options.apiKey });
  const currency = options.currency ?? 'RUB';
  const terminal = await unwrap(api.GET('/v1/terminals/{id}', { params: { path: { id: options.terminalId } } }));
  log(`terminal ${terminal.name} (${terminal.protocol}, ${terminal.status})`);

  const purchaseKey = `pos-${randomUUID()}`;
  const purchase = await payOnce(() =>
    unwrap(
      api.POST('/v1/terminals/{id}/operations', {
        params: { path: { id: terminal.id }, query: { wait: 60_000 }, header: { 'Idempotency-Key': purchaseKey } },
        body: { type: 'purchase', amount: options.amount, currency },
      }),
    ),
  );
  log(`purchase ${purchase.id}: ${purchase.state}${purchase.maskedPan ? ` (${purchase.maskedPan})` : ''}`);
  if (purchase.state !== 'approved') return { purchase, receipt: null, refund: null };

  const receipt = purchase.hasReceipt ? await unwrap(api.GET('/v1/operations/{id}/receipt', { params: { path: { id: purchase.id } } })) : null;
  if (receipt?.text) log(receipt.text);
  if (!options.refund) return { purchase, receipt, refund: null };

  const refund = await unwrap(
    api.POST('/v1/terminals/{id}/operations', {
      params: { path: { id: terminal.id }, query: { wait: 60_000 } },
      body: { type: 'refund', amount: options.amount, currency, originalOperationId: purchase.id },
    }),
  );
  log(`refund ${refund.id}: ${refund.state}`);
  return { purchase, receipt, refund };
}

/** Retries a call whose answer was lost (network error): the same Idempotency-Key makes the retry safe. */
async function payOnce<T>(call: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= attempts || !(err instanceof TypeError)) throw err; // TypeError: fetch failed (no answer)
    }
  }
}

if (require.main === module) {
  const [amount, flag] = process.argv.slice(2);
  const env = (name: string) => process.env[name] ?? (console.error(`set ${name}`), process.exit(2));
  runPos({
    baseUrl: env('PAYORCH_URL'),
    apiKey: env('PAYORCH_API_KEY'),
    terminalId: env('PAYORCH_TERMINAL_ID'),
    amount: Number(amount ?? 1500),
    refund: flag === '--refund',
  }).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}

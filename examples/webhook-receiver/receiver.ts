import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { type PayorchEvent, verifyWebhookSignature } from '@payorch/client';

/**
 * A webhook receiver on node:http: verifies each delivery's `Payorch-Signature` over the raw body with
 * `verifyWebhookSignature` of @payorch/client, answers 204 to a valid delivery and 401 to anything else
 * (the gateway retries non-2xx answers), and prints one line per event. Deduplicates by `Payorch-Event-Id`
 * (deliveries are at least once).
 *
 *   PAYORCH_WEBHOOK_SECRET=whsec_… PORT=8080 node scripts/run-ts.mjs examples/webhook-receiver/receiver.ts
 */
export interface ReceiverOptions {
  /** The endpoint's secret, shown once by `POST /v1/webhooks` (or rotate-secret). */
  secret: string;
  port?: number;
  host?: string;
  onEvent?: (event: PayorchEvent) => void;
  log?: (line: string) => void;
}

export interface Receiver {
  server: Server;
  /** `http://host:port` the receiver listens on (register `<url>/` as the endpoint URL). */
  url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

export async function startReceiver(options: ReceiverOptions): Promise<Receiver> {
  const log = options.log ?? ((line: string) => console.log(line));
  const seen = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const signature = req.headers['payorch-signature'];
      const valid =
        req.method === 'POST' && size <= MAX_BODY_BYTES && verifyWebhookSignature(options.secret, Array.isArray(signature) ? signature[0] : signature, raw);
      if (!valid) {
        log(`refused ${req.method} ${req.url}: invalid signature`);
        res.writeHead(401, { 'Content-Type': 'text/plain' }).end('invalid signature');
        return;
      }
      let event: PayorchEvent;
      try {
        event = JSON.parse(raw) as PayorchEvent;
      } catch {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('invalid JSON');
        return;
      }
      res.writeHead(204).end();
      if (seen.has(event.id)) return; // a retry of an event already handled
      seen.add(event.id);
      log(`event ${event.id} ${event.type} ${JSON.stringify(event.data)}`);
      options.onEvent?.(event);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    server,
    url: `http://${address.address}:${address.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

if (require.main === module) {
  const secret = process.env.PAYORCH_WEBHOOK_SECRET ?? (console.error('set PAYORCH_WEBHOOK_SECRET'), process.exit(2));
  startReceiver({ secret, port: Number(process.env.PORT ?? 8080), host: process.env.HOST ?? '127.0.0.1' })
    .then((receiver) => console.log(`listening on ${receiver.url}`))
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    });
}

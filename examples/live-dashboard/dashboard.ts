import { EventStream, type PayorchEvent } from '@payorch/client';

/**
 * A dashboard following the live event stream (`GET /v1/events/stream`) with `EventStream` of
 * @payorch/client: one line per operation event. A dropped connection is resumed with `Last-Event-ID`, so
 * nothing is missed or repeated; pass the last id printed as PAYORCH_LAST_EVENT_ID to resume after a restart.
 * An API key with the `events:read` scope is enough.
 *
 *   PAYORCH_URL=http://localhost:3000 PAYORCH_API_KEY=pok_… node scripts/run-ts.mjs examples/live-dashboard/dashboard.ts
 */
export interface DashboardOptions {
  baseUrl: string;
  apiKey: string;
  lastEventId?: string;
  /** Stops following (the promise resolves). */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export async function followOperations(options: DashboardOptions): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(line));
  const stream = new EventStream({
    baseUrl: options.baseUrl,
    apiKey: options.apiKey,
    types: ['operation.*'],
    lastEventId: options.lastEventId,
    signal: options.signal,
  });
  for await (const event of stream) log(formatOperationEvent(event));
}

/** `<createdAt> <type> <operationId> <state> <amount> <currency> [<maskedPan>] (event <id>)` */
export function formatOperationEvent(event: PayorchEvent): string {
  const data = event.data as Record<string, unknown>;
  const fields = [event.createdAt, event.type, data.operationId ?? event.subjectId, data.state, data.amount, data.currency, data.maskedPan];
  return `${fields.filter((f) => f !== undefined && f !== null).join(' ')} (event ${event.id})`;
}

if (require.main === module) {
  const env = (name: string) => process.env[name] ?? (console.error(`set ${name}`), process.exit(2));
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  followOperations({
    baseUrl: env('PAYORCH_URL'),
    apiKey: env('PAYORCH_API_KEY'),
    lastEventId: process.env.PAYORCH_LAST_EVENT_ID,
    signal: controller.signal,
  }).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}

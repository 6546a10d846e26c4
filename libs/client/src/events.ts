import type { components } from './generated/openapi';

export type PayorchEvent = components['schemas']['Event'];

export interface EventStreamOptions {
  baseUrl: string;
  apiKey: string;
  /** Only these types (`operation.*` style families allowed). */
  types?: string[];
  /** Resume after this event id (the last one you processed). */
  lastEventId?: string;
  /** Stops the stream (the iterator ends). */
  signal?: AbortSignal;
  /** Reconnect delay after a dropped connection, ms (default: the server's `retry:`, 2000). */
  reconnectMs?: number;
  fetch?: typeof fetch;
}

/**
 * The live event stream (`GET /v1/events/stream`, Server-Sent Events) as an async iterator. A dropped
 * connection is reopened with `Last-Event-ID` = the last event yielded, so the server replays what was
 * missed first, in order: no event is lost or repeated across reconnects. `stream.lastEventId` is what to
 * store to resume after a restart. An answer that is not 200 (401, 403, 400) ends the iterator with an error.
 */
export class EventStream implements AsyncIterable<PayorchEvent> {
  lastEventId: string | undefined;
  /** Connections opened so far (1 + reconnects). */
  connections = 0;

  constructor(private readonly options: EventStreamOptions) {
    this.lastEventId = options.lastEventId;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<PayorchEvent> {
    const { signal } = this.options;
    let retryMs = this.options.reconnectMs ?? 2000;
    while (!signal?.aborted) {
      let response: Response;
      try {
        response = await this.open();
      } catch (err) {
        if (signal?.aborted) return;
        await sleep(retryMs, signal);
        continue;
        void err;
      }
      if (response.status !== 200 || !response.body) {
        throw new Error(`event stream: HTTP ${response.status} ${await response.text().catch(() => '')}`);
      }
      try {
        for await (const message of messages(response.body)) {
          if (message.retry !== undefined && this.options.reconnectMs === undefined) retryMs = message.retry;
          if (message.data === undefined) continue;
          const event = JSON.parse(message.data) as PayorchEvent;
          this.lastEventId = message.id ?? event.id;
          yield event;
        }
      } catch (err) {
        if (signal?.aborted) return;
        void err; // a dropped connection: reconnect below
      }
      if (signal?.aborted) return;
      await sleep(retryMs, signal);
    }
  }

  private open(): Promise<Response> {
    const { baseUrl, apiKey, types, signal } = this.options;
    const url = new URL(`${baseUrl.replace(/\/$/, '')}/v1/events/stream`);
    if (types?.length) url.searchParams.set('types', types.join(','));
    const headers: Record<string, string> = { Authorization: `Bearer ${apiKey}`, Accept: 'text/event-stream' };
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    this.connections += 1;
    return (this.options.fetch ?? fetch)(url, { headers, signal });
  }
}

interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
}

/** Parses an SSE byte stream into messages (comments and heartbeats are skipped). */
async function* messages(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let current: SseMessage = {};
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (current.data !== undefined || current.retry !== undefined) yield current;
        current = {};
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') current.data = current.data === undefined ? value : `${current.data}\n${value}`;
      else if (field === 'id') current.id = value;
      else if (field === 'event') current.event = value;
      else if (field === 'retry' && /^\d+$/.test(value)) current.retry = Number(value);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

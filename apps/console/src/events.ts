import { type ApiError, keyStore, readApiError, type Schemas } from './api';

/** One event of the tenant's live stream (GET /v1/events/stream, Server-Sent Events). */
export type LiveEvent = Schemas['Event'];

export type StreamState = 'connecting' | 'live' | 'down';

/** The longest wait a refusal's `Retry-After` may impose before the next attempt. */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * The refusals that end the retries: 401 `UNAUTHENTICATED` (the key unknown, revoked or expired) and 403 `FORBIDDEN`
 * (the key lacks `events:read`, apps/api-gateway/src/events/events.controller.ts). Only another key changes them.
 */
const FINAL_STATUSES: ReadonlySet<number> = new Set([401, 403]);

/** The gateway answered the stream with an error (its envelope) rather than events. */
class Refused extends Error {
  constructor(
    readonly error: ApiError,
    /** `Retry-After` in ms (seconds on the wire), undefined when absent or not a number of seconds. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(error.message);
  }
}

function retryAfterMs(header: string | null): number | undefined {
  const seconds = header === null || header.trim() === '' ? NaN : Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/**
 * The live event stream over `fetch` (EventSource cannot send the Authorization header, and the key
 * never goes into a URL). Parses SSE frames, reconnects with `Last-Event-ID` so nothing is missed, and
 * backs off up to 10 s while the gateway is away. A refusal's envelope is kept as `lastError` (until the
 * stream is live again) and given to the state listeners; a refusal's `Retry-After` (a 429: the tenant's
 * streams or the key's rate) is waited out before the next attempt (at most 10 min, never less than the
 * backoff). A 401 (the key revoked or expired) or a 403 (the key lacks `events:read`; a key's scopes never
 * change) ends the retries: neither goes away by asking again, so the stream stays down, its refusal shown,
 * until it is started again (a new sign-in).
 */
export class EventStream {
  private readonly listeners = new Set<(event: LiveEvent) => void>();
  private readonly stateListeners = new Set<(state: StreamState, error: ApiError | undefined) => void>();
  private abort: AbortController | undefined;
  private lastId: string | undefined;
  /** Bumped by each start and stop: a loop of an earlier start ends at its next step (one loop at a time). */
  private generation = 0;
  state: StreamState = 'connecting';
  /** Why the gateway last refused the stream; undefined once it is live (or never refused). */
  lastError: ApiError | undefined;

  onEvent(listener: (event: LiveEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener: (state: StreamState, error: ApiError | undefined) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  start(): void {
    this.stop();
    this.lastError = undefined;
    void this.run(this.generation);
  }

  stop(): void {
    this.generation++;
    this.abort?.abort();
  }

  private setState(state: StreamState): void {
    this.state = state;
    if (state === 'live') this.lastError = undefined;
    this.stateListeners.forEach((l) => l(state, this.lastError));
  }

  private async run(generation: number): Promise<void> {
    const current = () => generation === this.generation;
    let delay = 250;
    while (current()) {
      this.setState('connecting');
      let wait = delay;
      let retry = true;
      try {
        await this.connectOnce(() => (delay = 250));
      } catch (err) {
        // a refusal is kept and shown; a network error or an abort just reconnects below
        if (err instanceof Refused && current()) {
          this.lastError = err.error;
          if (FINAL_STATUSES.has(err.error.status)) retry = false;
          if (err.retryAfterMs !== undefined) wait = Math.max(delay, Math.min(err.retryAfterMs, MAX_RETRY_AFTER_MS));
        }
      }
      if (!current()) return;
      this.setState('down');
      if (!retry) return;
      await new Promise((resolve) => setTimeout(resolve, wait));
      delay = Math.min(delay * 2, 10_000);
    }
  }

  private async connectOnce(onLive: () => void): Promise<void> {
    this.abort = new AbortController();
    const headers: Record<string, string> = { Accept: 'text/event-stream', Authorization: `Bearer ${keyStore.get() ?? ''}` };
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    const res = await fetch('/v1/events/stream', { headers, signal: this.abort.signal });
    if (!res.ok) throw new Refused(await readApiError(res), retryAfterMs(res.headers.get('Retry-After')));
    if (!res.body) throw new Error(`event stream answered ${res.status} without a body`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        this.frame(frame, onLive);
      }
    }
  }

  private frame(frame: string, onLive: () => void): void {
    let data = '';
    for (const line of frame.split('\n')) {
      if (line === ': live') {
        onLive();
        this.setState('live');
      } else if (line.startsWith('data:')) data += line.slice(5).trimStart();
    }
    if (!data) return;
    const event = JSON.parse(data) as LiveEvent;
    this.lastId = event.id;
    this.listeners.forEach((l) => l(event));
  }
}

import { keyStore, type Schemas } from './api';

/** One event of the tenant's live stream (GET /v1/events/stream, Server-Sent Events). */
export type LiveEvent = Schemas['Event'];

export type StreamState = 'connecting' | 'live' | 'down';

/**
 * The live event stream over `fetch` (EventSource cannot send the Authorization header, and the key
 * never goes into a URL). Parses SSE frames, reconnects with `Last-Event-ID` so nothing is missed, and
 * backs off up to 10 s while the gateway is away.
 */
export class EventStream {
  private readonly listeners = new Set<(event: LiveEvent) => void>();
  private readonly stateListeners = new Set<(state: StreamState) => void>();
  private abort: AbortController | undefined;
  private lastId: string | undefined;
  private stopped = false;
  state: StreamState = 'connecting';

  onEvent(listener: (event: LiveEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener: (state: StreamState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  start(): void {
    this.stopped = false;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  private setState(state: StreamState): void {
    this.state = state;
    this.stateListeners.forEach((l) => l(state));
  }

  private async run(): Promise<void> {
    let delay = 250;
    while (!this.stopped) {
      this.setState('connecting');
      try {
        await this.connectOnce(() => (delay = 250));
      } catch {
        // network error or abort: reconnect below
      }
      if (this.stopped) return;
      this.setState('down');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }

  private async connectOnce(onLive: () => void): Promise<void> {
    this.abort = new AbortController();
    const headers: Record<string, string> = { Accept: 'text/event-stream', Authorization: `Bearer ${keyStore.get() ?? ''}` };
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    const res = await fetch('/v1/events/stream', { headers, signal: this.abort.signal });
    if (!res.ok || !res.body) throw new Error(`event stream answered ${res.status}`);
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

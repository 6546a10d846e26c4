import type { Counter } from 'prom-client';

import type { Logger } from '@payorch/logging';

export interface ScrapeCacheOptions {
  /** A read serves every scrape within this long after it started (several Prometheus servers, or a dashboard, cost one). */
  ttlMs: number;
  /** How long a scrape waits for the read in flight before it answers with the previous values (scrape timeouts are ~10 s). */
  waitMs: number;
  /** A read failed (`error`), or a scrape stopped waiting for it (`timeout`, once per read). */
  onFailure(reason: 'error' | 'timeout', error?: unknown): void;
  /** Milliseconds; Date.now by default. */
  now?: () => number;
}

interface Read {
  readonly done: Promise<void>;
  timedOut: boolean;
}

/**
 * What a scrape shows of values read elsewhere (PostgreSQL, Redis): those of the last read that succeeded, or
 * undefined before any did. At most one read at a time and one per `ttlMs` (a failed one too: a store in trouble is
 * not asked again at every scrape); a scrape waits for the read in flight at most `waitMs`. Never rejects: a failed
 * or hanging read keeps /metrics answering, with the previous values.
 */
export class ScrapeCache<T> {
  private last: T | undefined;
  private startedAt = Number.NEGATIVE_INFINITY;
  private reading: Read | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly options: ScrapeCacheOptions,
  ) {}

  async current(): Promise<T | undefined> {
    const now = (this.options.now ?? Date.now)();
    if (this.reading === undefined && now - this.startedAt >= this.options.ttlMs) {
      this.startedAt = now;
      this.reading = this.start();
    }
    const reading = this.reading;
    if (reading !== undefined && !(await settlesWithin(reading.done, this.options.waitMs)) && !reading.timedOut) {
      reading.timedOut = true;
      this.options.onFailure('timeout');
    }
    return this.last;
  }

  private start(): Read {
    const done = Promise.resolve()
      .then(() => this.read())
      .then(
        (value) => {
          this.last = value;
        },
        (error: unknown) => this.options.onFailure('error', error),
      )
      .finally(() => {
        this.reading = undefined;
      });
    return { done, timedOut: false };
  }
}

/**
 * Metrics whose values are read elsewhere when /metrics is scraped: `metricsOf` builds them on what a ScrapeCache over
 * `read` holds; a failed or timed-out read counts in their `readFailures` and logs `reading the <what> failed`.
 */
export function scrapedMetrics<T, M extends { readFailures: Counter<'reason'> }>(
  read: () => Promise<T>,
  metricsOf: (current: () => Promise<T | undefined>) => M,
  options: Omit<ScrapeCacheOptions, 'onFailure'> & { logger?: Logger; what: string },
): { metrics: M; cache: ScrapeCache<T> } {
  const cache: ScrapeCache<T> = new ScrapeCache(read, {
    ...options,
    onFailure: (reason, error) => {
      metrics.readFailures.inc({ reason });
      options.logger?.warn(
        { reason, err: error instanceof Error ? error.message : error },
        `reading the ${options.what} failed; /metrics keeps the previous values`,
      );
    },
  });
  const metrics = metricsOf(() => cache.current());
  return { metrics, cache };
}

/** Whether `promise` (which never rejects) settled within `ms`. */
async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

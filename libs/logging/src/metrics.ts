import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** A Prometheus registry per process with default Node metrics and the service label. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function httpMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'payorch_http_requests_total',
      help: 'HTTP requests by method, route and status.',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'payorch_http_request_duration_seconds',
      help: 'HTTP request duration by method and route.',
      labelNames: ['method', 'route'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}

/** Failed API-key authentication (gateway), by reason, and attempts refused by the per-address throttle. */
export function authMetrics(registry: Registry) {
  return {
    failures: new Counter({
      name: 'payorch_auth_failures_total',
      help: 'Failed API-key authentications by reason (invalid_key, revoked_key, expired_key).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    throttled: new Counter({
      name: 'payorch_auth_throttled_total',
      help: 'Requests refused without checking their API key because their source address failed authentication too often.',
      registers: [registry],
    }),
  };
}

/** Readiness per check (`/health/ready`): 1 = ok, 0 = failing; set on every evaluation. */
export function readinessMetrics(registry: Registry) {
  return {
    ready: new Gauge({
      name: 'payorch_ready',
      help: 'Readiness of this process by check (1 ok, 0 failing), as last evaluated by /health/ready or a scrape.',
      labelNames: ['check'] as const,
      registers: [registry],
    }),
  };
}

/** Backlog of a connector instance's command-bus consumer group, read at scrape time. */
export function commandBusMetrics(registry: Registry, backlog: () => Promise<{ pending: number; lag: number } | null>) {
  let last: Promise<{ pending: number; lag: number } | null> | undefined;
  // One XINFO per scrape for both gauges.
  const read = () =>
    (last ??= backlog()
      .catch(() => null)
      .finally(() => setImmediate(() => (last = undefined))));
  return {
    pending: new Gauge({
      name: 'payorch_command_bus_pending',
      help: 'Commands read by this connector instance and not answered yet (XPENDING of its group).',
      registers: [registry],
      async collect() {
        const b = await read();
        if (b) this.set(b.pending);
      },
    }),
    lag: new Gauge({
      name: 'payorch_command_bus_lag',
      help: "Commands waiting in this connector instance's request stream, not read yet (XINFO GROUPS lag).",
      registers: [registry],
      async collect() {
        const b = await read();
        if (b) this.set(b.lag);
      },
    }),
  };
}

/**
 * The process's host name lookups for tenant-directed destinations (egress-guard's `systemLookups`), read at scrape
 * time: slots held (DNS queries running, whether or not anyone still waits), lookups waiting, and lookups
 * refused (`queue_full`, `timeout_queued`, `timeout_running`) since the process started.
 */
export function egressLookupMetrics(registry: Registry, lookups: { stats(): { inFlight: number; queued: number; refused: Readonly<Record<string, number>> } }) {
  const counted: Record<string, number> = {};
  return {
    inFlight: new Gauge({
      name: 'payorch_egress_dns_lookups_in_flight',
      help: 'Host name lookups of tenant-directed destinations running now (DNS queries, ended by their deadline, and hosts-file reads), including those whose caller gave up.',
      registers: [registry],
      collect() {
        this.set(lookups.stats().inFlight);
      },
    }),
    queued: new Gauge({
      name: 'payorch_egress_dns_lookups_queued',
      help: 'Host name lookups of tenant-directed destinations waiting for a lookup slot (EGRESS_DNS_MAX_IN_FLIGHT).',
      registers: [registry],
      collect() {
        this.set(lookups.stats().queued);
      },
    }),
    refused: new Counter({
      name: 'payorch_egress_dns_lookups_refused_total',
      help: 'Host name lookups refused by the lookup limiter: queue_full (no place to wait), timeout_queued (deadline passed while waiting), timeout_running (deadline passed while the lookup ran).',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        for (const [reason, total] of Object.entries(lookups.stats().refused)) {
          const delta = total - (counted[reason] ?? 0);
          if (delta > 0) this.inc({ reason }, delta);
          counted[reason] = total;
        }
      },
    }),
  };
}

export type { Registry };

import { Registry } from 'prom-client';

import { egressLookupMetrics } from './metrics';

describe(egressLookupMetrics.name, () => {
  it('reads the lookup limiter at scrape time and counts each refusal once, whatever the number of scrapes', async () => {
    const stats = { inFlight: 2, queued: 5, refused: { queue_full: 1, timeout_queued: 0, timeout_running: 3 } };
    const registry = new Registry();
    egressLookupMetrics(registry, { stats: () => stats });
    const value = async (name: string, labels: Record<string, string> = {}) => {
      const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name)!;
      return (metric.values as Array<{ value: number; labels: Record<string, string> }>).find((v) =>
        Object.entries(labels).every(([k, l]) => v.labels[k] === l),
      )?.value;
    };
    expect(await value('payorch_egress_dns_lookups_in_flight')).toBe(2);
    expect(await value('payorch_egress_dns_lookups_queued')).toBe(5);
    expect(await value('payorch_egress_dns_lookups_refused_total', { reason: 'timeout_running' })).toBe(3);
    stats.refused.timeout_running = 4;
    stats.inFlight = 0;
    expect(await value('payorch_egress_dns_lookups_refused_total', { reason: 'timeout_running' })).toBe(4);
    expect(await value('payorch_egress_dns_lookups_refused_total', { reason: 'queue_full' })).toBe(1);
    expect(await value('payorch_egress_dns_lookups_in_flight')).toBe(0);
  });
});

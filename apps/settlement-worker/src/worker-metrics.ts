import { Counter, Histogram } from 'prom-client';

import type { Registry } from '@payorch/logging';

export function workerMetrics(registry: Registry) {
  return {
    jobs: new Counter({
      name: 'payorch_jobs_total',
      help: 'Jobs processed by queue, name and outcome.',
      labelNames: ['queue', 'name', 'outcome'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'payorch_job_duration_seconds',
      help: 'Job processing time.',
      labelNames: ['queue', 'name'] as const,
      registers: [registry],
    }),
  };
}
export type WorkerMetrics = ReturnType<typeof workerMetrics>;

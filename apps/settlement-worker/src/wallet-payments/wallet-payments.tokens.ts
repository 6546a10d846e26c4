import { Counter } from 'prom-client';

import type { WorkerConfig } from '@payorch/config';
import { SecretBox } from '@payorch/domain';
import type { Registry } from '@payorch/logging';

export const WORKER_SECRET_BOX = Symbol('WORKER_SECRET_BOX');
export const WALLET_METRICS = Symbol('WALLET_METRICS');

export function walletMetrics(registry: Registry) {
  return {
    integrityFailures: new Counter({
      name: 'payorch_assist_integrity_failures_total',
      help: 'Assist answers rejected for a bad/missing checkvalue or for describing another order (alert on any).',
      labelNames: ['endpoint'] as const,
      registers: [registry],
    }),
  };
}
export type WalletMetrics = ReturnType<typeof walletMetrics>;

/** Providers the worker module adds for wallet payments (needs PAYORCH_MASTER_KEY to open merchant secrets). */
export function walletPaymentsProviders(config: WorkerConfig, registry: Registry) {
  return [
    { provide: WORKER_SECRET_BOX, useValue: SecretBox.fromConfig(config.PAYORCH_MASTER_KEY, config.PAYORCH_PREVIOUS_MASTER_KEYS) },
    { provide: WALLET_METRICS, useValue: walletMetrics(registry) },
  ];
}

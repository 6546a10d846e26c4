import { Counter } from 'prom-client';

import type { Registry } from '@payorch/logging';

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

/** Providers the worker module adds for wallet payments (merchant secrets are opened with the process's SECRET_BOX). */
export function walletPaymentsProviders(registry: Registry) {
  return [{ provide: WALLET_METRICS, useValue: walletMetrics(registry) }];
}

import { Counter } from 'prom-client';

import type { Registry } from '@payorch/logging';

export const SETTLEMENT_METRICS = Symbol('SETTLEMENT_METRICS');

export function settlementMetrics(registry: Registry) {
  return {
    settlements: new Counter({
      name: 'payorch_settlements_total',
      help: 'Settlements finished, by outcome (completed, discrepancy, failed).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    failures: new Counter({
      name: 'payorch_settlement_failures_total',
      help: 'Settlements FAILED, by Settlement.error.code (TERMINAL_DISABLED, AGENT_REVOKED, OUTCOME_UNKNOWN, CLOSE_DAY_DECLINED, TERMINAL_OFFLINE…).',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    deferred: new Counter({
      name: 'payorch_settlement_deferrals_total',
      help: 'Settlement jobs put back for later, by reason (tenant_limit, TERMINAL_OFFLINE, TERMINAL_BUSY, OUTCOME_UNKNOWN…).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    catchUps: new Counter({
      name: 'payorch_settlement_catch_ups_total',
      help: 'Scheduled settlement runs the sweep queued because their schedule fired and no settlement nor job was left of it (lost before its first attempt).',
      registers: [registry],
    }),
  };
}
export type SettlementMetrics = ReturnType<typeof settlementMetrics>;

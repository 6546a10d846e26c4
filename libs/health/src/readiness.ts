import { ServiceUnavailableException } from '@nestjs/common';
import type { HealthCheckResult, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Redis } from 'ioredis';

import { withTimeout } from '@payorch/domain';
import { readinessMetrics, type Registry } from '@payorch/logging';

import { isDraining } from './shutdown';

/** One readiness check: resolves (optionally with details) when ready, throws with the reason when not. */
export type ReadinessProbe = () => Promise<Record<string, unknown> | void>;

export interface CheckReport {
  ok: boolean;
  /** Why the check fails (absent when ok). */
  reason?: string;
  [detail: string]: unknown;
}

export interface ReadinessReport {
  ok: boolean;
  checks: Record<string, CheckReport>;
}

export interface ReadinessOptions {
  health: HealthCheckService;
  indicators: HealthIndicatorService;
  registry: Registry;
  probes: Record<string, ReadinessProbe>;
  /** Budget of each probe. Default 2 s. */
  timeoutMs?: number;
}

/**
 * `/health/ready` of an app: runs its probes as @nestjs/terminus indicators (in parallel, each with a
 * time budget), sets `payorch_ready{check}` and reports every check with `ok` and `reason`. A 503 is the
 * caller's to render: terminus' ServiceUnavailableException is turned back into a report here, so no
 * app's exception filter reshapes it.
 */
export class Readiness {
  private readonly gauge: ReturnType<typeof readinessMetrics>['ready'];

  constructor(private readonly options: ReadinessOptions) {
    this.gauge = readinessMetrics(options.registry).ready;
  }

  async evaluate(): Promise<ReadinessReport> {
    const timeoutMs = this.options.timeoutMs ?? 2000;
    const indicators = Object.entries(this.options.probes).map(([name, probe]) => async () => {
      const session = this.options.indicators.check(name);
      try {
        return session.up({ ...((await withTimeout(probe(), timeoutMs, name)) ?? {}) });
      } catch (error) {
        return session.down({ reason: (error as Error).message });
      }
    });
    let result: HealthCheckResult;
    try {
      result = await this.options.health.check(indicators);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      result = error.getResponse() as HealthCheckResult;
    }
    const checks: Record<string, CheckReport> = {};
    for (const [name, { status, ...details }] of Object.entries(result.details)) {
      checks[name] = { ok: status === 'up', ...details };
      this.gauge.set({ check: name }, status === 'up' ? 1 : 0);
    }
    // Shutting down (SIGTERM received: beginDrain, or terminus' own shutdown hook) is not ready, whatever the probes say.
    if (isDraining(this.options.health) || result.status === 'shutting_down') {
      checks.shutdown = { ok: false, reason: 'shutting down: draining before exit' };
      this.gauge.set({ check: 'shutdown' }, 0);
      return { ok: false, checks };
    }
    return { ok: result.status === 'ok', checks };
  }
}

/** Redis answers PING on this connection; a connection that is down (reconnecting, closed) fails at once. */
export function redisPing(redis: Pick<Redis, 'status' | 'ping'>): ReadinessProbe {
  return async () => {
    if (['reconnecting', 'close', 'end'].includes(redis.status)) throw new Error(`redis connection ${redis.status}`);
    // A connection still being set up (first connect) gets a moment: without an offline queue, PING would fail.
    for (let i = 0; i < 20 && (redis.status === 'connecting' || redis.status === 'connect'); i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    await redis.ping();
  };
}

/** PostgreSQL answers `SELECT 1` (libs/db `Database.ping()`). */
export function databasePing(db: { ping(): Promise<unknown> }): ReadinessProbe {
  return async () => {
    await db.ping();
  };
}

/** Body of `/health/live`: the process answers, nothing else is checked. */
export const liveness = (service: string) => ({ status: 'ok' as const, service, uptimeSeconds: Math.round(process.uptime()) });

/** The original `/health` body (`status` + one string per check), kept for older probes; same checks as ready. */
export function legacyHealth(report: ReadinessReport): { status: 'ok' | 'degraded'; checks: Record<string, string> } {
  const checks: Record<string, string> = {};
  for (const [name, check] of Object.entries(report.checks)) checks[name] = check.ok ? 'ok' : `error: ${check.reason ?? 'failed'}`;
  return { status: report.ok ? 'ok' : 'degraded', checks };
}

import type { Server } from 'node:http';

import type { INestApplication } from '@nestjs/common';
import { HealthCheckService } from '@nestjs/terminus';

import type { Logger } from '@payorch/logging';

/**
 * Graceful shutdown of an app (docs/runbooks/production.md, "Graceful shutdown"). On SIGTERM / SIGINT:
 *   1. readiness answers 503 at once (`shutdown` check), so load balancers and Kubernetes stop sending
 *      new traffic, while the app keeps serving for `drainDelayMs` (the time they need to notice);
 *   2. Nest's shutdown sequence drains the app: the connector stops taking commands and lets accepted
 *      operations finish, then closes agent tunnels with a reconnect hint; the gateway ends live event
 *      streams and lets in-flight requests complete; the worker's BullMQ workers wait for active jobs;
 *   3. the process exits 0 — or 1 when the drain did not finish within `graceMs` (whatever still runs is
 *      left to recovery: stalled BullMQ jobs are retried elsewhere, operations are recovered).
 */

/** The HealthCheckService of each app whose readiness reports draining (one per app, also in tests). */
const draining = new WeakSet<object>();

/** Readiness of this app answers 503 from now on (the first step of a graceful shutdown). */
export function beginDrain(app: INestApplication): void {
  draining.add(app.get(HealthCheckService, { strict: false }));
}

/** Whether beginDrain was called for the app that owns this HealthCheckService (Readiness reads it). */
export function isDraining(health: object): boolean {
  return draining.has(health);
}

export interface DrainOptions {
  /** How long readiness is 503 while the app still serves, before it stops accepting. */
  drainDelayMs: number;
  /** Bound of the whole shutdown; past it the caller exits anyway. */
  graceMs: number;
  logger: Logger;
  /** The signal, for the log. */
  signal?: string;
}

/**
 * Steps 1–2 of the graceful shutdown, without exiting: resolves `closed` when Nest's shutdown sequence
 * finished, `timeout` when it was still running after `graceMs` (the caller exits then anyway).
 */
export async function drainAndClose(app: INestApplication, options: DrainOptions): Promise<'closed' | 'timeout'> {
  const started = Date.now();
  beginDrain(app);
  options.logger.info({ signal: options.signal, drainDelayMs: options.drainDelayMs, graceMs: options.graceMs }, 'shutting down: readiness is 503, draining');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), options.graceMs);
    timer.unref();
  });
  let idle: NodeJS.Timeout | undefined;
  const close = (async () => {
    if (options.drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(options.drainDelayMs, options.graceMs)));
    // Keep-alive connections idle between requests would hold the listener open: they are closed as they go idle.
    const server = app.getHttpServer() as Server | undefined;
    idle = setInterval(() => server?.closeIdleConnections?.(), 100);
    idle.unref();
    await app.close();
    return 'closed' as const;
  })();
  const outcome = await Promise.race([close, deadline]);
  clearTimeout(timer);
  clearInterval(idle);
  if (outcome === 'closed') options.logger.info({ ms: Date.now() - started }, 'shut down');
  else options.logger.error({ graceMs: options.graceMs }, 'shutdown did not finish within the grace period; exiting anyway');
  return outcome;
}

/**
 * main.ts of every Nest app: SIGTERM / SIGINT run drainAndClose once, then exit 0 (1 after a timeout or
 * an error). A second signal during the drain is logged and ignored: the grace period bounds it.
 */
export function exitGracefullyOnSignals(
  app: INestApplication,
  options: Omit<DrainOptions, 'signal'>,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) {
        options.logger.warn({ signal }, 'already shutting down');
        return;
      }
      stopping = true;
      drainAndClose(app, { ...options, signal }).then(
        (outcome) => exit(outcome === 'closed' ? 0 : 1),
        (error: unknown) => {
          options.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'shutdown failed');
          exit(1);
        },
      );
    });
  }
}

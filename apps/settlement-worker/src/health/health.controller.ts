import { InjectQueue, WorkerHost } from '@nestjs/bullmq';
import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Queue } from 'bullmq';
import type { Response } from 'express';
import type { Redis } from 'ioredis';

import type { Database } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import { databasePing, legacyHealth, liveness, Readiness, type ReadinessProbe, redisPing } from '@payorch/health';
import type { Registry } from '@payorch/logging';

import { SchedulerReconciler } from '../schedules/scheduler-reconciler.service';
import { DATABASE } from '../tokens';

export const REGISTRY = Symbol('REGISTRY');

/** Every @Processor of the app has a BullMQ Worker that is running (not closing, not closed). */
function workersProbe(discovery: DiscoveryService): ReadinessProbe {
  return async () => {
    const hosts = discovery.getProviders().map((w) => w.instance).filter((i): i is WorkerHost => i instanceof WorkerHost);
    const stopped: string[] = [];
    for (const host of hosts) {
      let running = false;
      try {
        running = host.worker.isRunning() && !host.worker.closing;
      } catch {
        // no worker yet (not initialised)
      }
      if (!running) stopped.push(host.constructor.name);
    }
    if (hosts.length === 0) throw new Error('no BullMQ workers registered');
    if (stopped.length) throw new Error(`BullMQ workers not running: ${stopped.join(', ')}`);
    return { workers: hosts.length };
  };
}

/** The worker's own job schedulers exist in Redis; a missing one triggers a reconcile at once. */
function schedulersProbe(reconciler: SchedulerReconciler): ReadinessProbe {
  return async () => {
    const missing = await reconciler.missing();
    if (missing.length) {
      void reconciler.reconcile();
      throw new Error(`job schedulers missing (reconciling): ${missing.join(', ')}`);
    }
    const last = reconciler.last;
    return { lastReconcileAt: last?.at.toISOString() ?? null, lastReconcileError: last?.error ?? null };
  };
}

@Controller()
export class HealthController {
  private readonly readiness: Readiness;

  constructor(
    @Inject(DATABASE) db: Database,
    @InjectQueue(QUEUES.system) queue: Queue,
    @Inject(REGISTRY) private readonly registry: Registry,
    discovery: DiscoveryService,
    reconciler: SchedulerReconciler,
    health: HealthCheckService,
    indicators: HealthIndicatorService,
  ) {
    this.readiness = new Readiness({
      health,
      indicators,
      registry,
      probes: {
        database: databasePing(db),
        // BullMQ's client is a proxy over the ioredis instance; PING is forwarded to it.
        redis: async () => redisPing((await queue.getBackend().client) as unknown as Pick<Redis, 'status' | 'ping'>)(),
        workers: workersProbe(discovery),
        schedulers: schedulersProbe(reconciler),
      },
    });
  }

  /** Liveness: the process answers; no dependency is checked. */
  @Get('health/live')
  live() {
    return liveness('settlement-worker');
  }

  /** Readiness: PostgreSQL, Redis, BullMQ workers running, job schedulers present; 503 lists each check. */
  @Get('health/ready')
  async ready(@Res({ passthrough: true }) res: Response) {
    const report = await this.readiness.evaluate();
    res.status(report.ok ? 200 : 503);
    return { status: report.ok ? 'ok' : 'not_ready', service: 'settlement-worker', checks: report.checks };
  }

  /** Kept for older probes: the same checks as /health/ready, in the original body. */
  @Get('health')
  async health(@Res({ passthrough: true }) res: Response) {
    const report = await this.readiness.evaluate();
    res.status(report.ok ? 200 : 503);
    const { status, checks } = legacyHealth(report);
    return { status, service: 'settlement-worker', checks };
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

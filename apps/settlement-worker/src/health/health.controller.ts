import { InjectQueue } from '@nestjs/bullmq';
import { Controller, Inject } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { Database } from '@payorch/db';
import { QUEUES } from '@payorch/domain';
import { databasePing, Readiness, type ReadinessProbe, redisPing, type SchemaCheck, ServiceHealth, ServiceHealthController } from '@payorch/health';
import type { Registry } from '@payorch/logging';

import { SCHEMA_CHECK } from '../schema-gate';
import { SchedulerReconciler } from '../schedules/scheduler-reconciler.service';
import { DATABASE } from '../tokens';
import { workerHosts } from '../worker-hosts';

export const REGISTRY = Symbol('REGISTRY');

/** Every @Processor of the app has a BullMQ Worker that is running (not closing, not closed). */
function workersProbe(discovery: DiscoveryService): ReadinessProbe {
  return async () => {
    const hosts = workerHosts(discovery);
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

/** `/health/live`, `/health/ready` (PostgreSQL, the build's schema applied, Redis, BullMQ workers running, job schedulers present), `/health`, `/metrics`. */
@Controller()
export class HealthController extends ServiceHealthController {
  constructor(
    @Inject(DATABASE) db: Database,
    @InjectQueue(QUEUES.system) queue: Queue,
    @Inject(REGISTRY) registry: Registry,
    @Inject(SCHEMA_CHECK) schema: SchemaCheck,
    discovery: DiscoveryService,
    reconciler: SchedulerReconciler,
    health: HealthCheckService,
    indicators: HealthIndicatorService,
  ) {
    const readiness = new Readiness({
      health,
      indicators,
      registry,
      probes: {
        database: databasePing(db),
        schema: schema.probe(),
        // BullMQ's client is a proxy over the ioredis instance; PING is forwarded to it.
        redis: async () => redisPing((await queue.getBackend().client) as unknown as Pick<Redis, 'status' | 'ping'>)(),
        workers: workersProbe(discovery),
        schedulers: schedulersProbe(reconciler),
      },
    });
    super(new ServiceHealth({ service: 'settlement-worker', readiness, registry }));
  }
}

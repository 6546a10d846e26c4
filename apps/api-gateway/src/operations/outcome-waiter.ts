import { Inject, Injectable, Optional } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';

import type { GatewayConfig } from '@payorch/config';
import { type Database, Prisma, type PublishedEvent } from '@payorch/db';
import { ApiError, BatchedLookup, KeyedSlots, type SecretBox } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { type OperationView, RUN_OVER_EVENTS, RUNNING_STATES, sealedSubjectOf, type SubjectSealer } from '@payorch/operations';

import { KEY_REFUSED } from '../common/auth.guard';
import { DATABASE, GATEWAY_CONFIG, LOGGER, METRICS_REGISTRY, SECRET_BOX } from '../common/tokens';
import { EventHub } from '../events/event-hub';
import type { WatchKey } from '../events/key-watch';

/** Re-read period of the row while Redis cannot deliver events (the subscription failed). */
const POLL_WITHOUT_EVENTS_MS = 250;
/** Longest a request waits for its live-event subscription before it falls back to re-reading the row. */
const SUBSCRIBE_TIMEOUT_MS = 1000;

/** Concurrent waits of one tenant on one gateway instance by default (OPERATION_WAITS_MAX_PER_TENANT). */
const DEFAULT_WAITS_PER_TENANT = 256;

/**
 * A wait whose key stopped authenticating: the auth guard's 401 (its code and message), and what became of the operation,
 * which this caller may no longer read.
 */
const KEY_REFUSED_DURING_WAIT = `${KEY_REFUSED}; the operation was created and goes on without this request: follow it with a valid key (this request again, same Idempotency-Key)`;

/** A wait prepared before the operation is dispatched, so that no event published after dispatch is missed. */
export interface OutcomeWait {
  /**
   * Resolves when the run is over (event, or the row says so) or after `waitMs`, whichever first. The first call's waitMs
   * counts. Rejects (401 UNAUTHENTICATED) as soon as the caller's key no longer authenticates, if it was watched (`prepare`).
   */
  settled(waitMs: number): Promise<void>;
  /**
   * The operation as the event that ended its run left it (`PublishedEvent.subject`, written by the transition that ended
   * it), once `settled` resolved because of that event: the request answers with it instead of reading the row again.
   * Undefined when the run's end was heard otherwise (a re-read, a heartbeat) or not at all (timeout): read the row.
   */
  outcome(): OperationView | undefined;
  /** Stops listening (call in a finally). */
  close(): void;
}

/**
 * The run-over event's subject when it is this operation's view sealed by a process of this deployment (its publisher
 * holds the master key: `redisEventSink`'s sealer); undefined for none, an unsealed, forged or foreign one. A message on
 * Redis never decides the answer by itself: whoever can PUBLISH there cannot make a `?wait=` answer `approved`.
 */
function viewOf(event: PublishedEvent, operationId: string, sealer: SubjectSealer | undefined): OperationView | undefined {
  const subject = sealedSubjectOf(event, sealer) as Partial<OperationView> | undefined;
  return subject?.id === operationId && typeof subject.state === 'string' ? (subject as OperationView) : undefined;
}

/**
 * `POST /v1/terminals/{id}/operations?wait=` follows the operation's outcome through its live events
 * (the gateway's EventHub, one pub/sub connection per process), not through the command bus: the connector
 * answers `operation.execute` as soon as the operation is queued (`replyWhen: 'queued'`), so no command
 * waits on the bus and no gateway holds a promise for as long as the card takes. The row stays the truth:
 * the hub's heartbeat re-reads it (a lost pub/sub message costs one heartbeat, never a wrong answer), and
 * when the subscription cannot be made (Redis away) the row is re-read every 250 ms instead.
 *
 * A wait holds a connection, a listener of the tenant's events and a timer for up to 120 s: one tenant holds at most
 * OPERATION_WAITS_MAX_PER_TENANT of them at once on this instance. One more is not refused (the operation was created
 * and dispatched; a 429 would hide that): it answers at once, with the operation as it is, as `wait=0` does, and is
 * counted (`payorch_operation_waits_refused_total`). Before, the tenant's request budget was the only bound (~12,000
 * waits at the default budget), and every event of the tenant went to every waiting request's listener.
 *
 * A wait is kept to the key that made the request (KeyWatch): revoked, expired or its tenant disabled meanwhile, the
 * request stops waiting at once and answers 401. It used to wait on and then answer the operation to a caller that had
 * lost access to it.
 */
@Injectable()
export class OperationOutcomeWaiter {
  private readonly states = new BatchedLookup<string, string>((keys) => this.readStates(keys));
  /** Waits held now, by tenant. */
  private readonly waiting: KeyedSlots;
  private readonly refused: Counter;

  constructor(
    private readonly hub: EventHub,
    @Inject(DATABASE) private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
    @Optional() @Inject(GATEWAY_CONFIG) config?: Pick<GatewayConfig, 'OPERATION_WAITS_MAX_PER_TENANT'>,
    @Optional() @Inject(METRICS_REGISTRY) registry: Registry = new Registry(),
    /** Checks the seal of a run-over event's view of the operation; without it, every answer reads the row. */
    @Optional() @Inject(SECRET_BOX) private readonly sealer?: SecretBox,
  ) {
    this.waiting = new KeyedSlots(config?.OPERATION_WAITS_MAX_PER_TENANT ?? DEFAULT_WAITS_PER_TENANT);
    this.refused = new Counter({
      name: 'payorch_operation_waits_refused_total',
      help: 'POST …/operations?wait= requests answered at once, without waiting, because their tenant already held OPERATION_WAITS_MAX_PER_TENANT waits on this gateway instance.',
      registers: [registry],
    });
    const waiting = this.waiting;
    new Gauge({
      name: 'payorch_operation_waits',
      help: 'POST …/operations?wait= requests waiting for their outcome on this gateway instance now.',
      registers: [registry],
      collect() {
        this.set(waiting.total);
      },
    });
  }

  /**
   * A wait for the operation's outcome, or — the tenant already holding OPERATION_WAITS_MAX_PER_TENANT waits here — one
   * that is over at once (the request answers with the operation as it is). Close it in a finally either way.
   * `watchKey` watches the request's key for as long as the wait is open (until `close`).
   */
  async prepare(tenantId: string, operationId: string, watchKey?: WatchKey): Promise<OutcomeWait> {
    const release = this.waiting.take(tenantId);
    if (release === null) {
      this.refused.inc();
      return { settled: () => Promise.resolve(), outcome: () => undefined, close: () => undefined };
    }
    try {
      const wait = await this.listen(tenantId, operationId, watchKey);
      return {
        settled: wait.settled,
        outcome: wait.outcome,
        close: () => {
          release();
          wait.close();
        },
      };
    } catch (error) {
      release();
      throw error;
    }
  }

  private async listen(tenantId: string, operationId: string, watchKey: WatchKey | undefined): Promise<OutcomeWait> {
    let over = false;
    let heard: OperationView | undefined;
    let keyRefused = false;
    let wake: (() => void) | undefined;
    const finish = () => {
      over = true;
      wake?.();
    };
    const recheck = () => {
      void this.isRunning(tenantId, operationId).then((running) => {
        if (!running) finish();
      });
    };
    let unsubscribe: (() => void) | undefined;
    const subscribing = this.hub.add(tenantId, {
      deliver: (event) => {
        if (event === undefined) recheck();
        else if (event.subjectId === operationId && RUN_OVER_EVENTS.has(event.type)) {
          heard ??= viewOf(event, operationId, this.sealer);
          finish();
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      // SUBSCRIBE waits in the connection's queue while Redis is away: do not let the request wait with it.
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('subscribe timed out')), SUBSCRIBE_TIMEOUT_MS)));
      unsubscribe = await Promise.race([subscribing, timeout]);
    } catch (error) {
      void subscribing.then((off) => off()).catch(() => undefined);
      this.logger.warn({ operationId, err: (error as Error).message }, 'live events unavailable: following the operation by re-reading it');
    } finally {
      clearTimeout(timer);
    }
    // Watched from here, not from settled(): a key revoked while the operation is being dispatched is heard of too.
    const unwatch = watchKey?.(() => {
      keyRefused = true;
      wake?.();
    });
    let settled: Promise<void> | undefined;
    return {
      settled: (waitMs) => {
        settled ??= (
          over || keyRefused || waitMs <= 0
            ? Promise.resolve()
            : new Promise<void>((resolve) => {
                const poll = unsubscribe === undefined ? setInterval(recheck, POLL_WITHOUT_EVENTS_MS) : undefined;
                const deadline = setTimeout(done, waitMs);
                function done() {
                  clearTimeout(deadline);
                  clearInterval(poll);
                  resolve();
                }
                wake = done;
              })
        ).then(() => {
          if (keyRefused) throw new ApiError('UNAUTHENTICATED', KEY_REFUSED_DURING_WAIT);
        });
        return settled;
      },
      outcome: () => heard,
      close: () => {
        unwatch?.();
        unsubscribe?.();
        wake?.();
      },
    };
  }

  private async isRunning(tenantId: string, operationId: string): Promise<boolean> {
    try {
      const state = await this.states.get(`${tenantId}/${operationId}`);
      return state !== undefined && RUNNING_STATES.has(state);
    } catch {
      return true; // PostgreSQL away: keep waiting (the final read of the request answers truthfully)
    }
  }

  /**
   * The states of the operations whose waits re-check in the same tick (the hub's heartbeat wakes every waiting request
   * at once; without live events each one polls every 250 ms): one read per tenant, not one per request. A failed read
   * fails the whole batch, and each request keeps waiting.
   */
  private async readStates(keys: string[]): Promise<Map<string, string>> {
    const byTenant = new Map<string, string[]>();
    for (const key of keys) {
      const [tenantId, operationId] = key.split('/') as [string, string];
      const ids = byTenant.get(tenantId);
      if (ids) ids.push(operationId);
      else byTenant.set(tenantId, [operationId]);
    }
    const states = new Map<string, string>();
    await Promise.all(
      [...byTenant].map(async ([tenantId, ids]) => {
        const rows = await this.db.querySql<{ id: string; state: string }>(
          tenantId,
          Prisma.sql`SELECT "id", "state" FROM "TerminalOperation" WHERE "id" = ANY(${ids}::uuid[])`,
        );
        for (const row of rows) states.set(`${tenantId}/${row.id}`, row.state);
      }),
    );
    return states;
  }
}

import { isUuid, PayorchError } from '@payorch/domain';

import { type PrismaClient, type TransactionClient, createPrismaClient } from './client';
import { collectEvents, type PublishedEvent } from './events';

export interface ApiKeyLookup {
  id: string;
  tenantId: string;
  hash: string;
  scopes: string[];
  revokedAt: Date | null;
  expiresAt: Date | null;
}

export interface AgentCredentialLookup {
  id: string;
  tenantId: string;
  credentialHash: string | null;
  status: 'PENDING_ENROLLMENT' | 'ACTIVE' | 'REVOKED';
}

export interface AgentEnrollmentLookup {
  id: string;
  tenantId: string;
  enrollmentTokenHash: string | null;
  enrollmentExpiresAt: Date | null;
  status: 'PENDING_ENROLLMENT' | 'ACTIVE' | 'REVOKED';
}

export interface WithTenantOptions {
  /** Interactive transaction timeout (ms). */
  timeout?: number;
  isolationLevel?: 'ReadCommitted' | 'RepeatableRead' | 'Serializable';
}

/**
 * The application's only door to PostgreSQL. It connects as the `payorch_app` role, which row-level
 * security confines to the tenant set by `withTenant`; there is no API here to run an unscoped query
 * on a tenant table. The three `find*` lookups are SECURITY DEFINER functions for authentication.
 */
export interface DatabaseOptions {
  /**
   * Receives the domain events of every committed `withTenant` transaction (e.g. to PUBLISH them to
   * the tenants' live channels). Called after commit only; must not throw (errors are swallowed).
   */
  onCommitted?: (events: readonly PublishedEvent[]) => void;
  /** Runs in close(), after the pool is closed (e.g. to quit the connection onCommitted publishes on). */
  onClose?: () => Promise<void>;
}

/** Events numbered per payorch_sequence_events call (a backlog is numbered in several). */
const SEQUENCE_BATCH = 1000;

export class Database {
  /** Events of committed transactions waiting for the background sequencer (afterCommit). */
  private readonly unsequenced: PublishedEvent[][] = [];
  private sequencer: Promise<void> | undefined;

  constructor(
    readonly prisma: PrismaClient,
    private readonly options: DatabaseOptions = {},
  ) {}

  static connect(appDatabaseUrl: string, poolSize?: number, options: DatabaseOptions = {}): Database {
    return new Database(createPrismaClient(appDatabaseUrl, { max: poolSize }), options);
  }

  /**
   * Runs `fn` in an interactive transaction whose first statement scopes it to `tenantId`
   * (transaction-local, so it never leaks to the pooled connection).
   */
  async withTenant<T>(tenant: string | { tenantId: string }, fn: (tx: TransactionClient) => Promise<T>, options: WithTenantOptions = {}): Promise<T> {
    const tenantId = typeof tenant === 'string' ? tenant : tenant.tenantId;
    if (!isUuid(tenantId)) throw new PayorchError('TENANT_INVALID', 'tenant id must be a UUID');
    let events: PublishedEvent[] = [];
    const result = await this.prisma.$transaction(
      async (tx) => {
        events = collectEvents(tx);
        await tx.$executeRaw`SELECT set_config('app.tenant_id', ${tenantId}, true)`;
        return fn(tx);
      },
      { timeout: options.timeout ?? 10_000, maxWait: 5_000, isolationLevel: options.isolationLevel },
    );
    if (events.length > 0) this.afterCommit(events);
    return result;
  }

  /**
   * Resolves once the events of every transaction committed so far are numbered and handed to
   * `onCommitted` (or the attempt failed: the rows are committed either way). Tests and shutdown wait here.
   */
  async eventsSettled(): Promise<void> {
    while (this.sequencer !== undefined) await this.sequencer;
  }

  /**
   * Off the caller's path: numbers the committed events (sequenceEvents) and then hands them to
   * `onCommitted`, in that order, so a live stream woken by the publish finds them numbered. One run at
   * a time; commits that arrive meanwhile are numbered together by the next run (one
   * payorch_sequence_events call for many transactions under load), and their publishes keep commit order.
   */
  private afterCommit(events: PublishedEvent[]): void {
    this.unsequenced.push(events);
    this.sequencer ??= this.runSequencer();
  }

  private async runSequencer(): Promise<void> {
    try {
      while (this.unsequenced.length > 0) {
        const batches = this.unsequenced.splice(0);
        try {
          await this.sequenceEvents();
        } catch {
          // The rows are committed; the next commit with events, or the webhook sweep, numbers them.
        }
        for (const batch of batches) {
          try {
            this.options.onCommitted?.(batch);
          } catch {
            // Best effort: the DomainEvent rows are the record; streams catch up and webhooks sweep from them.
          }
        }
      }
    } finally {
      // In the same synchronous step as the loop's last check: a commit after it starts a new run.
      this.sequencer = undefined;
    }
  }

  /**
   * Numbers committed domain events in commit order (`DomainEvent.seq`, payorch_sequence_events: one
   * caller at a time, numbers visible in increasing order) and returns the highest seq: every event up
   * to it is visible to any query started after this resolves. Runs after each commit that wrote events
   * (before `onCommitted`, so a live stream woken by the publish finds the event) and in the webhook
   * sweep; readers of the event log only look at numbered events. Its own transaction, never inside one.
   * After a commit it runs in the background (afterCommit): the committing caller does not wait for it.
   */
  async sequenceEvents(): Promise<bigint> {
    for (;;) {
      const [row] = await this.prisma.$queryRaw<[{ assigned: number; high: bigint }]>`SELECT * FROM payorch_sequence_events(${SEQUENCE_BATCH}::int)`;
      if (row.assigned < SEQUENCE_BATCH) return row.high;
    }
  }

  async findApiKeyByPrefix(prefix: string): Promise<ApiKeyLookup | null> {
    const rows = await this.prisma.$queryRaw<ApiKeyLookup[]>`SELECT * FROM payorch_find_api_key(${prefix})`;
    return rows[0] ?? null;
  }

  async findAgentByCredentialPrefix(prefix: string): Promise<AgentCredentialLookup | null> {
    const rows = await this.prisma.$queryRaw<AgentCredentialLookup[]>`SELECT * FROM payorch_find_agent_by_credential(${prefix})`;
    return rows[0] ?? null;
  }

  async findAgentByEnrollmentPrefix(prefix: string): Promise<AgentEnrollmentLookup | null> {
    const rows = await this.prisma.$queryRaw<AgentEnrollmentLookup[]>`SELECT * FROM payorch_find_agent_by_enrollment(${prefix})`;
    return rows[0] ?? null;
  }

  async ping(): Promise<void> {
    await this.prisma.$queryRaw`SELECT 1`;
  }

  async close(): Promise<void> {
    await this.eventsSettled();
    await this.prisma.$disconnect();
    await this.options.onClose?.();
  }
}

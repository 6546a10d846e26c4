import type { ReadinessProbe } from './readiness';

/** What the schema checks need of the database (libs/db `Database`). */
export interface SchemaSource {
  migrationApplied(name: string): Promise<boolean>;
}

/**
 * Whether the database holds the schema this build was written against (`migration`: libs/db SCHEMA_MIGRATION, the
 * newest migration of the build). The migration step runs beside the new pods of a rolling update: until it has applied
 * that migration, a pod of the new build is not ready (no traffic) and the worker takes no job (`SchemaGate`), while the
 * previous release's pods keep serving on the schema they know. Once applied it stays so (migrations only move forward):
 * the answer is kept and later checks ask nothing.
 */
export class SchemaCheck {
  private applied = false;

  constructor(
    private readonly db: SchemaSource,
    readonly migration: string,
  ) {}

  async isApplied(): Promise<boolean> {
    if (!this.applied) this.applied = await this.db.migrationApplied(this.migration);
    return this.applied;
  }

  /** Readiness check `schema`. */
  probe(): ReadinessProbe {
    return async () => {
      if (!(await this.isApplied()))
        throw new Error(`the database schema is older than this build: migration ${this.migration} is not applied yet (the migration step applies it)`);
      return { migration: this.migration };
    };
  }
}

/**
 * Holds work that needs the build's schema (the worker's job consumers) until SchemaCheck says it is there: asks every
 * `intervalMs`, calls `onWaiting` once when it has to wait, and `open` once it is there. `close()` stops asking (the
 * process shuts down first): `open` is then never called.
 */
export class SchemaGate {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly check: SchemaCheck,
    private readonly options: { intervalMs?: number; onWaiting?: (migration: string) => void; onError?: (error: Error) => void },
  ) {}

  start(open: () => void): void {
    let told = false;
    const attempt = async () => {
      this.timer = undefined;
      if (this.closed) return;
      let applied = false;
      try {
        applied = await this.check.isApplied();
      } catch (error) {
        this.options.onError?.(error as Error);
      }
      if (this.closed) return;
      if (applied) return open();
      if (!told) this.options.onWaiting?.(this.check.migration);
      told = true;
      this.timer = setTimeout(() => void attempt(), this.options.intervalMs ?? 1000);
    };
    void attempt();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

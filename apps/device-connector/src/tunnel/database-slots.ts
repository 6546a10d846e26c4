import { Inject, Injectable } from '@nestjs/common';

import type { ConnectorConfig } from '@payorch/config';

import { CONNECTOR_CONFIG } from '../tokens';

/**
 * Bounds the database work of tunnel set-ups (the set-up transaction, the presence batches) to
 * CONNECTOR_DATABASE_POOL_SIZE at a time, first come first served; the rest wait here without a deadline.
 * Without it a reconnect storm of thousands of agents queued everything inside the pools, whose 5 s checkout
 * timeout then failed most of the set-ups at once (issue 19: 445 failed set-ups at 3,000 agents), and every
 * failure came back as another dial. The upgrades' authentication does not wait here: it is one batched read
 * at a time (EnrollmentService), one more pooled connection at most, so a 101 never waits for other agents'
 * set-ups (which waited for the agents' 15 s opening-handshake timeout in a 5,000-agent storm).
 */
@Injectable()
export class DatabaseSlots {
  private readonly limit: number;
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(@Inject(CONNECTOR_CONFIG) config: ConnectorConfig) {
    this.limit = config.CONNECTOR_DATABASE_POOL_SIZE;
  }

  /** Set-ups waiting for a slot (health details, tests). */
  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running += 1;
    try {
      return await fn();
    } finally {
      // The slot passes to the next waiter as is (running unchanged), or is given back.
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}

import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';

import type { GatewayConfig } from '@payorch/config';
import { QUEUES } from '@payorch/domain';
import type { Logger } from '@payorch/logging';
import { ensureResolveJob } from '@payorch/wallet-payments';

import { GATEWAY_CONFIG, LOGGER } from '../common/tokens';

/**
 * Producer of `wallet_payment.resolve` jobs (queue registered in WalletPaymentsModule on the `command`
 * connection, which has no offline queue): with Redis down an enqueue fails at once instead of hanging
 * the payment's answer, and the worker's sweep over `payorch_unresolved_wallet_payments` picks the
 * payment up later.
 */
@Injectable()
export class WalletPaymentsQueue {
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @InjectQueue(QUEUES.walletPayments) private readonly queue: Queue,
  ) {
    // Connection errors are logged once per connection (bootstrap); enqueue failures are logged below.
    queue.on('error', () => undefined);
  }

  /** Never throws: a payment's answer must not fail because Redis is away. */
  async enqueueResolve(tenantId: string, paymentId: string): Promise<boolean> {
    try {
      await ensureResolveJob(
        this.queue,
        { paymentId, tenantId },
        {
          delayMs: this.config.WALLET_RESOLVE_DELAY_MS,
          attempts: this.config.WALLET_RESOLVE_ATTEMPTS,
          backoffMs: this.config.WALLET_RESOLVE_BACKOFF_MS,
        },
      );
      return true;
    } catch (error) {
      this.logger.warn({ paymentId, tenantId, err: (error as Error).message }, 'could not enqueue wallet payment resolution; the sweep will pick it up');
      return false;
    }
  }
}

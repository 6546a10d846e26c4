import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';

import { QUEUES } from '@payorch/domain';
import type { Registry } from '@payorch/logging';

import { WalletPaymentsProcessor } from './wallet-payments.processor';
import { walletPaymentsProviders } from './wallet-payments.tokens';
import { WalletResolutionService } from './wallet-resolution.service';

/** Wallet payment resolution and sweep (queue `wallet-payments`; exported for the scheduler reconciler). */
@Module({})
export class WalletPaymentsModule {
  static register(deps: { registry: Registry }): DynamicModule {
    return {
      module: WalletPaymentsModule,
      exports: [BullModule],
      imports: [BullModule.registerQueue({ name: QUEUES.walletPayments })],
      providers: [...walletPaymentsProviders(deps.registry), WalletPaymentsProcessor, WalletResolutionService],
    };
  }
}

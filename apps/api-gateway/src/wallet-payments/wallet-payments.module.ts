import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';

import { QUEUES } from '@payorch/domain';

import { AssistMerchantsModule } from '../assist-merchants/assist-merchants.module';
import { WalletPaymentsController } from './wallet-payments.controller';
import { WalletPaymentsQueue } from './wallet-payments.queue';
import { WalletPaymentsService } from './wallet-payments.service';
import { WalletSummariesController, WalletSummariesService } from './wallet-summaries.controller';

@Module({
  controllers: [WalletPaymentsController],
  imports: [AssistMerchantsModule, BullModule.registerQueue({ name: QUEUES.walletPayments })],
  providers: [WalletPaymentsQueue, WalletPaymentsService],
})
export class WalletPaymentsModule {}

/**
 * `GET /v1/settlements/wallet-summaries`. Its own module because it must be registered before SettlementsModule:
 * Express matches routes in registration order, and `GET /v1/settlements/:id` would take `wallet-summaries`.
 */
@Module({
  controllers: [WalletSummariesController],
  providers: [WalletSummariesService],
})
export class WalletSummariesModule {}

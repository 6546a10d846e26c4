import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';

import { QUEUES } from '@payorch/domain';

import { AssistMerchantsModule } from '../assist-merchants/assist-merchants.module';
import { WalletPaymentsController } from './wallet-payments.controller';
import { WalletPaymentsQueue } from './wallet-payments.queue';
import { WalletPaymentsService } from './wallet-payments.service';

@Module({
  controllers: [WalletPaymentsController],
  imports: [AssistMerchantsModule, BullModule.registerQueue({ name: QUEUES.walletPayments })],
  providers: [WalletPaymentsQueue, WalletPaymentsService],
})
export class WalletPaymentsModule {}

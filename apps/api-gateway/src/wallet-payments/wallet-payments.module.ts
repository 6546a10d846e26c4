import { Module } from '@nestjs/common';

import { AssistMerchantsModule } from '../assist-merchants/assist-merchants.module';
import { WalletPaymentsController } from './wallet-payments.controller';
import { WalletPaymentsQueue } from './wallet-payments.queue';
import { WalletPaymentsService } from './wallet-payments.service';

@Module({
  controllers: [WalletPaymentsController],
  imports: [AssistMerchantsModule],
  providers: [WalletPaymentsQueue, WalletPaymentsService],
})
export class WalletPaymentsModule {}

import { Module } from '@nestjs/common';

import { AssistMerchantsController } from './assist-merchants.controller';
import { AssistMerchantsService } from './assist-merchants.service';

@Module({
  controllers: [AssistMerchantsController],
  exports: [AssistMerchantsService],
  providers: [AssistMerchantsService],
})
export class AssistMerchantsModule {}

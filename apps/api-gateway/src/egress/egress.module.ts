import { Module } from '@nestjs/common';

import { EgressController } from './egress.controller';
import { EgressService } from './egress.service';

@Module({
  controllers: [EgressController],
  providers: [EgressService],
})
export class EgressModule {}

import { Module } from '@nestjs/common';

import { SettlementQueue } from './settlement-queue';
import { SettlementSchedulesController } from './settlement-schedules.controller';
import { SettlementSchedulesService } from './settlement-schedules.service';
import { SettlementsController } from './settlements.controller';
import { SettlementsService } from './settlements.service';

@Module({
  controllers: [SettlementSchedulesController, SettlementsController],
  providers: [SettlementQueue, SettlementSchedulesService, SettlementsService],
})
export class SettlementsModule {}

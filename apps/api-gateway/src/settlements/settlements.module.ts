import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';

import { QUEUES } from '@payorch/domain';

import { SettlementQueue } from './settlement-queue';
import { SettlementSchedulesController } from './settlement-schedules.controller';
import { SettlementSchedulesService } from './settlement-schedules.service';
import { SettlementsController } from './settlements.controller';
import { SettlementsService } from './settlements.service';

@Module({
  controllers: [SettlementSchedulesController, SettlementsController],
  imports: [BullModule.registerQueue({ name: QUEUES.settlement })],
  providers: [SettlementQueue, SettlementSchedulesService, SettlementsService],
})
export class SettlementsModule {}

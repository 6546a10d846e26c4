import { Module } from '@nestjs/common';

import { EventsModule } from '../events/events.module';
import { OperationsController } from './operations.controller';
import { OperationsService } from './operations.service';
import { OperationOutcomeWaiter } from './outcome-waiter';

@Module({
  controllers: [OperationsController],
  imports: [EventsModule],
  providers: [OperationOutcomeWaiter, OperationsService],
})
export class OperationsModule {}

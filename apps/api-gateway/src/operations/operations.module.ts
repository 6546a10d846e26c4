import { Module } from '@nestjs/common';

import { EventsModule } from '../events/events.module';
import { OperationEventsController } from './operation-events.controller';
import { OperationEventsService } from './operation-events.service';
import { OperationsController } from './operations.controller';
import { OperationsService } from './operations.service';
import { OperationOutcomeWaiter } from './outcome-waiter';

@Module({
  controllers: [OperationEventsController, OperationsController],
  imports: [EventsModule],
  providers: [OperationEventsService, OperationOutcomeWaiter, OperationsService],
})
export class OperationsModule {}

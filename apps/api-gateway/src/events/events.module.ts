import { Module } from '@nestjs/common';

import { RequestBudget } from '../common/rate-limit.guard';
import { EventHub } from './event-hub';
import { EventsController } from './events.controller';
import { EventsService } from './events.service';
import { EventsWsServer } from './events-ws.server';
import { KeyWatch } from './key-watch';

@Module({
  controllers: [EventsController],
  exports: [EventHub, KeyWatch],
  providers: [EventHub, EventsService, EventsWsServer, KeyWatch, RequestBudget],
})
export class EventsModule {}

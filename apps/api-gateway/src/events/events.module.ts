import { Module } from '@nestjs/common';

import { EventHub } from './event-hub';
import { EventsController } from './events.controller';
import { EventsService } from './events.service';
import { EventsWsServer } from './events-ws.server';

@Module({
  controllers: [EventsController],
  exports: [EventHub],
  providers: [EventHub, EventsService, EventsWsServer],
})
export class EventsModule {}

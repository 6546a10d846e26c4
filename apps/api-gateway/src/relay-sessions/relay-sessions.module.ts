import { Module } from '@nestjs/common';

import { RelaySessionsController } from './relay-sessions.controller';
import { RelaySessionsService } from './relay-sessions.service';

@Module({
  controllers: [RelaySessionsController],
  providers: [RelaySessionsService],
})
export class RelaySessionsModule {}

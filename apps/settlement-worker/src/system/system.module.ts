import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';

import { QUEUES } from '@payorch/domain';

import { SystemProcessor } from './system.processor';

/** The `system` queue (`system.ping`); exported for the health check. */
@Module({
  exports: [BullModule],
  imports: [BullModule.registerQueue({ name: QUEUES.system })],
  providers: [SystemProcessor],
})
export class SystemModule {}

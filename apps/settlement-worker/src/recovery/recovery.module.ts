import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';

import { QUEUES } from '@payorch/domain';

import { RecoveryProcessor } from './recovery.processor';
import { RecoveryService } from './recovery.service';

/**
 * Operation recovery (queue `operations-recovery`; exported for the scheduler reconciler). The command
 * bus (TERMINAL_COMMAND_DISPATCHER), database, config and metrics come from WorkerModule.
 */
@Module({
  exports: [BullModule],
  imports: [BullModule.registerQueue({ name: QUEUES.operationsRecovery })],
  providers: [RecoveryProcessor, RecoveryService],
})
export class RecoveryModule {}

import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';

import { QUEUES } from '@payorch/domain';

import { WebhooksController } from './webhooks.controller';
import { WebhooksQueue } from './webhooks.queue';
import { WebhooksService } from './webhooks.service';

@Module({
  controllers: [WebhooksController],
  imports: [BullModule.registerQueue({ name: QUEUES.webhooks })],
  providers: [WebhooksQueue, WebhooksService],
})
export class WebhooksModule {}

import { Module } from '@nestjs/common';

import { WebhooksController } from './webhooks.controller';
import { WebhooksQueue } from './webhooks.queue';
import { WebhooksService } from './webhooks.service';

@Module({
  controllers: [WebhooksController],
  providers: [WebhooksQueue, WebhooksService],
})
export class WebhooksModule {}

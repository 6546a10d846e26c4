import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';

import { CAMPAIGN_QUEUE } from '@payorch/campaigns';

import { CampaignsController } from './campaigns.controller';
import { CampaignsService } from './campaigns.service';

/** Fleet campaigns: the API side (rows + the `campaign.run` job); the worker runs them (apps/settlement-worker/src/campaigns). */
@Module({
  controllers: [CampaignsController],
  imports: [BullModule.registerQueue({ name: CAMPAIGN_QUEUE })],
  providers: [CampaignsService],
})
export class CampaignsModule {}

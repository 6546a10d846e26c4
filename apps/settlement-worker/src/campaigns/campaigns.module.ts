import { BullModule, getFlowProducerToken } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import type { FlowProducer } from 'bullmq';

import { CAMPAIGN_QUEUE } from '@payorch/campaigns';
import type { Database } from '@payorch/db';
import { TERMINAL_COMMAND_DISPATCHER, type TerminalCommandDispatcher } from '@payorch/operations';

import { DATABASE } from '../tokens';
import { CampaignRunner, type CampaignTiming, DEFAULT_TIMING } from './campaign-runner';
import { CampaignsProcessor } from './campaigns.processor';
import { CAMPAIGN_RUNNER } from './campaigns.tokens';

/** Fleet campaigns (queue `campaigns` and its flow producer). Each terminal step goes over the worker's command bus. */
@Module({})
export class CampaignsModule {
  static register(deps: { timing?: Partial<CampaignTiming> } = {}): DynamicModule {
    const timing: CampaignTiming = { ...DEFAULT_TIMING, ...deps.timing };
    return {
      module: CampaignsModule,
      exports: [BullModule],
      imports: [BullModule.registerQueue({ name: CAMPAIGN_QUEUE }), BullModule.registerFlowProducer({ name: CAMPAIGN_QUEUE })],
      providers: [
        {
          provide: CAMPAIGN_RUNNER,
          inject: [DATABASE, TERMINAL_COMMAND_DISPATCHER, getFlowProducerToken(CAMPAIGN_QUEUE)],
          useFactory: (db: Database, dispatcher: TerminalCommandDispatcher, flows: FlowProducer) => new CampaignRunner(db, dispatcher, flows, timing),
        },
        CampaignsProcessor,
      ],
    };
  }
}

import { Module } from '@nestjs/common';

import { StatsController } from './stats.controller';
import { StatsService } from './stats.service';

/** Aggregates for the ops console's plots (GET /v1/stats/…). */
@Module({
  controllers: [StatsController],
  providers: [StatsService],
})
export class StatsModule {}

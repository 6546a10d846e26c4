import { Body, Controller, HttpCode, Post, UseFilters } from '@nestjs/common';
import { z } from 'zod';

import { ApiError } from '@payorch/domain';

import { ConnectorErrorFilter } from '../error.filter';
import { EnrollmentService } from './enrollment.service';

const enrollSchema = z.strictObject({
  token: z.string().min(1).max(200),
  version: z.string().max(50).optional(),
});

@Controller('agent')
@UseFilters(ConnectorErrorFilter)
export class EnrollmentController {
  constructor(private readonly service: EnrollmentService) {}

  /** Exchanges a one-time enrollment token for the agent's credential (returned once). */
  @Post('enroll')
  @HttpCode(200)
  async enroll(@Body() body: unknown) {
    const parsed = enrollSchema.safeParse(body);
    if (!parsed.success) throw new ApiError('VALIDATION_FAILED', 'body must be {"token": "<enrollment token>", "version"?: "<agent version>"}');
    const { agentId, tenantId, credential } = await this.service.enroll(parsed.data.token, parsed.data.version ?? null);
    return { agentId, tenantId, credential };
  }
}

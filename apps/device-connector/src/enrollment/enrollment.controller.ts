import { Body, Controller, HttpCode, Post, UseFilters } from '@nestjs/common';
import { z } from 'zod';

import { ApiError } from '@payorch/domain';

import { ConnectorErrorFilter } from '../error.filter';
import { AGENT_VERSION_PATTERN, EnrollmentService } from './enrollment.service';

const enrollSchema = z.strictObject({
  token: z.string().min(1).max(200),
  // As the upgrade's version header is checked: a NUL made the enrollment a 500 (PostgreSQL refuses it), and any other
  // text went to Agent.version and the audit log.
  version: z.string().regex(AGENT_VERSION_PATTERN).optional(),
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
    if (!parsed.success)
      throw new ApiError('VALIDATION_FAILED', 'body must be {"token": "<enrollment token>", "version"?: "<agent version: 1..50 of [0-9A-Za-z.+-]>"}');
    const { agentId, tenantId, credential } = await this.service.enroll(parsed.data.token, parsed.data.version ?? null);
    return { agentId, tenantId, credential };
  }
}

import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { z } from 'zod';

import { ApiError } from '@payorch/domain';

import { AGENT_VERSION_PATTERN, EnrollmentService } from './enrollment.service';

const enrollSchema = z.strictObject({
  token: z.string().min(1).max(200),
  // As the upgrade's version header is checked: a NUL made the enrollment a 500 (PostgreSQL refuses it), and any other
  // text went to Agent.version and the audit log.
  version: z.string().regex(AGENT_VERSION_PATTERN).optional(),
});

/** Its errors, and the body parser's, are answered by the connector's global ConnectorErrorFilter (bootstrap.ts). */
@Controller('agent')
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

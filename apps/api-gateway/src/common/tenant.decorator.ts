import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

import { ApiError, type TenantContext } from '@payorch/domain';

import type { PayorchRequest } from './request-context';

/** The authenticated TenantContext; services take it as their first parameter. */
export const Tenant = createParamDecorator((_data: unknown, context: ExecutionContext): TenantContext => {
  const req = context.switchToHttp().getRequest<PayorchRequest>();
  if (!req.tenant) throw new ApiError('UNAUTHENTICATED', 'authentication required');
  return req.tenant;
});
